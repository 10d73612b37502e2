"""Image preprocessing exactly as the original Unified-IO (plain NumPy).

The original resizes with torchvision's antialiased bilinear filter (the
PIL-style triangle filter whose support grows with the downscale factor).
`resize_bilinear_antialias` reimplements that filter as two weight matrices,
so results agree with the original to float rounding without torch.

All functions take one image. `prepare_image` says what is accepted:

- arrays `[H, W]` or `[H, W, 1]` (grey), `[H, W, 3]` (RGB) or `[H, W, 4]`
  (RGBA, the alpha channel is dropped, not composited), of dtype uint8
  (0..255), uint16 (0..65535) or float (0..1, with a 1e-3 tolerance);
  NaN, inf and out-of-range floats raise a `ValueError`;
- PIL images in any mode: palette (`P`, `PA`), `CMYK`, `YCbCr`, `LAB` and
  `HSV` are converted to RGB by PIL; 16-bit modes (`I;16*`, and `I`, which
  must hold 0..65535) are divided by 65535; `F` must hold 0..1 like float
  arrays; `1` is black and white; alpha (`LA`, `RGBA`, `PA`, ...) is dropped.
"""

import os
import struct
import sys

import numpy as np

from keras_uio.host_arrays import to_numpy

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENCODER_IMAGE_SIZE = 384
TARGET_IMAGE_SIZE = 256
PATCH_SIZE = 16

# Floats may overshoot [0, 1] by this much (resampling ringing, rounding).
FLOAT_TOLERANCE = 1e-3
UINT16_MAX = 65535
# PIL modes read as arrays without PIL's conversion (which clips 16-bit
# values at 255 and so saturates 16-bit images).
_PIL_DIRECT_MODES = ("1", "L", "LA", "RGB", "RGBA", "RGBX", "F")
# Premultiplied-alpha modes PIL cannot convert to RGB directly.
_PIL_UNPREMULTIPLY = {"La": "LA", "RGBa": "RGBA"}
_ACCEPTED = (
    "arrays [H, W], [H, W, 1] (grey), [H, W, 3] (RGB) or [H, W, 4] (RGBA) of "
    "dtype uint8 (0..255), uint16 (0..65535) or float (0..1), or PIL images"
)


def is_pil_image(image):
    """Whether `image` is a `PIL.Image.Image` (without importing PIL)."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(image, module.Image)


def _pil_integer_array(image, name):
    """Modes `I`, `I;16*`: the pixel values as uint16 (0..65535)."""
    array = np.asarray(image)
    if array.size == 0:
        return array.astype(np.uint16)
    lo, hi = int(array.min()), int(array.max())
    if lo < 0 or hi > UINT16_MAX:
        raise ValueError(
            f"`{name}` is a PIL image of mode {image.mode!r}, read as 16-bit "
            f"(0..{UINT16_MAX}), but holds values in [{lo}, {hi}]. Convert it "
            "to 'L' (0..255) or pass an array (uint8, uint16 or float 0..1)."
        )
    return array.astype(np.uint16)


def _pil_converted_array(image, name):
    """Any other mode: PIL's conversion to RGB (alpha dropped)."""
    mode = image.mode
    try:
        if mode in _PIL_UNPREMULTIPLY:
            image = image.convert(_PIL_UNPREMULTIPLY[mode])
            return np.asarray(image)[..., :-1]
        return np.asarray(image.convert("RGB"))
    except (ValueError, OSError) as e:
        raise ValueError(
            f"`{name}` is a PIL image of mode {mode!r}, which cannot be "
            f"converted to RGB ({e}). Convert it to 'RGB' first."
        ) from None


def pil_to_array(image, name="image"):
    """A PIL image as an array that `prepare_image` reads without guessing.

    Args:
        image: a `PIL.Image.Image` in any mode.
        name: argument name used in error messages.

    Returns:
        uint8 `[H, W]` or `[H, W, 3]` (8-bit modes and everything PIL
        converts to RGB), uint16 `[H, W]` (`I;16*` and `I`) or float32
        `[H, W]` (`F`, to be checked for the [0, 1] range). Alpha is dropped.

    Example:
    >>> from PIL import Image
    >>> red = Image.new("RGB", (3, 2), (255, 0, 0)).convert("P")
    >>> pil_to_array(red)[0, 0].tolist()
    [255, 0, 0]
    """
    try:
        image.load()
    except (OSError, ValueError, EOFError, SyntaxError, struct.error) as e:
        raise ValueError(
            f"`{name}` is a PIL image whose pixels cannot be decoded: {e}"
        ) from None
    mode = image.mode
    if mode == "1":
        return np.asarray(image, dtype=np.uint8) * np.uint8(255)
    if mode.startswith("I"):
        return _pil_integer_array(image, name)
    if mode in _PIL_DIRECT_MODES:
        array = np.asarray(image)
        if mode in ("LA", "RGBA", "RGBX"):
            array = array[..., :-1]
        return array
    return _pil_converted_array(image, name)


def _as_array(image, name):
    """A tensor, PIL image or array-like as a NumPy array."""
    if is_pil_image(image):
        return pil_to_array(image, name)
    if isinstance(image, (str, bytes, os.PathLike)):
        raise ValueError(
            f"`{name}` must be an image ({_ACCEPTED}), not a file name. "
            f"Received: {image!r}; read the file first with "
            "`keras_uio.preprocessing.read_image(path)`."
        )
    try:
        return to_numpy(image)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"`{name}` must be an image ({_ACCEPTED}). Received "
            f"{type(image).__name__} that is not an array: {e}"
        ) from None


def _check_layout(image, name):
    """`[H, W]` -> `[H, W, 1]`; anything but 1, 3 or 4 channels raises."""
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"`{name}` must be an image of shape [H, W], [H, W, 1] "
            f"(grayscale), [H, W, 3] (RGB) or [H, W, 4] (RGBA). "
            f"Received shape: {image.shape}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(
            f"`{name}` must have a positive height and width. "
            f"Received shape: {image.shape}"
        )
    return image


def _float_to_unit(image, name):
    """Float pixels: finite and in [0, 1] (small overshoot clipped)."""
    image = image.astype(np.float64)
    if not np.all(np.isfinite(image)):
        raise ValueError(
            f"`{name}` contains NaN or inf values "
            f"({int(np.sum(~np.isfinite(image)))} of {image.size})."
        )
    lo, hi = float(image.min()), float(image.max())
    if lo < -FLOAT_TOLERANCE or hi > 1 + FLOAT_TOLERANCE:
        raise ValueError(
            f"A float `{name}` must have values in [0, 1] (use uint8 for "
            f"0..255, uint16 for 0..65535). Received values in "
            f"[{lo:g}, {hi:g}]"
        )
    return np.clip(image, 0.0, 1.0)


def _to_unit(image, name):
    """uint8 / uint16 / float pixels -> float64 in [0, 1]."""
    dtype = image.dtype
    if dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if dtype.kind == "u" and dtype.itemsize == 2:
        return image.astype(np.float64) / UINT16_MAX
    if dtype.kind == "f":
        return _float_to_unit(image, name)
    raise ValueError(
        f"`{name}` must be uint8 (0..255), uint16 (0..65535) or float "
        f"(0..1). Received dtype: {dtype}"
    )


def prepare_image(image, name="image"):
    """Check and convert an image to float64 RGB in [0, 1].

    Args:
        image: an array `[H, W]`, `[H, W, 1]`, `[H, W, 3]` or `[H, W, 4]`
            of uint8 (0..255), uint16 (0..65535) or float (0..1) pixels, a
            tensor of those, or a PIL image in any mode (see the module
            docstring). Alpha channels are dropped.
        name: argument name used in error messages.

    Returns:
        float64 `[H, W, 3]`.

    Raises:
        ValueError: another shape or dtype, NaN / inf pixels, float pixels
            outside [0, 1], or a PIL image that cannot be decoded.

    Example:
    >>> prepare_image(np.full((2, 3), 65535, np.uint16))[0, 0].tolist()
    [1.0, 1.0, 1.0]
    """
    image = _check_layout(_as_array(image, name), name)
    image = _to_unit(image, name)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    elif image.shape[-1] == 4:
        image = image[..., :3]
    return image


def read_image(path):
    """Read an image file as float32 RGB `[H, W, 3]` in [0, 1].

    Every PIL mode is converted as `prepare_image` does (16-bit files keep
    their precision; alpha is dropped).

    Args:
        path: the image file.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is not a file or not a readable image; the
            message names the file.
    """
    from PIL import Image
    from PIL import UnidentifiedImageError

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Image file {path!r} does not exist.")
    if not os.path.isfile(path):
        raise ValueError(f"Image file {path!r} is not a file.")
    try:
        with Image.open(path) as image:
            return prepare_image(image, name=path).astype(np.float32)
    except UnidentifiedImageError:
        raise ValueError(
            f"Cannot read image file {path!r}: it is not in an image format "
            "PIL can read."
        ) from None
    except (
        OSError,
        EOFError,
        SyntaxError,
        struct.error,
        Image.DecompressionBombError,
    ) as e:
        raise ValueError(f"Cannot read image file {path!r}: {e}") from None


def _aa_weights(in_size, out_size):
    """Antialiased bilinear (triangle) weights `[out_size, in_size]`.

    Same filter as torchvision/PIL: support `max(scale, 1)`, centres at
    `scale * (i + 0.5)`, weights normalised per output pixel.
    """
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    weights = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        j = np.arange(xmin, xmax)
        w = np.maximum(0.0, 1.0 - np.abs((j - center + 0.5) * inv))
        total = w.sum()
        if total > 0:
            w = w / total
        weights[i, xmin:xmax] = w
    return weights


def resize_bilinear_antialias(image, size):
    """Resize `[H, W, C]` to `size=(h, w)` with antialiased bilinear."""
    image = np.asarray(image, dtype=np.float64)
    h, w = int(size[0]), int(size[1])
    wy = _aa_weights(image.shape[0], h)
    wx = _aa_weights(image.shape[1], w)
    out = np.einsum("wj,ijc->iwc", wx, image)
    out = np.einsum("hi,iwc->hwc", wy, out)
    return out


def _nearest_index(in_size, out_size):
    """torch `nearest` source indices (float32 scale, floor)."""
    if in_size == out_size:
        return np.arange(out_size)
    scale = np.float32(in_size) / np.float32(out_size)
    idx = np.floor(np.arange(out_size, dtype=np.float32) * scale)
    return np.minimum(idx.astype(np.int64), in_size - 1)


def resize_nearest(image, size):
    """Nearest-neighbour resize `[H, W, ...]` to `size=(h, w)` (torch rule)."""
    image = np.asarray(image)
    rows = _nearest_index(image.shape[0], int(size[0]))
    cols = _nearest_index(image.shape[1], int(size[1]))
    return image[rows][:, cols]


def scaled_size(height, width, size, name="image"):
    """Size after scaling the longest side to `size` (int truncation).

    Raises:
        ValueError: the shorter side would truncate to 0 pixels (aspect
            ratio above `size`:1, e.g. a 1x4000 image for 384). The
            original crashes in its resize there, so no size is made up.
    """
    scale = size / max(height, width)
    if scale == 1.0:
        return height, width
    out = int(height * scale), int(width * scale)
    if min(out) < 1:
        raise ValueError(
            f"`{name}` of size {height}x{width} (height x width) is too "
            f"elongated: scaling its longest side to {size} pixels leaves "
            f"{out[0]}x{out[1]}. Its shorter side must be at least "
            f"1/{size} of its longer side; crop or pad it first."
        )
    return out


def resize_and_pad(image, size, name="image"):
    """Scale the longest side to `size`, pad bottom/right with zeros.

    Returns:
        `(image, pixel_mask)`: float32 `[size, size, 3]` in [0, 1] and a bool
        `[size, size]` mask of the pixels that come from the image.
    """
    image = prepare_image(image, name=name)
    h, w = image.shape[:2]
    sh, sw = scaled_size(h, w, size, name=name)
    if (sh, sw) != (h, w):
        image = resize_bilinear_antialias(image, (sh, sw))
    out = np.zeros((size, size, 3), np.float32)
    out[:sh, :sw] = image
    mask = np.zeros((size, size), bool)
    mask[:sh, :sw] = True
    return out, mask


def pixel_mask_to_patch_mask(pixel_mask, patch_size=PATCH_SIZE):
    """Nearest resize of a pixel mask to the patch grid, flattened (int32).

    A patch is kept when its top-left pixel is kept (the original's rule).
    """
    pixel_mask = np.asarray(pixel_mask)
    n_rows = pixel_mask.shape[0] // patch_size
    n_cols = pixel_mask.shape[1] // patch_size
    patches = resize_nearest(pixel_mask, (n_rows, n_cols))
    return patches.reshape(-1).astype(np.int32)


def _check_region(region):
    region = np.asarray(region, dtype=np.float64)
    if region.shape != (4,) or not np.all(np.isfinite(region)):
        raise ValueError(
            "`mask_region` must be one box `(x1, y1, x2, y2)` of finite pixel "
            f"coordinates. Received: {region!r}"
        )
    return region


def remove_region(pixel_mask, region, original_size):
    """Zero the pixels of `region` (pixels of the original image).

    The box is scaled like the image, rounded (half to even, as NumPy) and
    clipped at 0 (the original lets negative values wrap around).
    """
    region = _check_region(region)
    size = max(pixel_mask.shape[:2])
    scaled = region / max(original_size[:2]) * size
    x1, y1, x2, y2 = np.maximum(np.round(scaled), 0).astype(np.int64)
    out = np.array(pixel_mask, copy=True)
    out[y1:y2, x1:x2] = False
    return out


def normalize_image(image, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """`(image - mean) / std` per channel (float32)."""
    image = np.asarray(image, np.float32)
    mean = np.asarray(mean, np.float64)
    std = np.asarray(std, np.float64)
    return ((image - mean) / std).astype(np.float32)


def preprocess_image(
    image,
    mask_region=None,
    size=ENCODER_IMAGE_SIZE,
    patch_size=PATCH_SIZE,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
):
    """Encoder image and patch mask for one image (or `None`).

    Args:
        image: the image (see `prepare_image`) or `None` for no image.
        mask_region: optional `(x1, y1, x2, y2)` box in original pixels whose
            patches are removed from the mask (inpainting); pixels are kept.
        size: encoder image size (384).
        patch_size: patch size (16).

    Returns:
        `(image, patch_mask)`: float32 `[size, size, 3]` normalised after
        padding (padding becomes `-mean / std`), int32 `[(size/patch)^2]`.
        No image: zeros and an all-zero mask (zeros are not normalised,
        as in the original).
    """
    n = (size // patch_size) ** 2
    if image is None:
        if mask_region is not None:
            raise ValueError(
                "`mask_region` needs an `image`. Received image=None and "
                f"mask_region={mask_region!r}"
            )
        return np.zeros((size, size, 3), np.float32), np.zeros(n, np.int32)
    original_size = np.shape(image)[:2]
    pixels, pixel_mask = resize_and_pad(image, size)
    if mask_region is not None:
        pixel_mask = remove_region(pixel_mask, mask_region, original_size)
    patch_mask = pixel_mask_to_patch_mask(pixel_mask, patch_size)
    return normalize_image(pixels, mean, std), patch_mask


def preprocess_target_image(image, size=TARGET_IMAGE_SIZE, patch_size=PATCH_SIZE):
    """VQ-GAN target image in [-1, 1] and its patch mask.

    Returns:
        `(image, patch_mask)`: float32 `[size, size, 3]` with padding -1,
        int32 `[(size/patch)^2]`. `None` gives -1 everywhere and a zero mask.
    """
    n = (size // patch_size) ** 2
    if image is None:
        return -np.ones((size, size, 3), np.float32), np.zeros(n, np.int32)
    pixels, pixel_mask = resize_and_pad(image, size, name="target_image")
    patch_mask = pixel_mask_to_patch_mask(pixel_mask, patch_size)
    return pixels * 2.0 - 1.0, patch_mask


def postprocess_output_image(image):
    """VQ-GAN output in [-1, 1] -> image in [0, 1] (clipped)."""
    image = np.asarray(image, np.float32)
    return np.clip((image + 1.0) / 2.0, 0.0, 1.0)


def undo_image_preprocessing(image, original_size, interpolation="nearest"):
    """Map a square output image back to the input image's size.

    Crops the padding (`ratio = size / max(h, w)`, int truncation) and
    resizes to `original_size` (nearest, no antialias, by default; use
    `"bilinear"` for natural images).

    Args:
        image: `[S, S, C]` image, float in [0, 1] (uint8 is scaled to [0, 1]).
        original_size: `(height, width)` of the original input.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(
            "`image` must be a square `[S, S, C]` output image. "
            f"Received shape: {image.shape}"
        )
    try:
        h, w = (int(v) for v in original_size[:2])
    except (TypeError, ValueError):
        raise ValueError(
            f"`original_size` must be `(height, width)`. Received: {original_size!r}"
        ) from None
    if h < 1 or w < 1:
        raise ValueError(
            f"`original_size` must be positive. Received: {original_size!r}"
        )
    if image.dtype == np.uint8:
        image = image / 255.0
    image = image.astype(np.float32)
    ratio = image.shape[0] / max(w, h)
    if h > w:
        image = image[:, : int(ratio * w)]
    else:
        image = image[: int(ratio * h), :]
    if min(image.shape[:2]) == 0:
        raise ValueError(
            f"`original_size` {h}x{w} (height x width) is too elongated for "
            f"a {ratio * max(w, h):g}-pixel output: its shorter side "
            "covers no output pixel."
        )
    if interpolation == "nearest":
        return resize_nearest(image, (h, w)).astype(np.float32)
    if interpolation == "bilinear":
        return resize_bilinear_antialias(image, (h, w)).astype(np.float32)
    raise ValueError(
        f"`interpolation` must be 'nearest' or 'bilinear'. Received: {interpolation!r}"
    )
