"""Reading a generated output: the image back to the input frame, the
text as ids that `Vocabulary` can parse for locations."""

import re

import numpy as np

from keras_uio.host_arrays import to_numpy
from keras_uio.preprocessing.images import undo_image_preprocessing


def check_output_image(image, name="image"):
    """A generated image: `[H, W, 3]`, float in [0, 1] or uint8.

    Returns float32 `[H, W, 3]` in [0, 1].
    """
    image = to_numpy(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"`{name}` must be one generated RGB image `[H, W, 3]` (float in "
            f"[0, 1] or uint8). Received shape: {image.shape}"
        )
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"`{name}` must be float in [0, 1] or uint8. Received dtype: {image.dtype}"
        )
    image = image.astype(np.float32)
    if not np.all(np.isfinite(image)):
        raise ValueError(f"`{name}` contains nan or inf values.")
    lo, hi = float(image.min()), float(image.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"`{name}` must be in [0, 1]; received values in [{lo:g}, "
            f"{hi:g}]. A raw VQ-GAN output in [-1, 1] must go through "
            "`keras_uio.preprocessing.postprocess_output_image` first."
        )
    return np.clip(image, 0.0, 1.0)


def to_input_frame(image, image_size, interpolation="nearest"):
    """Map a square generated image back to the input image's size.

    An image that already has `image_size` is returned as is; a square one
    has its padding cropped and is resized (`undo_image_preprocessing`).
    With `image_size=None` the image is returned unchanged.
    """
    if image_size is None:
        return image
    h, w = (int(v) for v in image_size)
    if image.shape[:2] == (h, w):
        return image
    if image.shape[0] != image.shape[1]:
        raise ValueError(
            "A generated image must be square (the model's output) or "
            f"already have the input size {(h, w)}. Received shape: "
            f"{image.shape}"
        )
    return undo_image_preprocessing(image, (h, w), interpolation=interpolation)


_SPECIAL_RE = re.compile(r"(<extra_id_\d+>|</s>|<pad>)")


def text_to_parse_ids(text, vocab):
    """Stand-in ids for a generated string, for `Vocabulary` parsing.

    `<extra_id_n>` becomes its real id, `</s>` EOS, `<pad>` padding, and each
    run of other text between them one placeholder id in the SentencePiece
    range. Returns `(ids, detokenize, errors)`; `detokenize` maps a list of
    placeholder ids back to their text.
    """
    ids, chunks, errors = [], [], []
    first, last = vocab.eos_id + 1, vocab.sentencepiece_size
    for part in _SPECIAL_RE.split(str(text)):
        if not part or not part.strip():
            continue
        if part == "</s>":
            ids.append(vocab.eos_id)
            continue
        if part == "<pad>":
            ids.append(vocab.pad_id)
            continue
        m = re.fullmatch(r"<extra_id_(\d+)>", part)
        if m and int(m.group(1)) < vocab.num_extra_ids:
            ids.append(vocab.extra_id(int(m.group(1))))
            continue
        if first + len(chunks) >= last:
            errors.append(f"text chunk {part.strip()!r} dropped: too many")
            continue
        ids.append(first + len(chunks))
        chunks.append(part.strip())

    def detokenize(placeholder_ids):
        return " ".join(chunks[int(i) - first] for i in placeholder_ids)

    return np.asarray(ids, np.int64), detokenize, errors
