"""Unified-IO preprocessor: examples -> backbone inputs, targets, masks."""

import keras
import numpy as np
from keras_hub.models import Seq2SeqLMPreprocessor

from keras_uio.host_arrays import to_numpy
from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
from keras_uio.models.unified_io.unified_io_image_converter import (
    UnifiedIOImageConverter,
)
from keras_uio.models.unified_io.unified_io_image_converter import in_tf_graph
from keras_uio.models.unified_io.unified_io_tokenizer import UnifiedIOTokenizer

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover
    tf = None

_KEYS = (
    "prompt",
    "image",
    "target_text",
    "target_image",
    "target_codes",
    "mask_region",
)


@keras.saving.register_keras_serializable(package="keras_uio")
class UnifiedIOPreprocessor(Seq2SeqLMPreprocessor):
    """Turns Unified-IO examples into backbone inputs and targets.

    Input: a dict with
    - `"prompt"`: string or batch of strings (required);
    - `"image"`: optional image(s) (batch array, list of arrays of any size
      with `None` for "no image", or one image when unbatched);
    - `"target_text"`: optional target string(s) (default: empty, i.e. only
      EOS, as the original does for image outputs);
    - `"target_image"`: optional target image(s) for the VQ-GAN;
    - `"target_codes"`: optional `[B, 256]` VQ-GAN codes (0-based);
    - `"mask_region"`: optional `(x1, y1, x2, y2)` per image whose patches
      are removed from the encoder mask (inpainting).

    Output `(x, y, sample_weight)`:
    - `x["text_encoder_inputs"]` `[B, Le]` int32 (EOS appended, 0 padding),
      `x["image_encoder_inputs"]` `[B, 384, 384, 3]`,
      `x["image_input_masks"]` `[B, 576]`,
      `x["text_decoder_inputs"]` `[B, Ld]` (`[0, targets[:-1]]`),
      `x["text_decoder_masks"]` `[B, Ld]` (`targets > 0`); a text answer's
      targets end in EOS twice (the option scoring of `UnifiedIO.score`
      reads the step after EOS, so training teaches it), an empty one
      (image tasks) in EOS once;
    - with `target_codes`: `x["image_decoder_inputs"]` `[B, 256]`
      (`[image_start, (codes + offset)[:-1]]`), `x["image_target_masks"]`;
    - with only `target_image`: `x["image_decoder_targets"]`
      `[B, 256, 256, 3]` in [-1, 1] (the model's VQ-GAN encodes it) and
      `x["image_target_masks"]` `[B, 256]`;
    - `y = {"text_decoder_targets": ...}` plus `"image_decoder_targets"`
      (ids, offset added) with `target_codes`; `sample_weight` holds the
      matching masks under the same keys.

    Text longer than its sequence length raises a `ValueError` (an
    `InvalidArgumentError` inside `tf.data`) unless `truncate=True`, which
    cuts it and keeps EOS last.

    Args:
        tokenizer: a `UnifiedIOTokenizer`.
        image_converter: encoder `UnifiedIOImageConverter` (384, default).
        target_image_converter: target converter (256, `target=True`).
        encoder_sequence_length: int, `Le` (the original allows 256).
        decoder_sequence_length: int, `Ld` (128).
        truncate: bool.

    Example:
    ```python
    from keras_uio.models.unified_io.unified_io_preset_loading import (
        bundled_preset_path,
    )

    # The shipped preset's tokenizer (T5's, in a converted model's folder).
    folder = bundled_preset_path("uio_tiny_easyvqa")
    tokenizer = UnifiedIOTokenizer.from_preset(folder)
    preprocessor = UnifiedIOPreprocessor(tokenizer, encoder_sequence_length=32,
                                         decoder_sequence_length=16)
    x, y, w = preprocessor({
        "prompt": ["What does the image describe ?"],
        "image": [np.zeros((480, 640, 3), "uint8")],
        "target_text": ["a dog"],
    })
    x["image_encoder_inputs"].shape, x["image_input_masks"].shape
    # (1, 384, 384, 3), (1, 576)
    ```
    """

    backbone_cls = UnifiedIOBackbone

    tokenizer_cls = UnifiedIOTokenizer
    image_converter_cls = UnifiedIOImageConverter

    def __init__(
        self,
        tokenizer,
        image_converter=None,
        target_image_converter=None,
        encoder_sequence_length=256,
        decoder_sequence_length=128,
        truncate=False,
        **kwargs,
    ):
        super().__init__(
            tokenizer=tokenizer,
            encoder_sequence_length=encoder_sequence_length,
            decoder_sequence_length=decoder_sequence_length,
            **kwargs,
        )
        if image_converter is None:
            image_converter = UnifiedIOImageConverter()
        if target_image_converter is None:
            target_image_converter = UnifiedIOImageConverter(
                image_size=256, target=True
            )
        self.image_converter = image_converter
        self.target_image_converter = target_image_converter
        self.truncate = bool(truncate)
        self.built = True

    def build(self, input_shape):
        self.built = True

    # ----------------------------------------------------------- helpers
    @property
    def vocab(self):
        return self.tokenizer.vocab

    def _check_inputs(self, x):
        if isinstance(x, (str, bytes)) or not isinstance(x, dict):
            x = {"prompt": x}
        unknown = set(x) - set(_KEYS)
        if unknown:
            raise ValueError(
                f"Unknown example keys {sorted(unknown)}; expected some of "
                f"{list(_KEYS)}"
            )
        if "prompt" not in x:
            raise ValueError(f"`x` must contain a 'prompt'. Received keys: {sorted(x)}")
        return {k: v for k, v in x.items() if v is not None}

    def _pack_python(self, rows, length, name):
        out = np.zeros((len(rows), length), np.int32)
        for i, ids in enumerate(rows):
            ids = list(ids)
            if len(ids) > length:
                if not self.truncate:
                    raise ValueError(
                        f"`{name}` example {i} has {len(ids)} tokens (with "
                        f"EOS), longer than the sequence length {length}. "
                        "Pass `truncate=True` to cut it."
                    )
                ids = ids[: length - 1] + [self.vocab.eos_id]
            out[i, : len(ids)] = ids
        return out

    def _pack_tf(self, ragged, length, name):
        lengths = ragged.row_lengths()
        if not self.truncate:
            check = tf.debugging.assert_less_equal(
                lengths,
                tf.cast(length, lengths.dtype),
                message=(
                    f"`{name}` is longer than the sequence length {length}; "
                    "pass `truncate=True` to cut it"
                ),
            )
            with tf.control_dependencies([check]):
                ragged = ragged.with_flat_values(tf.identity(ragged.flat_values))
        cut = ragged[:, : length - 1]
        eos = tf.ones([ragged.nrows(), 1], ragged.dtype)
        long = tf.expand_dims(lengths > length, 1)
        last = tf.where(long, eos, tf.zeros_like(eos))
        truncated = tf.concat([cut, tf.RaggedTensor.from_tensor(last)], 1)
        dense_cut = truncated.to_tensor(shape=[None, length])
        dense = ragged.to_tensor(shape=[None, length])
        dense = tf.where(long, dense_cut, dense)
        return tf.cast(dense, tf.int32)

    def _tokenize_pack(self, texts, length, name):
        ids = self.tokenizer(texts)
        if in_tf_graph():
            if not isinstance(ids, tf.RaggedTensor):
                ids = tf.RaggedTensor.from_tensor(ids, padding=0)
            return self._pack_tf(ids, length, name)
        if isinstance(ids, np.ndarray) and ids.ndim == 2:
            ids = [np.trim_zeros(r, "b") for r in ids]
        return self._pack_python(ids, length, name)

    # -------------------------------------------------------------- call
    def _batch(self, x):
        """Canonicalise to a batch; returns (x, unbatched)."""
        prompt = x["prompt"]
        if in_tf_graph():
            prompt = tf.convert_to_tensor(prompt)
            unbatched = prompt.shape.rank == 0
            if unbatched:
                x = {
                    k: (tf.expand_dims(tf.convert_to_tensor(v), 0))
                    for k, v in x.items()
                }
            return x, unbatched
        if hasattr(prompt, "numpy"):
            prompt = prompt.numpy()
        prompt = np.asarray(prompt, dtype=object)
        unbatched = prompt.ndim == 0
        out = dict(x)
        if unbatched:
            out = {k: [v] for k, v in x.items()}
            out["prompt"] = [prompt.item()]
        else:
            out["prompt"] = prompt.tolist()
        n = len(out["prompt"])
        for k, v in out.items():
            if len(v) != n:
                raise ValueError(
                    f"`{k}` must have one entry per prompt. Received {len(v)} "
                    f"for {n} prompts"
                )
        return out, unbatched

    def _encode(self, x):
        """Shared by `call` and `generate_preprocess`."""
        n_text = self._tokenize_pack(
            x["prompt"], self.encoder_sequence_length, "prompt"
        )
        if "image" in x:
            conv = self.image_converter.convert(
                x["image"], mask_regions=x.get("mask_region")
            )
            images, masks = conv["images"], conv["patch_masks"]
        else:
            if "mask_region" in x:
                raise ValueError("`mask_region` needs an 'image'.")
            size = self.image_converter.image_size[0]
            n = tf.shape(n_text)[0] if in_tf_graph() else len(x["prompt"])
            if in_tf_graph():
                images = tf.zeros([n, size, size, 3], tf.float32)
                masks = tf.zeros([n, self.image_converter.num_patches], tf.int32)
            else:
                images = np.zeros((n, size, size, 3), np.float32)
                masks = np.zeros((n, self.image_converter.num_patches), np.int32)
        return {
            "text_encoder_inputs": n_text,
            "image_encoder_inputs": images,
            "image_input_masks": masks,
        }

    def _shift_right(self, targets, start):
        if in_tf_graph():
            first = tf.fill(
                [tf.shape(targets)[0], 1], tf.constant(start, targets.dtype)
            )
            return tf.concat([first, targets[:, :-1]], 1)
        first = np.full((targets.shape[0], 1), start, targets.dtype)
        return np.concatenate([first, targets[:, :-1]], 1)

    def _eos_after_eos(self, targets):
        """EOS also at the first padding position of a text answer.

        `UnifiedIO.score`, as the original's answer-option scoring, also
        reads the decoder's prediction one step after EOS. Without a target
        there, training never teaches that position, and its untaught loss
        (up to ~9 nats) can decide between options. Targets of EOS alone
        (image tasks, whose image tokens attend to the text keys) and
        targets that fill the sequence are left as they are.
        """
        eos = self.vocab.eos_id
        if in_tf_graph():
            length = tf.reduce_sum(tf.cast(targets > 0, targets.dtype), 1)[:, None]
            positions = tf.range(tf.shape(targets)[1], dtype=targets.dtype)[None]
            extra = (positions == length) & (length >= 2)
            return targets + tf.cast(extra, targets.dtype) * eos
        length = (targets > 0).sum(1, keepdims=True)
        extra = (np.arange(targets.shape[1])[None] == length) & (length >= 2)
        return targets + extra.astype(targets.dtype) * eos

    def _process(self, x):
        x = self._check_inputs(x)
        x, unbatched = self._batch(x)
        out = self._encode(x)
        graph = in_tf_graph()
        if "target_text" in x:
            target_text = x["target_text"]
        elif graph:
            target_text = tf.fill(tf.shape(x["prompt"]), "")
        else:
            target_text = [""] * len(x["prompt"])
        targets = self._tokenize_pack(
            target_text, self.decoder_sequence_length, "target_text"
        )
        targets = self._eos_after_eos(targets)
        cast = (
            (lambda t: tf.cast(t, tf.int32))
            if graph
            else (lambda t: np.asarray(t).astype(np.int32))
        )
        text_masks = cast(targets > 0)
        out["text_decoder_inputs"] = self._shift_right(targets, 0)
        out["text_decoder_masks"] = text_masks
        y = {"text_decoder_targets": targets}
        sw = {"text_decoder_targets": text_masks}
        if "target_codes" in x:
            codes = x["target_codes"]
            codes = cast(codes) if graph else np.asarray(codes, np.int32)
            if not graph and (
                codes.ndim != 2
                or codes.min() < 0
                or codes.max() >= self.vocab.image_vocab_size
            ):
                raise ValueError(
                    "`target_codes` must be `[B, num_codes]` ints in "
                    f"[0, {self.vocab.image_vocab_size - 1}]. Received shape "
                    f"{codes.shape}, range [{codes.min()}, {codes.max()}]"
                )
            ids = codes + self.vocab.image_offset
            out["image_decoder_inputs"] = self._shift_right(
                ids, self.vocab.image_start_id
            )
            if "target_image" in x:
                masks = self.target_image_converter.convert(x["target_image"])[
                    "patch_masks"
                ]
            else:
                masks = tf.ones_like(ids) if graph else np.ones_like(ids)
            out["image_target_masks"] = masks
            y["image_decoder_targets"] = ids
            sw["image_decoder_targets"] = masks
        elif "target_image" in x:
            conv = self.target_image_converter.convert(x["target_image"])
            out["image_decoder_targets"] = conv["images"]
            out["image_target_masks"] = conv["patch_masks"]
        if unbatched:
            squeeze = (lambda t: tf.squeeze(t, 0)) if graph else (lambda t: t[0])
            out = {k: squeeze(v) for k, v in out.items()}
            y = {k: squeeze(v) for k, v in y.items()}
            sw = {k: squeeze(v) for k, v in sw.items()}
        return out, y, sw

    def call(self, x, y=None, sample_weight=None):
        """See the class docstring. `y`/`sample_weight` must be `None`."""
        if y is not None or sample_weight is not None:
            raise ValueError(
                "`UnifiedIOPreprocessor` computes its own targets; pass the "
                "target text/image inside `x`. Received a non-None "
                "`y`/`sample_weight`."
            )
        x, y, sw = self._process(x)
        return keras.utils.pack_x_y_sample_weight(x, y, sw)

    def generate_preprocess(self, x, truncate=None):
        """Encoder inputs only (prompt, image, mask region).

        `truncate` overrides the preprocessor's own setting for this call:
        `True` cuts a prompt longer than `text_encoder_length` (keeping EOS)
        instead of raising.
        """
        x = self._check_inputs(x)
        x, unbatched = self._batch(x)
        own = self.truncate
        self.truncate = own if truncate is None else bool(truncate)
        try:
            out = self._encode(x)
        finally:
            self.truncate = own
        if unbatched:
            out = {k: v[0] for k, v in out.items()}
        return out

    def generate_postprocess(self, x):
        """Generated text ids -> strings (stops at the first EOS)."""
        ids = x["text_decoder_targets"] if isinstance(x, dict) else x
        if hasattr(ids, "numpy"):
            ids = ids.numpy()
        ids = to_numpy(ids)
        single = ids.ndim == 1
        rows = ids[None] if single else ids
        texts = []
        for row in rows:
            stop = np.flatnonzero(row == self.vocab.eos_id)
            row = row[: stop[0]] if stop.size else row
            texts.append(self.tokenizer.detokenize(row[row != 0].tolist()))
        return texts[0] if single else texts

    # ------------------------------------------------------------ config
    @property
    def target_image_size(self):
        return self.target_image_converter.image_size

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder_sequence_length": self.encoder_sequence_length,
                "decoder_sequence_length": self.decoder_sequence_length,
                "truncate": self.truncate,
                "target_image_converter": keras.layers.serialize(
                    self.target_image_converter
                ),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("target_image_converter"), dict):
            config["target_image_converter"] = keras.layers.deserialize(
                config["target_image_converter"]
            )
        return super().from_config(config)
