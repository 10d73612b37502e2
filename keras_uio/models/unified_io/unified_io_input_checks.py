"""Checks of the inputs `UnifiedIO` and `UnifiedIOBackbone` are given.

Out-of-range ids would read arbitrary embedding rows without an error, and
unnormalised pixels give confident nonsense, so concrete inputs are checked
before they reach the network; each error names the field.
"""

import numpy as np

from keras_uio.host_arrays import concrete_numpy
from keras_uio.host_arrays import to_numpy

ENCODER_INPUT_NAMES = (
    "text_encoder_inputs",
    "image_encoder_inputs",
    "image_input_masks",
)
# ImageNet-normalised pixels lie in [-2.12, 2.64]; a magnitude above 8 can
# only be unnormalised (e.g. 0..255) pixels. (Synthetic standard-normal
# inputs, as in the benchmarks, stay far below it.)
MAX_NORMALIZED_PIXEL = 8.0


def check_encoder_inputs(backbone, inputs):
    """Checked `(text ids, images, masks)` as int32/float32/int32 NumPy.

    The encoder inputs of `generate` and `score`: a dict with
    `ENCODER_INPUT_NAMES`, shapes that fit `backbone`, ids in its
    vocabulary, 0/1 masks and finite, normalised pixels; a `ValueError`
    names the field otherwise.
    """
    if not isinstance(inputs, dict):
        raise ValueError(
            "`inputs` must be a dict with keys "
            f"{list(ENCODER_INPUT_NAMES)} (preprocessed); received "
            f"{type(inputs).__name__}."
        )
    missing = [k for k in ENCODER_INPUT_NAMES if k not in inputs]
    if missing:
        raise ValueError(
            f"`inputs` lacks {missing}; expected keys {list(ENCODER_INPUT_NAMES)}."
        )
    b = backbone
    text = to_numpy(inputs["text_encoder_inputs"])
    images = to_numpy(inputs["image_encoder_inputs"])
    masks = to_numpy(inputs["image_input_masks"])
    size, patches = b.image_size, (b.image_size // b.patch_size) ** 2
    if text.ndim != 2 or not np.issubdtype(text.dtype, np.integer):
        raise ValueError(
            "`text_encoder_inputs` must be an int array [batch, length]; "
            f"received {text.dtype} of shape {text.shape}."
        )
    if images.shape != (len(text), size, size, 3):
        raise ValueError(
            f"`image_encoder_inputs` must have shape ({len(text)}, {size}, "
            f"{size}, 3); received {images.shape}."
        )
    if masks.shape != (len(text), patches):
        raise ValueError(
            f"`image_input_masks` must have shape ({len(text)}, {patches}); "
            f"received {masks.shape}."
        )
    vocab = b.vocabulary_size + b.image_vocabulary_size
    if text.size and (text.min() < 0 or text.max() >= vocab):
        raise ValueError(
            f"`text_encoder_inputs` ids must be in [0, {vocab}); received "
            f"[{text.min()}, {text.max()}]."
        )
    if not np.isin(masks, (0, 1)).all():
        raise ValueError(
            "`image_input_masks` must hold only 0 (no patch) and 1; "
            f"received values {np.unique(masks)[:8].tolist()}."
        )
    if not np.isfinite(images).all():
        raise ValueError("`image_encoder_inputs` contains nan or inf values.")
    if images.size and np.abs(images).max() > MAX_NORMALIZED_PIXEL:
        raise ValueError(
            "`image_encoder_inputs` must be normalised pixels ((x / 255 - "
            "mean) / std, within about [-2.2, 2.7]; see "
            "`UnifiedIOImageConverter`); received values in "
            f"[{images.min():g}, {images.max():g}]."
        )
    return text.astype("int32"), images.astype("float32"), masks.astype("int32")


def check_backbone_inputs(backbone, inputs):
    """`UnifiedIOBackbone.check_inputs`: ids in the vocabulary, 0/1 masks and
    finite pixels, for concrete inputs (symbolic tensors are skipped)."""
    total = backbone.vocabulary_size + backbone.image_vocabulary_size
    for name in ("text_encoder_inputs", "text_decoder_inputs", "image_decoder_inputs"):
        values = concrete_numpy(inputs.get(name))
        if (
            values is not None
            and values.size
            and (values.min() < 0 or values.max() >= total)
        ):
            raise ValueError(
                f"`{name}` ids must be in [0, {total}); received values "
                f"in [{values.min()}, {values.max()}]."
            )
    for name in ("image_input_masks", "text_decoder_masks"):
        values = concrete_numpy(inputs.get(name))
        if values is not None and not np.isin(values, (0, 1)).all():
            raise ValueError(f"`{name}` must hold only 0 and 1.")
    images = concrete_numpy(inputs.get("image_encoder_inputs"))
    if images is not None and not np.isfinite(images).all():
        raise ValueError("`image_encoder_inputs` contains nan or inf values.")
