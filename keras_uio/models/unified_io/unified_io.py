import collections.abc
import os

import keras
from keras import ops
from keras_hub.models import Seq2SeqLM

from keras_uio import preset_checks
from keras_uio.host_arrays import to_numpy
from keras_uio.models.unified_io import unified_io_decoding
from keras_uio.models.unified_io import unified_io_scoring
from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
from keras_uio.models.unified_io.unified_io_input_checks import ENCODER_INPUT_NAMES
from keras_uio.models.unified_io.unified_io_input_checks import check_encoder_inputs
from keras_uio.models.unified_io.unified_io_preprocessor import UnifiedIOPreprocessor
from keras_uio.models.unified_io.unified_io_preset_loading import bundled_preset_path
from keras_uio.models.unified_io.unified_io_preset_loading import is_architecture
from keras_uio.models.unified_io.unified_io_presets import unified_io_presets
from keras_uio.models.unified_io.unified_io_sampler import UnifiedIOSampler
from keras_uio.models.unified_io.unified_io_sampler import uniform_draws
from keras_uio.models.vqgan.vqgan import VQGAN
from keras_uio.models.vqgan.vqgan_presets import vqgan_presets
from keras_uio.training import Adafactor

VQGAN_SUBDIR = "vqgan"
_TRAINING_INPUT_NAMES = ENCODER_INPUT_NAMES + (
    "text_decoder_inputs",
    "text_decoder_masks",
)


def _with_accumulation(optimizer, steps):
    """`optimizer` (an instance or a name) accumulating `steps` batches."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(
            f"`gradient_accumulation_steps` must be an int >= 2; received {steps!r}."
        )
    optimizer = keras.optimizers.get(optimizer)
    current = optimizer.gradient_accumulation_steps
    if getattr(optimizer, "built", False) and current != steps:
        raise ValueError(
            "`gradient_accumulation_steps` must be set before the optimiser "
            "is built; this one already is. Pass a new optimiser, or "
            "construct it with `gradient_accumulation_steps=...`."
        )
    if current not in (None, steps):
        raise ValueError(
            f"The optimiser already accumulates {current} steps; received "
            f"`gradient_accumulation_steps={steps}`."
        )
    optimizer.gradient_accumulation_steps = steps
    return optimizer


@keras.saving.register_keras_serializable(package="keras_uio")
class UnifiedIO(Seq2SeqLM):
    """Unified-IO: every task through one encoder-decoder and one `generate`.

    Holds a `UnifiedIOBackbone`, the `VQGAN` that turns image codes into
    pixels, and optionally a `UnifiedIOPreprocessor`. Calling the model
    runs the teacher-forced training forward of the backbone.

    `generate()` decodes with a self-attention KV cache and a cross-attention
    cache computed once, compiled with XLA on JAX and reused for calls of
    the same shapes and settings. Text stops when every row has written EOS
    (`stop_at_eos=False` decodes the full length, as the original does);
    with `image=True` the decoder then writes `max_decoder_image_length`
    image codes (image start token, segment 1, logits restricted to image
    ids), which the VQ-GAN decodes to pixels.

    Args:
        backbone: a `UnifiedIOBackbone`.
        vqgan: a `VQGAN` (needed for image outputs and image options).
        preprocessor: a `UnifiedIOPreprocessor` or `None`.

    Example:

    ```python
    import numpy as np
    import keras_uio
    model = keras_uio.UnifiedIO.from_preset("uio_tiny", load_weights=False)
    out = model.generate(
        {
            "text_encoder_inputs": np.array([[5, 6, 1]]),
            "image_encoder_inputs": np.zeros((1, 384, 384, 3), "float32"),
            "image_input_masks": np.ones((1, 576), "int32"),
        },
        max_text_length=4,
    )
    out["text_tokens"].shape  # (1, 4)
    ```
    """

    backbone_cls = UnifiedIOBackbone
    preprocessor_cls = UnifiedIOPreprocessor

    def __init__(self, backbone, vqgan=None, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.vqgan = vqgan
        if vqgan is not None:
            # The image tokenizer is frozen by default: training the
            # transformer must not move the code space under it.
            vqgan.trainable = False
        self.preprocessor = preprocessor

        # === Functional model ===
        inputs = backbone.input
        outputs = backbone(inputs)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # Not in the functional graph, the VQ-GAN is tracked as an
        # attribute; on PyTorch `torch.nn.Module.__init__` (inside the call
        # above) drops what was tracked before it, so assign it again.
        self.vqgan = vqgan
        self._compiled_functions = {}
        self._output_tables = unified_io_decoding.OutputTables(self)

    # --- training ------------------------------------------------------------
    @property
    def input_spec(self):
        # `call` also takes target pixels and may be given no image decoder
        # inputs, so the backbone checks its own inputs instead.
        return None

    @input_spec.setter
    def input_spec(self, value):
        pass

    def call(self, inputs, training=None, mask=None):
        """Teacher-forced forward; encodes target images on the fly.

        Accepts the backbone's inputs. When `inputs` carries target pixels
        (`image_decoder_targets [B, R, R, 3]` in [-1, 1], as the
        preprocessor writes for a `target_image`), the VQ-GAN encodes them
        (no gradient) into the decoder's image inputs and the codes are
        returned as `image_targets` for the loss. Without any image input a
        single image-start token stands in (it cannot affect the text).

        Returns a dict: `text_logits` and `image_logits` as the backbone
        returns them (full vocabulary width, -1e10 for the other
        modality's ids), and the same logits over each modality's own ids
        only, which is all the output layer computes: `text_token_logits
        [B, Lt, vocabulary_size]` (index = id) and `image_code_logits [B,
        Li, image_vocabulary_size]` (index = image code = id -
        vocabulary_size); and `decoder_states [B, Lt + Li, E]`, the final
        decoder states, which the loss reads (it computes the logits again in
        chunks, never storing them whole).
        """
        inputs = dict(inputs)
        pixels = inputs.pop("image_decoder_targets", None)
        image_masks = inputs.pop("image_target_masks", None)
        b = self.backbone
        targets = None
        if pixels is not None:
            if self.vqgan is None:
                raise ValueError(
                    "Target images need the VQ-GAN: build `UnifiedIO(backbone, "
                    "vqgan)`, or pass `target_codes` to the preprocessor."
                )
            # One image at a time: the VQ-GAN's full-resolution activations
            # and convolution scratch are then one image's, not the batch's
            # (250 MB less peak memory for 8 images of 256x256).
            codes = ops.stop_gradient(
                ops.map(lambda image: self.vqgan.encode(image[None])[0], pixels)
            )
            targets = ops.cast(codes, "int32") + b.vocabulary_size
            start = ops.full_like(targets[:, :1], b.image_start_id)
            inputs["image_decoder_inputs"] = ops.concatenate(
                [start, targets[:, :-1]], axis=1
            )
        elif "image_decoder_inputs" not in inputs:
            image_masks = None  # the start token alone cannot affect the text
            batch = ops.shape(inputs["text_decoder_inputs"])[0]
            inputs["image_decoder_inputs"] = ops.full(
                (batch, 1), b.image_start_id, "int32"
            )
        missing = [k for k in _TRAINING_INPUT_NAMES if k not in inputs]
        if missing:
            raise ValueError(
                f"`inputs` lacks {missing}; the teacher-forced forward needs "
                f"{list(_TRAINING_INPUT_NAMES)} (and `image_decoder_inputs` "
                "or `image_decoder_targets` for image outputs)."
            )
        encoded, encoder_mask = b.encode(
            *(inputs[k] for k in ENCODER_INPUT_NAMES),
            image_input_indices=inputs.get("image_input_indices"),
        )
        states = b.decoder_states(
            encoded,
            encoder_mask,
            inputs["text_decoder_inputs"],
            inputs["text_decoder_masks"],
            inputs["image_decoder_inputs"],
            image_decoder_masks=image_masks,
        )
        # Each modality over its own ids only, then the backbone's
        # full-width form. The loss reads `decoder_states`, so in `fit` (on
        # JAX and TensorFlow) the logits are compiled away.
        text, image = b.modality_logits.project(
            states,
            b.token_embedding,
            inputs["text_decoder_inputs"],
            full_vocabulary=False,
        )
        total = b.vocabulary_size + b.image_vocabulary_size
        widen = b.modality_logits.widen
        outputs = {
            "text_logits": widen(text, False, total),
            "image_logits": widen(image, True, total),
            "text_token_logits": text,
            "image_code_logits": image,
            "decoder_states": states,
        }
        if targets is not None:
            outputs["image_targets"] = targets
        return outputs

    def preprocess_samples(self, x, y=None, sample_weight=None):
        """Raw examples go through the preprocessor; ready batches pass."""
        if isinstance(x, dict) and "text_encoder_inputs" in x:
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        return super().preprocess_samples(x, y, sample_weight)

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`, also on an iterator of ready batches.

        Raw examples and preprocessed arrays go through keras-hub's
        pipeline as usual. A Python iterator or generator of preprocessed
        `(x, y, sample_weight)` batches (e.g. `Mixture.batches`) or a
        `keras.utils.PyDataset` is handed to Keras as it is (keras-hub's
        pipeline would read the iterator as one unbatched sample); pass
        `steps_per_epoch` for an endless one.
        """
        if isinstance(x, keras.utils.PyDataset) or (
            isinstance(x, collections.abc.Iterator) and not isinstance(x, dict)
        ):
            if y is not None or kwargs.get("sample_weight") is not None:
                raise ValueError(
                    "`fit` on an iterator of batches reads `y` and "
                    "`sample_weight` from each batch; do not pass them "
                    "separately."
                )
            kwargs.setdefault("shuffle", False)  # an iterator cannot be
            return keras.Model.fit(self, x, **kwargs)
        return super().fit(x, y, **kwargs)

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        gradient_accumulation_steps=None,
        **kwargs,
    ):
        """Configures training: token cross-entropy over text and image targets.

        The loss is the mean cross-entropy over all target tokens (text and
        image codes, padding excluded); `text_loss`, `image_loss`,
        `text_accuracy` and `image_accuracy` are reported apart.

        Args:
            optimizer: `"auto"` (`keras_uio.training.Adafactor`, learning
                rate 1e-3, global-norm
                clipping 1.0, a fine-tuning default; see
                `keras_uio.training.paper_optimizer` for the paper's) or any
                Keras optimiser.
            loss, weighted_metrics: only `"auto"`; the loss and metrics above
                are built in.
            gradient_accumulation_steps: optional int >= 2. Sets the
                optimiser's `gradient_accumulation_steps`: gradients of that
                many batches are averaged before one update, so batches of
                size `b` train like batches of `k * b` (exactly, for the
                same number of target tokens per batch; the loss is a mean
                over tokens). Learning-rate schedules then count updates.
            **kwargs: passed to `keras.Model.compile` (`jit_compile`,
                `steps_per_execution`, ...).
        """
        if loss != "auto" or weighted_metrics != "auto":
            raise ValueError(
                "`UnifiedIO` computes its own token loss and metrics; pass "
                "`loss='auto'` and `weighted_metrics='auto'` (received "
                f"{loss!r}, {weighted_metrics!r})."
            )
        if optimizer == "auto":
            optimizer = Adafactor(learning_rate=1e-3, global_clipnorm=1.0)
        if gradient_accumulation_steps is not None:
            optimizer = _with_accumulation(optimizer, gradient_accumulation_steps)
        self._text_loss = keras.metrics.Mean(name="text_loss")
        self._image_loss = keras.metrics.Mean(name="image_loss")
        self._text_accuracy = keras.metrics.Mean(name="text_accuracy")
        self._image_accuracy = keras.metrics.Mean(name="image_accuracy")
        keras.Model.compile(self, optimizer=optimizer, **kwargs)

    @property
    def metrics(self):
        extra = [
            getattr(self, name, None)
            for name in (
                "_text_loss",
                "_image_loss",
                "_text_accuracy",
                "_image_accuracy",
            )
        ]
        return super().metrics + [m for m in extra if m is not None]

    def _token_terms(self, targets, states, weights, image_mode):
        """Summed cross-entropy, hits and weight of `targets [B, L]` (indices
        into the modality's own ids) at decoder `states [B, L, E]`, float32."""
        b = self.backbone
        size = b.image_vocabulary_size if image_mode else b.vocabulary_size
        # Out-of-range targets only occur at weight 0 (e.g. padding below
        # the image offset); clip them so they stay finite.
        targets = ops.clip(ops.cast(targets, "int32"), 0, size - 1)
        weights = ops.cast(weights, "float32")
        losses, hits = b.modality_logits.cross_entropy(
            states, b.token_embedding, targets, image_mode
        )
        return ops.sum(losses * weights), ops.sum(hits * weights), ops.sum(weights)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        y = y or {}
        sample_weight = sample_weight or {}
        text_targets = y["text_decoder_targets"]
        text_weights = sample_weight.get(
            "text_decoder_targets", ops.cast(text_targets > 0, "float32")
        )
        if "decoder_states" not in y_pred:
            raise ValueError(
                "`compute_loss` reads `y_pred['decoder_states']`, the final "
                "decoder states that `UnifiedIO.__call__` returns (it computes "
                "the logits from them in chunks); received only "
                f"{sorted(y_pred)}. Pass the outputs of `model(x)`."
            )
        states = y_pred["decoder_states"]
        text_length = ops.shape(text_targets)[1]
        total, text_hits, text_count = self._token_terms(
            text_targets, states[:, :text_length], text_weights, image_mode=False
        )
        text_sum = total
        image_targets = y.get("image_decoder_targets", y_pred.get("image_targets"))
        image_sum = image_hits = image_count = ops.zeros(())
        if image_targets is not None:
            image_weights = sample_weight.get("image_decoder_targets")
            if image_weights is None and isinstance(x, dict):
                image_weights = x.get("image_target_masks")
            if image_weights is None:
                image_weights = ops.ones_like(image_targets, "float32")
            image_sum, image_hits, image_count = self._token_terms(
                ops.cast(image_targets, "int32") - self.backbone.vocabulary_size,
                states[:, text_length:],
                image_weights,
                image_mode=True,
            )
        count = ops.maximum(text_count + image_count, 1.0)
        loss = (text_sum + image_sum) / count
        if hasattr(self, "_text_loss"):
            self._text_loss.update_state(text_sum / ops.maximum(text_count, 1.0))
            self._text_accuracy.update_state(text_hits / ops.maximum(text_count, 1.0))
            if image_targets is not None:
                self._image_loss.update_state(image_sum / ops.maximum(image_count, 1.0))
                self._image_accuracy.update_state(
                    image_hits / ops.maximum(image_count, 1.0)
                )
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    # --- loading -------------------------------------------------------------
    def quantize(self, mode=None, config=None, filters=None, **kwargs):
        """`keras.Model.quantize` of the backbone and the VQ-GAN (the
        preprocessor holds no weights, and Keras refuses its unbuilt
        layers; `VQGAN.quantize` is its vector quantizer layer)."""
        for model in (self.backbone, self.vqgan):
            if model is not None:
                keras.Model.quantize(
                    model, mode, config=config, filters=filters, **kwargs
                )
        self.train_function = self.test_function = self.predict_function = None

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Loads a converted preset folder, or a built-in architecture.

        A folder written by `keras-uio convert` holds the backbone, the
        VQ-GAN in `vqgan/` and, when converted with `--vocabulary`, the
        tokenizer. Built-in names (`uio_tiny`, `uio_small`, ...) need
        `load_weights=False` (random weights). `"uio_tiny_easyvqa"` is the
        trained model shipped inside the package (see `keras-uio demo`).

        Example:
        ```python
        model = keras_uio.UnifiedIO.from_preset("uio_tiny_easyvqa")
        image = np.zeros((64, 64, 3), "uint8")
        model.predict_tasks([{"task": "captioning", "image": image}])
        ```
        """
        preset = bundled_preset_path(preset)
        dtype = {"dtype": kwargs["dtype"]} if kwargs.get("dtype") is not None else {}
        backbone = UnifiedIOBackbone.from_preset(
            preset, load_weights=load_weights, **dtype
        )
        if is_architecture(preset):
            vq_name = unified_io_presets[preset]["metadata"]["vqgan"]
            vqgan = VQGAN(**vqgan_presets[vq_name]["config"], **dtype)
            preprocessor = None
        else:
            vq_dir = os.path.join(preset, VQGAN_SUBDIR)
            vqgan = None
            if os.path.isdir(vq_dir):
                vqgan = VQGAN.from_preset(vq_dir, load_weights=load_weights, **dtype)
            preprocessor = None
            if os.path.exists(os.path.join(preset, "tokenizer.json")):
                preset_checks.check_vocabulary(preset)
                preprocessor = UnifiedIOPreprocessor.from_preset(preset)
        return cls(backbone=backbone, vqgan=vqgan, preprocessor=preprocessor, **kwargs)

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Writes the backbone, `vqgan/` and the preprocessor (if any)."""
        self.backbone.save_to_preset(preset_dir, max_shard_size=max_shard_size)
        if self.vqgan is not None:
            self.vqgan.save_to_preset(os.path.join(preset_dir, VQGAN_SUBDIR))
        if self.preprocessor is not None:
            self.preprocessor.save_to_preset(preset_dir)

    def get_config(self):
        config = super().get_config()
        config["vqgan"] = (
            None if self.vqgan is None else keras.layers.serialize(self.vqgan)
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("vqgan") is not None:
            config["vqgan"] = keras.layers.deserialize(config["vqgan"])
        return super().from_config(config)

    # --- input checks --------------------------------------------------------
    # --- generation ----------------------------------------------------------
    def _compiled(self, key, sampler):
        """The generate function for one set of static settings (cached)."""
        # The compiled function reads the variables it was traced with: a
        # change of the variable set (e.g. `backbone.enable_lora`) needs a
        # new one, or generation would ignore the new variables.
        key = key + (tuple(id(v) for v in self.variables),)
        if key not in self._compiled_functions:
            _, text_length, image_length, stop_at_eos = key[:4]
            self._compiled_functions[key] = unified_io_decoding.compile_generate(
                self,
                self._output_tables,
                sampler,
                text_length,
                image_length,
                stop_at_eos,
            )
        return self._compiled_functions[key]

    def generate(
        self,
        inputs,
        max_text_length=32,
        image=False,
        sampler="greedy",
        stop_at_eos=True,
        allowed_ids=None,
        seed=None,
        **sampler_kwargs,
    ):
        """Generates text (and optionally an image) for preprocessed inputs.

        Args:
            inputs: dict with the original's encoder inputs:
                `text_encoder_inputs [B, Lt]`, `image_encoder_inputs [B, S,
                S, 3]`, `image_input_masks [B, P]`.
            max_text_length: int. Text positions to decode (at most the
                backbone's `max_decoder_text_length`).
            image: bool. Also decode `max_decoder_image_length` image codes
                after the text, and the image from them.
            sampler: `"greedy"`, `"beam"` (text only; `num_beams`),
                `"top_k"`, `"top_p"` or `"random"` (temperature sampling), or
                a `UnifiedIOSampler`.
            stop_at_eos: bool. Stop text at EOS (later text is 0 and scores
                stop); `False` reproduces the original's full-length text.
            allowed_ids: optional ids the text may use (e.g. only location
                ids, or the tokens of a closed answer set).
            seed: int for the random samplers (`None` is 0); one seed
                gives the same tokens on every backend.
            **sampler_kwargs: `k`, `p`, `temperature`, `num_beams`.

        Returns:
            dict of NumPy arrays: `text_tokens [B, max_text_length]`,
            `scores [B]` (summed log-probabilities of the written tokens),
            and with `image=True` `image_tokens [B, 256]` (codes without the
            vocabulary offset) and `image [B, R, R, 3]` in [0, 1]. Beam
            search returns the best beam and all beams (`beam_tokens [B,
            K, L]`, `beam_scores [B, K]`, best first); it writes the full
            length, with padding after a beam's EOS.
        """
        text_ids, images, masks = check_encoder_inputs(self.backbone, inputs)
        b = self.backbone
        if not 1 <= max_text_length <= b.max_decoder_text_length:
            raise ValueError(
                f"`max_text_length` must be in [1, {b.max_decoder_text_length}]; "
                f"received {max_text_length}."
            )
        if image and self.vqgan is None:
            raise ValueError(
                "`image=True` needs a VQ-GAN: build `UnifiedIO(backbone, vqgan)`."
            )
        if not isinstance(sampler, UnifiedIOSampler):
            sampler = UnifiedIOSampler(
                sampler,
                vocabulary_size=b.vocabulary_size,
                total_size=b.vocabulary_size + b.image_vocabulary_size,
                allowed_ids=allowed_ids,
                **sampler_kwargs,
            )
        elif allowed_ids is not None or sampler_kwargs:
            raise ValueError(
                "Pass `allowed_ids` and sampler settings to the "
                "`UnifiedIOSampler` itself, not to `generate`."
            )
        if sampler.strategy == "beam" and image:
            raise ValueError(
                "Beam search decodes text only; use `image=False`, or a "
                "sampling strategy for images."
            )
        if sampler.strategy == "beam" and allowed_ids is not None:
            raise ValueError("`allowed_ids` is not supported with beam search.")
        image_length = b.max_decoder_image_length if image else 0
        # Without any image patch in the batch, encode the text alone: the
        # same result on every position that is read, less work per step.
        text_only = not masks.any()
        key = (
            sampler.cache_key(),
            max_text_length,
            image_length,
            bool(stop_at_eos),
            text_only,
        )
        function = self._compiled(key, sampler)
        uniforms = uniform_draws(seed, len(text_ids), max_text_length + image_length)
        if text_only:
            images = masks = None
        outputs = function(
            *unified_io_decoding.split_batch(text_ids, images, masks, uniforms)
        )
        return {k: to_numpy(v) for k, v in outputs.items()}

    # --- tasks ---------------------------------------------------------------
    def predict_tasks(self, examples, **kwargs):
        """Structured answers for a mixed batch of task examples.

        A thin call of `predict_tasks` in the `tasks` package's `predict.py`
        (the task layer sits above the models and is imported on call); see
        it for the arguments (`num_decodes`, `greedy`, `seed`,
        `max_text_length`, `truncate`, `average_loss`) and the results.
        """
        from keras_uio import tasks  # the layer above models, used on call

        return tasks.predict_tasks(self, examples, **kwargs)

    # --- scoring -------------------------------------------------------------
    def score(self, inputs, options, option_masks=None, average_loss=False):
        """Losses of answer options, text or image, as the original ranks them.

        The loss of an option is the summed negative log-likelihood of its
        tokens (the original's `predict_with_answer_options`): text options
        are read as the tokenizer writes them, with EOS, and, as in the
        original, the decoder also predicts EOS at the first padding
        position, so an option `[a, b, EOS]` scores `a`, `b`, EOS and EOS
        again (`UnifiedIOPreprocessor` trains that second EOS too).

        Args:
            inputs: preprocessed encoder inputs as for `generate`.
            options: text options, int ids `[B, N, L]` (0-padded, EOS
                included), or image options as VQ-GAN codes `[B, N, 256]`
                (int, without the vocabulary offset; with `option_masks`)
                or images `[B, N, R, R, 3]` in [-1, 1] (encoded by the
                VQ-GAN).
            option_masks: optional `[B, N, 256]` 0/1 masks for image
                options (which codes count).
            average_loss: divide each loss by its number of scored tokens.

        Returns:
            dict of NumPy arrays: `loss [B, N]` (lower is better) and
            `best [B]` (the index of the lowest loss).

        On JAX the pass is compiled on first use (per option kind and
        count) and reused for calls of the same shapes; TensorFlow and
        PyTorch run it eagerly (one pass: a graph traced per option shape
        would cost more than it saves).
        """
        text_ids, images, masks = check_encoder_inputs(self.backbone, inputs)
        return unified_io_scoring.option_losses(
            self, text_ids, images, masks, options, option_masks, average_loss
        )
