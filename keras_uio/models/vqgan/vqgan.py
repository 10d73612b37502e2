"""The VQ-GAN image tokenizer of Unified-IO as a keras_hub backbone.

The class is here; its configuration checks and parameter count are in
`vqgan_config.py`, the encoder and decoder stacks in `vqgan_stacks.py`, the
compiled direct calls in `vqgan_compile.py`.
"""

import os

import keras
import numpy as np
from keras import ops
from keras_hub.models import Backbone

from keras_uio import preset_checks
from keras_uio.host_arrays import concrete_numpy
from keras_uio.layers.host_initializer import host_conv2d
from keras_uio.models.device_mesh import check_device_mesh
from keras_uio.models.vqgan.finite_scalar_quantizer import FiniteScalarQuantizer
from keras_uio.models.vqgan.vector_quantizer import VectorQuantizer
from keras_uio.models.vqgan.vqgan_compile import CompiledCalls
from keras_uio.models.vqgan.vqgan_config import NORM_GROUPS
from keras_uio.models.vqgan.vqgan_config import grid_size as config_grid_size
from keras_uio.models.vqgan.vqgan_config import validate_vqgan_config
from keras_uio.models.vqgan.vqgan_stacks import build_decoder
from keras_uio.models.vqgan.vqgan_stacks import build_encoder


@keras.saving.register_keras_serializable(package="keras_uio")
class VQGAN(Backbone):
    """VQ-GAN (taming-transformers) image tokenizer, as used by Unified-IO.

    An encoder turns an image `[B, R, R, 3]` in `[-1, 1]` into a grid of
    `z_channels` features at `1 / 2**(levels - 1)` of the resolution, a 1x1
    `quant_conv` follows, and each vector is replaced by its nearest codebook
    row (`VectorQuantizer`); the decoder maps the quantized grid (after a 1x1
    `post_quant_conv`) back to an image. The functional model returns a dict:
    `"codes"` (int32 `[B, grid * grid]`, row-major) and `"reconstruction"`
    (`[B, R, R, out_channels]`, raw decoder output, not clipped).

    Use `encode(images)` for the codes alone and `decode(codes)` for the
    images of given codes (Unified-IO's image tokens minus the vocabulary
    offset). Both validate their input; called directly they compile on
    first use per input shape (see `vqgan_compile.py`), and inside a traced
    function (`jax.jit`, `tf.function`) they run as part of it.

    Layer and variable names follow the original checkpoint
    (`encoder/down_0_block_0/conv1/kernel`, ...; decoder level `up_0` is the
    lowest resolution), see `keras_uio.convert.vqgan_weights`.

    Args:
        image_size: int. Height and width of the (square) images.
        channels: int. Base channel count (`ch` in the original).
        channel_multipliers: tuple of ints. One per resolution level
            (`ch_mult`); level `i` has `channels * channel_multipliers[i]`
            channels and there are `len(channel_multipliers) - 1` halvings.
        num_res_blocks: int. Residual blocks per encoder level (the decoder
            has one more per level).
        attention_resolutions: tuple of ints. Feature-map sizes at which
            attention blocks follow the residual blocks.
        z_channels: int. Channels of the encoder output.
        codebook_size: int. Number of codes (`n_embed`).
        embed_dim: int. Size of a code vector. The 1x1 `quant_conv` maps
            the encoder's `z_channels` to it and `post_quant_conv` back, as
            in taming-transformers (the original's are equal).
        in_channels: int. Channels of the input images.
        out_channels: int. Channels of the reconstructed images.
        norm_groups: int. Groups of every group normalization (32 in the
            original). Each level's channel count must be divisible by it.
            With as many groups as channels a group norm is an instance
            norm, which erases a level's per-channel means (e.g. the
            colour of a small flat shape); small tokenizers want fewer.
        fsq_levels: optional sequence of ints. `None` (the original): a
            learned codebook of `codebook_size` rows (`VectorQuantizer`).
            Given, codes come from finite scalar quantization instead
            (`FiniteScalarQuantizer`, Mentzer et al. 2023): `embed_dim`
            must be `len(fsq_levels)` and `codebook_size` their product,
            e.g. `fsq_levels=(8, 5, 5, 5)`, `embed_dim=4`,
            `codebook_size=1000`. Nothing to collapse or restart; the
            small tokenizer of `uio_tiny_easyvqa` uses it to keep colours.
        dtype: string or `keras.DTypePolicy`. Group norms and the
            nearest-code search always run in float32.
        **kwargs: other `keras_hub.models.Backbone` arguments (`name`, ...).

    Example:

    ```python
    import numpy as np
    from keras_uio.models.vqgan.vqgan import VQGAN

    vqgan = VQGAN(
        image_size=32, channels=32, channel_multipliers=(1, 2),
        num_res_blocks=1, attention_resolutions=(16,), z_channels=8,
        codebook_size=64, embed_dim=8,
    )
    images = np.random.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    codes = vqgan.encode(images)  # (2, 256) int32 in [0, 64)
    images = vqgan.decode(codes)  # (2, 32, 32, 3)
    outputs = vqgan(images)  # {"codes": ..., "reconstruction": ...}
    ```
    """

    def __init__(
        self,
        image_size=256,
        channels=128,
        channel_multipliers=(1, 1, 2, 2, 4),
        num_res_blocks=2,
        attention_resolutions=(16,),
        z_channels=256,
        codebook_size=16384,
        embed_dim=256,
        in_channels=3,
        out_channels=3,
        norm_groups=NORM_GROUPS,
        fsq_levels=None,
        dtype=None,
        **kwargs,
    ):
        config = validate_vqgan_config(
            image_size=image_size,
            channels=channels,
            channel_multipliers=channel_multipliers,
            num_res_blocks=num_res_blocks,
            attention_resolutions=attention_resolutions,
            z_channels=z_channels,
            codebook_size=codebook_size,
            embed_dim=embed_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            norm_groups=norm_groups,
            fsq_levels=fsq_levels,
        )
        grid_size = config_grid_size(config)

        # === Layers ===
        self.encoder = build_encoder(config, dtype)
        self.quant_conv = host_conv2d(embed_dim, 1, dtype=dtype, name="quant_conv")
        if config["fsq_levels"] is None:
            self.quantize = VectorQuantizer(
                codebook_size, embed_dim, dtype=dtype, name="quantize"
            )
        else:
            self.quantize = FiniteScalarQuantizer(
                config["fsq_levels"], dtype=dtype, name="quantize"
            )
        self.post_quant_conv = host_conv2d(
            z_channels, 1, dtype=dtype, name="post_quant_conv"
        )
        self.decoder = build_decoder(config, dtype)
        self.flatten_codes = keras.layers.Reshape(
            (grid_size * grid_size,), dtype=dtype, name="codes"
        )

        # === Functional Model ===
        image_input = keras.Input(
            shape=(image_size, image_size, in_channels), name="images"
        )
        latents = self.quant_conv(self.encoder(image_input))
        codes, quantized = self.quantize(latents)
        reconstruction = self.decoder(self.post_quant_conv(quantized))
        super().__init__(
            inputs=image_input,
            outputs={
                "codes": self.flatten_codes(codes),
                "reconstruction": reconstruction,
            },
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.image_size = config["image_size"]
        self.channels = config["channels"]
        self.channel_multipliers = config["channel_multipliers"]
        self.num_res_blocks = config["num_res_blocks"]
        self.attention_resolutions = config["attention_resolutions"]
        self.z_channels = config["z_channels"]
        self.codebook_size = config["codebook_size"]
        self.embed_dim = config["embed_dim"]
        self.in_channels = config["in_channels"]
        self.out_channels = config["out_channels"]
        self.norm_groups = config["norm_groups"]
        self.fsq_levels = config["fsq_levels"]
        self.grid_size = grid_size
        # Compiled `encode` / `decode`, one per input shape and dtype.
        self._compiled_calls = CompiledCalls(self)

    @property
    def num_codes(self):
        """Codes per image: `grid_size ** 2` (256 for 256x256, f16)."""
        return self.grid_size * self.grid_size

    def encode(self, images):
        """Image codes: `[B, R, R, C]` in `[-1, 1]` -> int32 `[B, grid**2]`.

        Codes are row-major over the `grid x grid` latent map. Called
        directly (not inside a traced function), the call is compiled on
        its first use for each input shape and dtype (`jax.jit` on JAX, a
        `tf.function` on TensorFlow; PyTorch runs eagerly).
        """
        images = self._check_images(images)
        return self._compiled_calls.call("encode", self._encode, images)

    def decode(self, codes):
        """Images of codes: int `[B, grid**2]` -> `[B, R, R, out_channels]`.

        The output is the raw decoder output (not clipped to `[-1, 1]`).
        Code values are range-checked when they are concrete (eager calls);
        inside a traced function they cannot be, and out-of-range codes then
        give undefined rows. Compiled per input shape and dtype as `encode`.
        """
        codes = self._check_codes(codes)
        return self._compiled_calls.call("decode", self._decode, codes)

    def _encode(self, images):
        """`encode` without the checks and compilation."""
        latents = self.quant_conv(self.encoder(images))
        codes, _ = self.quantize(latents)
        return ops.reshape(codes, (-1, self.num_codes))

    def _decode(self, codes):
        """`decode` without the checks and compilation."""
        vectors = self.quantize.lookup(codes)
        vectors = ops.reshape(
            vectors, (-1, self.grid_size, self.grid_size, self.embed_dim)
        )
        return self.decoder(self.post_quant_conv(vectors))

    def _check_images(self, images):
        expected = (self.image_size, self.image_size, self.in_channels)
        shape = tuple(ops.shape(images))
        if len(shape) != 4 or tuple(shape[1:]) != expected:
            raise ValueError(
                "`images` must have shape [batch, "
                f"{', '.join(str(n) for n in expected)}] (values in [-1, 1])."
                f" Received: images.shape={shape}"
            )
        dtype = keras.backend.standardize_dtype(images.dtype)
        if "float" not in dtype:
            raise ValueError(
                "`images` must be a floating tensor in [-1, 1]. "
                f"Received: images.dtype={dtype}"
            )
        values = concrete_numpy(images)
        if values is not None and values.size:
            values = np.asarray(values, np.float32)
            if not np.isfinite(values).all():
                raise ValueError("`images` contains nan or inf values.")
            low, high = float(values.min()), float(values.max())
            if low < -1 - 1e-3 or high > 1 + 1e-3:
                raise ValueError(
                    "`images` must be in [-1, 1] (pixels / 127.5 - 1, see "
                    "`keras_uio.preprocessing.preprocess_target_image`); "
                    f"received values in [{low:g}, {high:g}]."
                )
        return images

    def _check_codes(self, codes):
        shape = tuple(ops.shape(codes))
        if len(shape) != 2 or shape[1] != self.num_codes:
            raise ValueError(
                f"`codes` must have shape [batch, {self.num_codes}] "
                f"({self.grid_size}x{self.grid_size} codes per image). "
                f"Received: codes.shape={shape}"
            )
        dtype = keras.backend.standardize_dtype(codes.dtype)
        if "int" not in dtype:
            raise ValueError(
                "`codes` must be an integer tensor of codes in "
                f"[0, {self.codebook_size}). Received: codes.dtype={dtype}"
            )
        values = concrete_numpy(codes)
        if values is not None and values.size:
            low, high = int(values.min()), int(values.max())
            if low < 0 or high >= self.codebook_size:
                raise ValueError(
                    f"`codes` must lie in [0, {self.codebook_size}) (the "
                    "codebook size; Unified-IO image token ids must have the "
                    f"vocabulary offset removed). Received: codes in "
                    f"[{low}, {high}]"
                )
        return codes

    @staticmethod
    def get_layout_map(
        device_mesh,
        model_parallel_dim_name="model",
        data_parallel_dim_name="batch",
    ):
        """A `keras.distribution.LayoutMap` for model-parallel use.

        The *model* axis splits the output channels of every convolution
        (kernels `[kh, kw, in, out]` -> `(None, None, None, model)`, their
        biases `(model,)`) and the codebook (`quantize/embedding`
        `[codes, dim]` -> `(model, None)`). The two `conv_out` layers are
        split on their *input* channels instead (`(None, None, model,
        None)`, bias replicated): the decoder's writes 3 RGB channels, which
        no axis divides, and encoder and decoder layers share paths. Group
        norms are replicated. The data axis is not used for weights (76M
        parameters for the full VQ-GAN); its name is only checked.

        Args:
            device_mesh: a `keras.distribution.DeviceMesh`.
            model_parallel_dim_name: the mesh axis that splits channels.
            data_parallel_dim_name: the mesh axis that splits the batch.

        Returns:
            A `keras.distribution.LayoutMap`.
        """
        check_device_mesh(device_mesh, model_parallel_dim_name, data_parallel_dim_name)
        model = model_parallel_dim_name
        convs = (
            r"(?:.*/)?(?:conv_in|conv1|conv2|conv|nin_shortcut|q|k|v|"
            r"proj_out|quant_conv|post_quant_conv)/"
        )
        layout_map = keras.distribution.LayoutMap(device_mesh)
        layout_map[convs + "kernel"] = (None, None, None, model)
        layout_map[convs + "bias"] = (model,)
        layout_map[r"(?:.*/)?conv_out/kernel"] = (None, None, model, None)
        layout_map[r"(?:.*/)?quantize/embedding"] = (model, None)
        return layout_map

    # --- presets -------------------------------------------------------------
    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Loads a VQ-GAN preset folder (e.g. `vqgan/` of a converted model).

        The folder is checked first (`keras_uio.preset_checks`): a missing
        or corrupt `config.json` or missing weights raise an error naming
        the file, and the weights are verified against the sha256 recorded
        by `save_to_preset` (presets saved without a record load unchecked).

        Example:

        ```python
        vqgan = VQGAN(
            image_size=32, channels=32, channel_multipliers=(1, 2),
            num_res_blocks=1, attention_resolutions=(), z_channels=8,
            codebook_size=64, embed_dim=8,
        )
        vqgan.save_to_preset("my_vqgan")  # `keras-uio convert` writes `vqgan/`
        vqgan = VQGAN.from_preset("my_vqgan")  # e.g. "./uio_small/vqgan"
        ```
        """
        if preset_checks.is_local_preset(preset):
            preset = os.fspath(preset)
            preset_checks.check_preset_folder(preset, load_weights)
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Writes the preset, then the sha256 of its weights (`checksums.json`)."""
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        preset_checks.write_checksums(preset_dir)

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """`keras.Model.load_weights`, after checking the file's sha256 and variables."""
        preset_checks.verify_before_loading(
            self, filepath, check_variables=not skip_mismatch
        )
        return super().load_weights(filepath, skip_mismatch=skip_mismatch, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "channels": self.channels,
                "channel_multipliers": list(self.channel_multipliers),
                "num_res_blocks": self.num_res_blocks,
                "attention_resolutions": list(self.attention_resolutions),
                "z_channels": self.z_channels,
                "codebook_size": self.codebook_size,
                "embed_dim": self.embed_dim,
                "in_channels": self.in_channels,
                "out_channels": self.out_channels,
                "norm_groups": self.norm_groups,
                "fsq_levels": None
                if self.fsq_levels is None
                else list(self.fsq_levels),
            }
        )
        return config
