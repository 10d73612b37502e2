"""Validation of task inputs: images, boxes, texts, answer options.

Every check raises a `ValueError` that names the input and says what is
accepted; the `Task` classes call them on every input before building a
prompt.
"""

import numpy as np

from keras_uio.host_arrays import to_numpy
from keras_uio.preprocessing.images import prepare_image


def check_image(image, name="image"):
    """Validate one input image; returns its `(height, width)`.

    Accepted: `[H, W]`, `[H, W, 1]`, `[H, W, 3]` or `[H, W, 4]` arrays, uint8
    (0..255) or float (0..1). Anything else raises a `ValueError` that lists
    these shapes.
    """
    if image is None:
        raise ValueError(f"`{name}` is required. Received: None")
    prepare_image(image, name=name)
    return tuple(int(v) for v in np.shape(image)[:2])


def check_box(box, name="region"):
    """Validate one `(x1, y1, x2, y2)` pixel box; returns a float64 `[4]`."""
    try:
        arr = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (4,) or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"`{name}` must be one box `(x1, y1, x2, y2)` of 4 finite pixel "
            f"coordinates. Received: {box!r}"
        )
    if arr[2] < arr[0] or arr[3] < arr[1]:
        raise ValueError(
            f"`{name}` must have x1 <= x2 and y1 <= y2 (order "
            f"`(x1, y1, x2, y2)`). Received: {arr.tolist()}"
        )
    return arr


def check_box_in_image(box, image_size, name="region", clip=False):
    """A box inside the image with a positive area.

    With `clip=True` a box reaching outside the image is cut to it first;
    otherwise it raises. A box with no area (after clipping) always raises.
    """
    height, width = image_size
    limits = np.array([width, height, width, height], np.float64)
    inside = np.clip(box, 0, limits)
    if not clip and not np.array_equal(inside, box):
        raise ValueError(
            f"`{name}` {box.tolist()} reaches outside the {width}x{height} "
            "image (x in [0, width], y in [0, height]). Pass a box inside "
            "the image, or build the task with `clip_regions=True` to cut "
            "it to the image."
        )
    if inside[2] <= inside[0] or inside[3] <= inside[1]:
        raise ValueError(
            f"`{name}` {box.tolist()} has no area inside the {width}x{height} image."
        )
    return inside


def check_boxes(boxes, name="boxes"):
    """Validate `[n, 4]` `(x1, y1, x2, y2)` boxes; returns float64 `[n, 4]`."""
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is not None and arr.size == 0:
        return np.zeros((0, 4))
    if arr is not None and arr.ndim == 1 and arr.shape == (4,):
        arr = arr[None]
    if arr is None or arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(
            f"`{name}` must be `[num_boxes, 4]` `(x1, y1, x2, y2)` pixel "
            f"boxes. Received: {boxes!r}"
        )
    for i, b in enumerate(arr):
        check_box(b, name=f"{name}[{i}]")
    return arr


def check_text(value, name):
    """A non-empty string (bytes are decoded)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"`{name}` must be a non-empty string. Received: {value!r}")
    return value.strip()


def check_options(options, name="answer_options"):
    """A non-empty list of distinct non-empty strings (or `None`)."""
    if options is None:
        return None
    if isinstance(options, (str, bytes)):
        raise ValueError(
            f"`{name}` must be a list of strings, not one string. Received: {options!r}"
        )
    try:
        out = [check_text(o, f"{name}[{i}]") for i, o in enumerate(options)]
    except TypeError:
        raise ValueError(
            f"`{name}` must be a list of strings. Received: {options!r}"
        ) from None
    if not out:
        raise ValueError(f"`{name}` must not be empty.")
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}` must be distinct. Received: {out}")
    return out


def check_image_options(options, name="answer_options"):
    """A non-empty list of distinct images (each as `check_image` accepts)."""
    if options is None:
        return None
    if isinstance(options, (str, bytes)) or not hasattr(options, "__len__"):
        raise ValueError(
            f"`{name}` must be a list of images (arrays). Received: {options!r}"
        )
    if not len(options):
        raise ValueError(f"`{name}` must not be empty.")
    out = []
    for i, option in enumerate(options):
        if isinstance(option, (str, bytes)):
            raise ValueError(
                f"`{name}[{i}]` must be an image array; this task answers "
                f"with an image. Received: {option!r}"
            )
        check_image(option, f"{name}[{i}]")
        option = to_numpy(option)
        for j, earlier in enumerate(out):
            if earlier.shape == option.shape and np.array_equal(earlier, option):
                raise ValueError(
                    f"`{name}` must be distinct: {name}[{j}] and {name}[{i}] "
                    "are the same image."
                )
        out.append(option)
    return out
