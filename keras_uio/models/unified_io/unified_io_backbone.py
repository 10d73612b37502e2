import math
import os

import keras
from keras import ops
from keras_hub.layers import ReversibleEmbedding
from keras_hub.models import Backbone

from keras_uio import preset_checks
from keras_uio.layers.attention_bias import AttentionBias
from keras_uio.layers.attention_bias import key_padding_bias
from keras_uio.layers.decoder_embedding import DecoderEmbedding
from keras_uio.layers.decoder_layer import UnifiedIODecoderLayer
from keras_uio.layers.encoder_embedding import EncoderEmbedding
from keras_uio.layers.encoder_layer import UnifiedIOEncoderLayer
from keras_uio.layers.host_initializer import HostInitializer
from keras_uio.layers.modality_logits import ModalityLogits
from keras_uio.layers.rms_norm import RMSNorm
from keras_uio.models.unified_io.unified_io_input_checks import check_backbone_inputs
from keras_uio.models.unified_io.unified_io_layout_map import unified_io_layout_map
from keras_uio.models.unified_io.unified_io_parameter_count import (
    count_backbone_parameters,
)
from keras_uio.models.unified_io.unified_io_preset_loading import bundled_preset_path
from keras_uio.models.unified_io.unified_io_preset_loading import is_architecture
from keras_uio.models.unified_io.unified_io_preset_loading import saved_dtype_policy_map
from keras_uio.models.unified_io.unified_io_presets import unified_io_presets


def _check_positive(**values):
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"`{name}` must be a positive int; received {value!r}.")


@keras.saving.register_keras_serializable(package="keras_uio")
class UnifiedIOBackbone(Backbone):
    """The Unified-IO encoder-decoder transformer (Lu et al., ICLR 2023).

    A T5.1.1-style encoder reads `[text ; 16x16 image patches]`, a decoder
    writes `[text ; VQ-GAN image codes]`, both with Unified-IO's relative
    (1-D text and 2-D image buckets) and absolute position biases. Token
    embeddings are shared by both stacks and tied with the output layer.

    Called on a dict of the original's input names, it runs the training
    path: one teacher-forced decoder pass returning float32 `text_logits`
    and `image_logits` (ids of the other modality set to -1e10). For
    generation use `encode()` and `decode()` (or the cached decode loop
    in `unified_io_decoding`). `decode()` multiplies each modality's positions
    by that modality's embedding rows only (text + location ids, or image
    codes); with `full_vocabulary=False` it also returns them at that width,
    which is what `UnifiedIO`'s training forward and loss use.

    Args:
        vocabulary_size: int. Text + location ids (33152).
        image_vocabulary_size: int. VQ-GAN codes (16384); code `c` is id
            `vocabulary_size + c`, and `vocabulary_size - 1` starts images.
        hidden_dim: int. Model width ("emb_dim").
        num_heads: int.
        head_dim: int. 64 in every released size, also when
            `num_heads * head_dim != hidden_dim`.
        num_encoder_layers, num_decoder_layers: int.
        intermediate_dim: int. Gated-GELU MLP width ("mlp_dim").
        image_size: int. Encoder image side (384).
        patch_size: int. (16).
        max_encoder_text_length: int. Encoder text positions (256).
        max_decoder_text_length: int. Decoder text positions (256).
        max_decoder_image_length: int. Decoder image codes, a square number
            (256 = 16 x 16).
        num_segments: int. Segment embeddings (2; 8 in XL).
        dtype: a dtype policy, e.g. `"bfloat16"` or `"mixed_bfloat16"`.

    Inputs (dict): `text_encoder_inputs [B, Lt]` int (0 = padding),
    `image_encoder_inputs [B, S, S, 3]` normalised pixels,
    `image_input_masks [B, (S/16)^2]` int, `text_decoder_inputs [B, Ld]`,
    `text_decoder_masks [B, Ld]`, `image_decoder_inputs [B, Li]`.

    Example:

    ```python
    import numpy as np
    import keras_uio
    backbone = keras_uio.UnifiedIOBackbone.from_preset(
        "uio_tiny", load_weights=False
    )
    inputs = {
        "text_encoder_inputs": np.array([[5, 6, 1]]),
        "image_encoder_inputs": np.zeros((1, 384, 384, 3), "float32"),
        "image_input_masks": np.ones((1, 576), "int32"),
        "text_decoder_inputs": np.array([[0, 7]]),
        "text_decoder_masks": np.ones((1, 2), "int32"),
        "image_decoder_inputs": np.full((1, 256), 1151),
    }
    # `backbone(inputs)` runs op by op; `predict` compiles the whole pass.
    outputs = backbone.predict(inputs, verbose=0)
    outputs["text_logits"].shape  # (1, 2, 1408)
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        image_vocabulary_size,
        hidden_dim,
        num_heads,
        head_dim,
        num_encoder_layers,
        num_decoder_layers,
        intermediate_dim,
        image_size=384,
        patch_size=16,
        max_encoder_text_length=256,
        max_decoder_text_length=256,
        max_decoder_image_length=256,
        num_segments=2,
        dtype=None,
        **kwargs,
    ):
        _check_positive(
            vocabulary_size=vocabulary_size,
            image_vocabulary_size=image_vocabulary_size,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            head_dim=head_dim,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            intermediate_dim=intermediate_dim,
            image_size=image_size,
            patch_size=patch_size,
            max_encoder_text_length=max_encoder_text_length,
            max_decoder_text_length=max_decoder_text_length,
            max_decoder_image_length=max_decoder_image_length,
            num_segments=num_segments,
        )
        if image_size % patch_size:
            raise ValueError(
                f"`image_size` ({image_size}) must be a multiple of "
                f"`patch_size` ({patch_size})."
            )
        decoder_grid = math.isqrt(max_decoder_image_length)
        if decoder_grid**2 != max_decoder_image_length:
            raise ValueError(
                "`max_decoder_image_length` must be a square number of VQ-GAN "
                f"codes (e.g. 256 = 16 x 16); received {max_decoder_image_length}."
            )
        if num_segments < 2:
            raise ValueError(
                f"`num_segments` must be at least 2; received {num_segments}."
            )
        encoder_grid = image_size // patch_size

        # === Layers ===
        self.token_embedding = ReversibleEmbedding(
            input_dim=vocabulary_size + image_vocabulary_size,
            output_dim=hidden_dim,
            tie_weights=True,
            reverse_dtype="float32",
            embeddings_initializer=HostInitializer("normal", 1.0),
            dtype=dtype,
            name="token_embedding",
        )
        self.encoder_embedding = EncoderEmbedding(
            hidden_dim,
            patch_size,
            max_encoder_text_length,
            encoder_grid**2,
            num_segments,
            dtype=dtype,
            name="encoder_embedding",
        )
        self.encoder_attention_bias = AttentionBias(
            num_heads,
            head_dim,
            image_grid_width=encoder_grid,
            causal=False,
            dtype=dtype,
            name="encoder_attention_bias",
        )
        self.encoder_layers = [
            UnifiedIOEncoderLayer(
                num_heads,
                head_dim,
                intermediate_dim,
                dtype=dtype,
                name=f"encoder_layer_{i}",
            )
            for i in range(num_encoder_layers)
        ]
        self.encoder_norm = RMSNorm(dtype=dtype, name="encoder_norm")
        self.decoder_embedding = DecoderEmbedding(
            hidden_dim,
            max_decoder_text_length,
            max_decoder_image_length,
            num_segments,
            dtype=dtype,
            name="decoder_embedding",
        )
        self.decoder_attention_bias = AttentionBias(
            num_heads,
            head_dim,
            image_grid_width=decoder_grid,
            causal=True,
            dtype=dtype,
            name="decoder_attention_bias",
        )
        self.decoder_layers = [
            UnifiedIODecoderLayer(
                num_heads,
                head_dim,
                intermediate_dim,
                dtype=dtype,
                name=f"decoder_layer_{i}",
            )
            for i in range(num_decoder_layers)
        ]
        self.decoder_norm = RMSNorm(dtype=dtype, name="decoder_norm")
        self.modality_logits = ModalityLogits(
            vocabulary_size, hidden_dim, dtype=dtype, name="modality_logits"
        )

        # === Functional model ===
        shapes = {
            "text_encoder_inputs": ((None,), "int32"),
            "image_encoder_inputs": ((image_size, image_size, 3), "float32"),
            "image_input_masks": ((encoder_grid**2,), "int32"),
            "text_decoder_inputs": ((None,), "int32"),
            "text_decoder_masks": ((None,), "int32"),
            "image_decoder_inputs": ((None,), "int32"),
        }
        inputs = {
            name: keras.Input(shape, dtype=input_dtype, name=name)
            for name, (shape, input_dtype) in shapes.items()
        }
        encoded, encoder_mask = self._encode(
            inputs["text_encoder_inputs"],
            inputs["image_encoder_inputs"],
            inputs["image_input_masks"],
        )
        hidden = self._decoder_states(
            encoded,
            encoder_mask,
            inputs["text_decoder_inputs"],
            inputs["text_decoder_masks"],
            inputs["image_decoder_inputs"],
        )
        text_logits, image_logits = self.modality_logits(
            hidden,
            embeddings=self.token_embedding,
            text_length=inputs["text_decoder_inputs"],
        )
        super().__init__(
            inputs=inputs,
            outputs={"text_logits": text_logits, "image_logits": image_logits},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.image_vocabulary_size = image_vocabulary_size
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.num_encoder_layers = num_encoder_layers
        self.num_decoder_layers = num_decoder_layers
        self.intermediate_dim = intermediate_dim
        self.image_size = image_size
        self.patch_size = patch_size
        self.max_encoder_text_length = max_encoder_text_length
        self.max_decoder_text_length = max_decoder_text_length
        self.max_decoder_image_length = max_decoder_image_length
        self.num_segments = num_segments

    # --- encoder -----------------------------------------------------------
    def _encode(self, text_ids, images, image_mask, image_indices=None):
        text_mask = ops.cast(ops.greater(text_ids, 0), "int32")
        image_mask = ops.cast(image_mask, "int32")
        x, positions = self.encoder_embedding(
            self.token_embedding(text_ids), images, image_indices
        )
        mask = ops.concatenate([text_mask, image_mask], axis=1)
        if image_indices is None:
            bias = self.encoder_attention_bias(positions, text_mask, image_mask)
        else:
            # Only the kept patches enter the stack (the paper's patch
            # subset; the embedding drops the rest before projecting them),
            # with their rows and columns of the bias.
            text_length = ops.shape(text_ids)[1]
            text_index = ops.broadcast_to(
                ops.arange(text_length, dtype="int32")[None],
                ops.shape(text_ids),
            )
            index = ops.concatenate([text_index, image_indices + text_length], 1)
            bias = self.encoder_attention_bias.subset(
                positions, text_length, index, mask
            )
        for layer in self.encoder_layers:
            x = layer(x, bias)
        return self.encoder_norm(x), mask

    def encode_text(self, text_encoder_inputs):
        """Encoder over text alone, for inputs without an image.

        Equal, on the text positions, to `encode` with an all-zero image
        mask (masked patches are never attended to), but skips the 576
        image patches: the encoder does less work and every decoder step
        cross-attends over the text only. Returns `(encoded, mask)`.
        """
        text_ids = ops.convert_to_tensor(text_encoder_inputs, "int32")
        text_mask = ops.cast(ops.greater(text_ids, 0), "int32")
        x, positions = self.encoder_embedding.embed_text(self.token_embedding(text_ids))
        no_image = ops.zeros((ops.shape(text_ids)[0], 0), "int32")
        bias = self.encoder_attention_bias(positions[None], text_mask, no_image)
        for layer in self.encoder_layers:
            x = layer(x, bias)
        return self.encoder_norm(x), text_mask

    def encode(
        self,
        text_encoder_inputs,
        image_encoder_inputs,
        image_input_masks,
        image_input_indices=None,
    ):
        """Runs the encoder. Returns `(encoded [B, L, E], mask [B, L])`.

        With `image_input_indices [B, n]` (ascending patch indices, e.g. from
        `keras_uio.data.select_patches`) only those `n` patches enter the
        encoder and `image_input_masks` is `[B, n]` (0 for unused slots):
        `L = text length + n`. The result at the kept positions equals
        `encode` on all patches with the others masked, at a fraction of
        the cost (the paper trains on 256 of 576 patches).
        """
        masks = ops.convert_to_tensor(image_input_masks, "int32")
        indices = None
        if image_input_indices is not None:
            indices = ops.convert_to_tensor(image_input_indices, "int32")
            if tuple(indices.shape) != tuple(masks.shape):
                raise ValueError(
                    "`image_input_indices` and `image_input_masks` must have "
                    f"the same shape `[batch, kept patches]`. Received: "
                    f"{tuple(indices.shape)} and {tuple(masks.shape)}."
                )
            total = (self.image_size // self.patch_size) ** 2
            if indices.shape[1] > total:
                raise ValueError(
                    f"`image_input_indices` keeps {indices.shape[1]} patches; "
                    f"the image has {total}."
                )
        return self._encode(
            ops.convert_to_tensor(text_encoder_inputs, "int32"),
            ops.convert_to_tensor(image_encoder_inputs, self.compute_dtype),
            masks,
            indices,
        )

    # --- decoder -----------------------------------------------------------
    def _decoder_states(
        self, encoded, encoder_mask, text_ids, text_mask, image_ids, image_mask=None
    ):
        text_mask = ops.cast(text_mask, "int32")
        if image_mask is None:
            image_mask = ops.ones_like(image_ids, dtype="int32")
        else:
            image_mask = ops.cast(image_mask, "int32")
        y, positions = self.decoder_embedding(
            self.token_embedding(text_ids), self.token_embedding(image_ids)
        )
        # As the original's `decode`: the text and image target masks both
        # pad the causal self-attention's keys, so no valid position reads
        # a padded one (e.g. the padded columns of a portrait target image,
        # which sit between valid codes in raster order).
        self_bias = self.decoder_attention_bias(positions, text_mask, image_mask)
        # Keys only, `[B, 1, 1, Le]`: rows of padded decoder positions are
        # not masked (nothing valid reads them; the original masks those
        # rows entirely, in self- and cross-attention alike, so they attend
        # uniformly there and differ here: compare valid rows only).
        cross_bias = key_padding_bias(encoder_mask)
        for layer in self.decoder_layers:
            y = layer(y, encoded, self_bias, cross_bias)
        return self.decoder_norm(y)

    def decode(
        self,
        encoded,
        encoder_mask,
        text_decoder_inputs,
        text_decoder_masks,
        image_decoder_inputs,
        full_vocabulary=True,
        image_decoder_masks=None,
    ):
        """Teacher-forced decoder pass. Returns `(text_logits, image_logits)`.

        Each modality's logits are computed over its own ids only (text +
        location ids at text positions, image codes at image positions;
        `ModalityLogits.project`). With `full_vocabulary=True` (default)
        they are padded back to the full width with -1e10 for the other
        modality, as `__call__` returns them; with `False` they keep their
        own width: `text_logits [B, Lt, vocabulary_size]` (index = id) and
        `image_logits [B, Li, image_vocabulary_size]` (index = image code
        = id - vocabulary_size), the form the training loss uses.

        `image_decoder_masks` (optional `[B, Li]`, 1 for real image codes,
        0 for padding, e.g. the target mask of a resized-with-pad image)
        masks padded image positions as keys of the decoder's
        self-attention, as the original's `decode(image_decoder_masks=...)`
        does; `None` (default) means all ones. Logits at padded positions
        (text or image) are meaningless and differ from the original's.
        """
        hidden = self.decoder_states(
            encoded,
            encoder_mask,
            text_decoder_inputs,
            text_decoder_masks,
            image_decoder_inputs,
            image_decoder_masks=image_decoder_masks,
        )
        return self.modality_logits.project(
            hidden,
            self.token_embedding,
            ops.shape(text_decoder_inputs)[1],
            bool(full_vocabulary),
        )

    def decoder_states(
        self,
        encoded,
        encoder_mask,
        text_decoder_inputs,
        text_decoder_masks,
        image_decoder_inputs,
        image_decoder_masks=None,
    ):
        """Teacher-forced decoder pass up to the final norm: `[B, Lt + Li, E]`.

        What `decode()` multiplies by the embeddings; the training loss
        reads these (`ModalityLogits.cross_entropy`) instead of logits.
        `image_decoder_masks` as in `decode()` (`None`: all ones).
        """
        image_ids = ops.convert_to_tensor(image_decoder_inputs, "int32")
        image_mask = None
        if image_decoder_masks is not None:
            image_mask = ops.convert_to_tensor(image_decoder_masks, "int32")
            mask_shape, ids_shape = tuple(image_mask.shape), tuple(image_ids.shape)
            if len(mask_shape) != len(ids_shape) or any(
                a is not None and b is not None and a != b
                for a, b in zip(mask_shape, ids_shape)
            ):
                raise ValueError(
                    "`image_decoder_masks` must have the shape of "
                    f"`image_decoder_inputs`, {tuple(image_ids.shape)}. "
                    f"Received: {tuple(image_mask.shape)}."
                )
        return self._decoder_states(
            encoded,
            ops.convert_to_tensor(encoder_mask, "int32"),
            ops.convert_to_tensor(text_decoder_inputs, "int32"),
            ops.convert_to_tensor(text_decoder_masks, "int32"),
            image_ids,
            image_mask,
        )

    presets = unified_io_presets

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict` after checking concrete inputs (ids in the
        vocabulary, masks in {0, 1}, finite pixels): out-of-range ids would
        otherwise read arbitrary embedding rows without an error."""
        if isinstance(x, dict):
            self.check_inputs(x)
        return super().predict(x, *args, **kwargs)

    def check_inputs(self, inputs):
        """Raises `ValueError` naming the field for concrete (NumPy-able)
        inputs with ids outside `[0, vocabulary_size +
        image_vocabulary_size)`, masks outside {0, 1} or non-finite
        pixels. Symbolic tensors are skipped."""
        check_backbone_inputs(self, inputs)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds a backbone from a built-in name or a preset folder.

        Built-in names (`uio_small`, `uio_base`, `uio_large`, `uio_xl`,
        `uio_tiny`) carry the architecture only: pass `load_weights=False`
        for random weights, or convert an original checkpoint into a folder
        with `keras-uio convert` and load that folder. `kwargs` override
        config fields (e.g. `dtype="bfloat16"`).

        An existing local folder wins over a name (keras-hub's rule): with
        a folder `./uio_tiny_easyvqa` in the working directory,
        `from_preset("uio_tiny_easyvqa")` loads that folder. A folder is
        checked first (`keras_uio.preset_checks`): a missing or corrupt
        `config.json` or missing weights raise an error naming the file,
        and the weights are verified against the sha256 recorded by
        `save_to_preset` (presets saved without a record load unchecked).

        Example:

        ```python
        backbone = UnifiedIOBackbone.from_preset("uio_tiny", load_weights=False)
        ```
        """
        if not is_architecture(preset):
            folder = bundled_preset_path(preset)
            if preset_checks.is_local_preset(folder):
                folder = os.fspath(folder)
                preset_checks.check_preset_folder(folder, load_weights)
                kwargs["dtype"] = saved_dtype_policy_map(folder, kwargs.get("dtype"))
            return super().from_preset(folder, load_weights=load_weights, **kwargs)
        entry = unified_io_presets[preset]
        if load_weights:
            checkpoint = entry["metadata"]["checkpoint"]
            if checkpoint is None:
                advice = "It has no weights; pass `load_weights=False`."
            else:
                advice = (
                    f"Download the original `{checkpoint}` (see the "
                    "allenai/unified-io-inference README), run `keras-uio "
                    f"convert {checkpoint} ./{preset} --vocabulary "
                    f"spiece.model`, then load `from_preset('./{preset}')`. "
                    "Pass `load_weights=False` for random weights."
                )
            raise ValueError(
                f"No weights are bundled for the built-in preset '{preset}'. " + advice
            )
        return cls(**{**entry["config"], **kwargs})

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Writes the preset, then the sha256 of its weights (`checksums.json`).

        Args:
            preset_dir: the folder to write.
            max_shard_size: int or float. Largest weights shard in GB
                (`None`: one file).
        """
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        preset_checks.write_checksums(preset_dir)

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """`keras.Model.load_weights`, after checking the file.

        The file must match the sha256 recorded beside it by
        `save_to_preset` (if any), and (unless `skip_mismatch`) hold
        exactly this model's variables: a `config.json` with fewer layers
        than its weights is an error, not a silent partial load.
        """
        preset_checks.verify_before_loading(
            self, filepath, check_variables=not skip_mismatch
        )
        return super().load_weights(filepath, skip_mismatch=skip_mismatch, **kwargs)

    @staticmethod
    def count_preset_parameters(preset):
        """Parameter count of a built-in preset, computed from its config."""
        return count_backbone_parameters(unified_io_presets[preset]["config"])

    @staticmethod
    def get_layout_map(
        device_mesh,
        model_parallel_dim_name="model",
        data_parallel_dim_name="batch",
    ):
        """A `keras.distribution.LayoutMap` for model-parallel training.

        The *model* axis splits the vocabulary, the attention heads and the
        MLP width; the *data* axis splits the hidden dimension of the same
        matrices (keras-hub's convention). The rules per variable are
        listed in `unified_io_layout_map`, which this returns.
        """
        return unified_io_layout_map(
            device_mesh, model_parallel_dim_name, data_parallel_dim_name
        )

    @property
    def image_start_id(self):
        """The decoder input that starts an image (`vocabulary_size - 1`)."""
        return self.vocabulary_size - 1

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "image_vocabulary_size": self.image_vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "num_encoder_layers": self.num_encoder_layers,
                "num_decoder_layers": self.num_decoder_layers,
                "intermediate_dim": self.intermediate_dim,
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "max_encoder_text_length": self.max_encoder_text_length,
                "max_decoder_text_length": self.max_decoder_text_length,
                "max_decoder_image_length": self.max_decoder_image_length,
                "num_segments": self.num_segments,
            }
        )
        return config
