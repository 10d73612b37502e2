"""Encoded mixture examples -> preprocessed NumPy batches `(x, y, sw)`."""

import numpy as np

from keras_uio.data.objectives import PATCH_MASK_RATIO_KEY
from keras_uio.data.objectives import PROMPT_IDS_KEY
from keras_uio.data.objectives import TARGET_IDS_KEY
from keras_uio.data.objectives import hide_patches
from keras_uio.data.objectives import select_patches

TAG_KEYS = ("task", "source")


def check_batch_size(batch_size):
    """`batch_size` as a positive int, else a `ValueError`."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: {batch_size!r}"
        )
    return int(batch_size)


# ------------------------------------------------------ preprocessing
def _shapes(preprocessor, image_targets, num_image_patches=None):
    le = preprocessor.encoder_sequence_length
    ld = preprocessor.decoder_sequence_length
    size = preprocessor.image_converter.image_size[0]
    patches = num_image_patches or preprocessor.image_converter.num_patches
    x = {
        "text_encoder_inputs": ((le,), "int32"),
        "image_encoder_inputs": ((size, size, 3), "float32"),
        "image_input_masks": ((patches,), "int32"),
        "text_decoder_inputs": ((ld,), "int32"),
        "text_decoder_masks": ((ld,), "int32"),
    }
    if num_image_patches:
        x["image_input_indices"] = ((patches,), "int32")
    if image_targets:
        conv = preprocessor.target_image_converter
        t = conv.image_size[0]
        x["image_decoder_targets"] = ((t, t, 3), "float32")
        x["image_target_masks"] = ((conv.num_patches,), "int32")
    y = {"text_decoder_targets": ((ld,), "int32")}
    return x, y, dict(y)


def output_signature(
    preprocessor, batch_size, image_targets=True, num_image_patches=None
):
    """`tf.TensorSpec`s of `preprocess_examples`' batches (for tf.data)."""
    import tensorflow as tf

    return tuple(
        {k: tf.TensorSpec((batch_size,) + s, d) for k, (s, d) in part.items()}
        for part in _shapes(preprocessor, image_targets, num_image_patches)
    )


def _pack_ids(ids, length, truncate, eos_id, what):
    ids = [int(i) for i in np.asarray(ids).reshape(-1)] + [eos_id]
    if len(ids) > length:
        if not truncate:
            raise ValueError(
                f"{what} has {len(ids)} tokens (with EOS), longer than the "
                f"sequence length {length}. Pass `truncate=True` to the "
                "preprocessor, or a smaller `max_text_tokens` to the "
                "objective."
            )
        ids = ids[: length - 1] + [eos_id]
    out = np.zeros((length,), np.int32)
    out[: len(ids)] = ids
    return out


def preprocess_examples(
    examples, preprocessor, rng=None, num_image_patches=None, image_targets=True
):
    """Encoded examples (a `Mixture`'s) -> one NumPy batch `(x, y, sw)`.

    Each example goes through `preprocessor` eagerly, so images of any size
    and rows with or without images mix freely. On top of the
    preprocessor's keys this understands:
    - `"prompt_ids"` / `"target_text_ids"`: token ids (no EOS) packed as
      the preprocessor packs text (EOS appended, 0 padding, decoder inputs
      shifted right) - the span-corruption objective's output;
    - `"patch_mask_ratio"`: hide that fraction of the image's patches
      (`hide_patches`, masked image denoising);
    - `"task"` / `"source"` tags (ignored).
    Then `num_image_patches` keeps a random subset of the visible patches
    of every image, compacted: `image_input_indices` and `image_input_masks`
    become `[B, num_image_patches]` (`select_patches`).

    With `image_targets`, every batch has `x["image_decoder_targets"]`
    (`[B, 256, 256, 3]`) and `x["image_target_masks"]` (`[B, 256]`), zero
    for rows without a target image; without it, a target image raises.

    Returns:
        `(x, y, sw)` dicts of NumPy arrays (see `UnifiedIOPreprocessor`).

    Example:
    ```python
    import itertools

    import keras_uio
    from keras_uio.data import Mixture
    from keras_uio.models.unified_io.unified_io_preset_loading import (
        bundled_preset_path,
    )

    preprocessor = keras_uio.UnifiedIOPreprocessor.from_preset(
        bundled_preset_path("uio_tiny_easyvqa"))  # the shipped preset's folder
    qa = [{"question": "Who?", "context": "Ann ran.", "answer": "Ann"}]
    captions = [{"image": np.zeros((64, 64, 3), "uint8"), "caption": "dark"}]
    mixture = Mixture([("text_qa", qa), ("captioning", captions)], seed=0)
    x, y, sw = preprocess_examples(
        list(itertools.islice(iter(mixture), 4)), preprocessor,
        image_targets=False)
    x["text_encoder_inputs"].shape, y["text_decoder_targets"].shape
    # (4, 32), (4, 16): the preset's sequence lengths
    ```
    """
    if rng is None:
        rng = np.random.default_rng()
    if not examples:
        raise ValueError("`examples` must not be empty.")
    if num_image_patches is not None:
        total = preprocessor.image_converter.num_patches
        if not 1 <= num_image_patches <= total:
            raise ValueError(
                f"`num_image_patches` must be in [1, {total}] (the image "
                f"converter's patches). Received: {num_image_patches!r}"
            )
    shapes = _shapes(preprocessor, image_targets, num_image_patches)
    eos = preprocessor.tokenizer.vocab.eos_id
    rows = []
    for i, example in enumerate(examples):
        ex = {k: v for k, v in example.items() if k not in TAG_KEYS}
        who = (
            f"example {i} (task {example.get('task', '?')!r}, source "
            f"{example.get('source', '?')!r})"
        )
        prompt_ids = ex.pop(PROMPT_IDS_KEY, None)
        target_ids = ex.pop(TARGET_IDS_KEY, None)
        ratio = ex.pop(PATCH_MASK_RATIO_KEY, None)
        if prompt_ids is not None:
            ex.setdefault("prompt", "")
        if target_ids is not None and "target_text" in ex:
            raise ValueError(f"{who}: has both `target_text` and `target_text_ids`.")
        if not image_targets and ex.get("target_image") is not None:
            raise ValueError(
                f"{who} has a `target_image` but the batches have no image "
                "targets; pass `image_targets=True`."
            )
        ex = {k: v for k, v in ex.items() if v is not None}
        try:
            x, y, sw = preprocessor(ex)
        except ValueError as err:
            # Keep the message; drop Keras' dump of the call's arguments
            # (whole images) that it appends to errors raised in `call`.
            message = str(err).split("\n\nArguments received by")[0]
            raise ValueError(f"{who}: {message.strip()}") from err
        x = {k: np.asarray(v) for k, v in x.items()}
        y = {k: np.asarray(v) for k, v in y.items()}
        if prompt_ids is not None:
            x["text_encoder_inputs"] = _pack_ids(
                prompt_ids,
                preprocessor.encoder_sequence_length,
                preprocessor.truncate,
                eos,
                f"{who}: `prompt_ids`",
            )
        if target_ids is not None:
            targets = _pack_ids(
                target_ids,
                preprocessor.decoder_sequence_length,
                preprocessor.truncate,
                eos,
                f"{who}: `target_text_ids`",
            )
            y["text_decoder_targets"] = targets
            x["text_decoder_inputs"] = np.concatenate([[0], targets[:-1]]).astype(
                np.int32
            )
            x["text_decoder_masks"] = (targets > 0).astype(np.int32)
        if ratio is not None:
            x["image_input_masks"] = hide_patches(x["image_input_masks"], ratio, rng)
        if num_image_patches is not None:
            x["image_input_indices"], x["image_input_masks"] = select_patches(
                x["image_input_masks"], num_image_patches, rng
            )
        extra = set(x) - set(shapes[0])
        if extra:
            raise ValueError(
                f"{who}: the preprocessor produced {sorted(extra)}, which "
                "mixture batches do not support (`target_codes`?); give "
                "`target_image` instead."
            )
        rows.append((x, y))
    x_shapes, y_shapes, _ = shapes
    x = {}
    for k, (shape, dtype) in x_shapes.items():
        x[k] = np.stack(
            [r[0][k] if k in r[0] else np.zeros(shape, dtype) for r in rows]
        ).astype(dtype)
    y = {
        k: np.stack([r[1][k] for r in rows]).astype(d) for k, (_, d) in y_shapes.items()
    }
    sw = {"text_decoder_targets": x["text_decoder_masks"].copy()}
    return x, y, sw
