"""Dense labels <-> images: depth, surface normals, instance segmentation.

Unified-IO writes every dense prediction as an RGB image that the VQ-GAN
encodes: depth as a grayscale image of the normalised depth, surface normals
with x/y/z in r/g/b, instance masks as colours on a black background whose
colour-to-class mapping is written in the prompt. These functions convert in
both directions (NumPy, one example at a time; images are float [0, 1]).
"""

import numpy as np

# The original's palette for segmentation-based generation (`uio/runner.py`)
# starts with red twice and names the first one "white" (**quirk**).
ORIGINAL_SEGMENTATION_COLORS = (
    (255, 0, 0),
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 255),
    (128, 128, 128),
    (255, 0, 255),
    (255, 255, 0),
    (0, 255, 255),
    (192, 192, 192),
    (128, 0, 0),
    (128, 128, 0),
    (0, 128, 0),
    (0, 128, 128),
    (0, 0, 128),
    (128, 0, 128),
)
ORIGINAL_SEGMENTATION_COLOR_NAMES = (
    "white",
    "red",
    "lime",
    "blue",
    "white",
    "gray",
    "fuchsia",
    "yellow",
    "aqua",
    "silver",
    "maroon",
    "olive",
    "green",
    "teal",
    "navy",
    "purple",
)
# The default palette: the original without its duplicated first entry.
SEGMENTATION_COLORS = ORIGINAL_SEGMENTATION_COLORS[1:]
SEGMENTATION_COLOR_NAMES = ORIGINAL_SEGMENTATION_COLOR_NAMES[1:]


def _as_array(x, name, ndim, last=None):
    x = np.asarray(x)
    if x.ndim not in ndim or (last is not None and x.shape[-1] != last):
        want = " or ".join(f"{n}-D" for n in ndim)
        extra = f" with {last} channels" if last else ""
        raise ValueError(
            f"`{name}` must be a {want} array{extra}. Received shape: {x.shape}"
        )
    return x


def _image01(image, name="image"):
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image.astype(np.float64) / 255.0
    elif not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"`{name}` must be uint8 or float in [0, 1]. Received dtype: {image.dtype}"
        )
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(
            f"`{name}` must be [H, W], [H, W, 1] or [H, W, 3]. "
            f"Received shape: {image.shape}"
        )
    return image.astype(np.float64)


# ------------------------------------------------------------------- depth
def depth_to_image(depth, max_depth=None):
    """Metric depth `[H, W]` -> grayscale RGB image in [0, 1] and its scale.

    Args:
        depth: `[H, W]` (or `[H, W, 1]`) depth, e.g. metres; `nan`/`inf` and
            negative values count as missing and become 0 (black).
        max_depth: the depth mapped to white; `None` uses the largest valid
            depth. Values above it are clipped.

    Returns:
        `(image, max_depth)`: float32 `[H, W, 3]` and the scale to pass to
        `image_to_depth`.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim == 3 and depth.shape[-1] == 1:
        depth = depth[..., 0]
    _as_array(depth, "depth", (2,))
    valid = np.isfinite(depth) & (depth > 0)
    if max_depth is None:
        max_depth = float(depth[valid].max()) if valid.any() else 1.0
    if not (np.isfinite(max_depth) and max_depth > 0):
        raise ValueError(
            f"`max_depth` must be a positive number. Received: {max_depth!r}"
        )
    norm = np.where(valid, np.clip(depth / max_depth, 0.0, 1.0), 0.0)
    return np.repeat(norm[..., None], 3, -1).astype(np.float32), float(max_depth)


def image_to_depth(image, max_depth):
    """Grayscale depth image in [0, 1] -> metric depth `[H, W]` (float32)."""
    image = _image01(image)
    if not (np.isfinite(max_depth) and max_depth > 0):
        raise ValueError(
            f"`max_depth` must be a positive number. Received: {max_depth!r}"
        )
    return (np.clip(image.mean(-1), 0, 1) * max_depth).astype(np.float32)


# ----------------------------------------------------------------- normals
def normals_to_image(normals):
    """Surface normals `[H, W, 3]` in [-1, 1] -> RGB `(n + 1) / 2`.

    Vectors are normalised first; zero vectors (missing) map to 0.5 grey.
    """
    n = _as_array(normals, "normals", (3,), last=3).astype(np.float64)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    n = np.where(norm > 1e-8, n / np.maximum(norm, 1e-8), 0.0)
    return ((n + 1.0) / 2.0).astype(np.float32)


def image_to_normals(image):
    """RGB normal image -> unit normals `[H, W, 3]` (float32).

    Pixels that decode to a (near) zero vector stay zero.
    """
    image = _image01(image)
    if image.shape[-1] != 3:
        raise ValueError(
            f"`image` must be RGB [H, W, 3]. Received shape: {image.shape}"
        )
    n = image * 2.0 - 1.0
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    n = np.where(norm > 1e-3, n / np.maximum(norm, 1e-3), 0.0)
    return n.astype(np.float32)


# ------------------------------------------------------------ segmentation
def _palette(colors, names):
    colors = np.asarray(colors, dtype=np.uint8)
    if colors.ndim != 2 or colors.shape[1] != 3:
        raise ValueError(
            f"`colors` must be `[n, 3]` RGB. Received shape: {colors.shape}"
        )
    if len(names) != len(colors):
        raise ValueError(
            "`color_names` must name every colour. Received "
            f"{len(names)} names for {len(colors)} colours"
        )
    return colors, list(names)


def segmentation_to_image(
    masks, labels, colors=SEGMENTATION_COLORS, color_names=SEGMENTATION_COLOR_NAMES
):
    """Instance masks -> colour image on black and the colour-to-class text.

    Args:
        masks: `[n, H, W]` booleans (or a list of `[H, W]`); later masks are
            painted over earlier ones.
        labels: `n` class names.
        colors, color_names: the palette; instance `i` gets colour `i`. Pass
            `ORIGINAL_SEGMENTATION_COLORS` / `..._NAMES` to reproduce the
            original runner exactly (its first colour is red named "white").

    Returns:
        `(image, text)`: uint8 `[H, W, 3]` and `"label : colour , ..."`
        (lower-cased, as the original prompt).
    """
    colors, color_names = _palette(colors, color_names)
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    _as_array(masks, "masks", (3,))
    if len(labels) != len(masks):
        raise ValueError(
            "`masks` and `labels` must have the same length. Received "
            f"{len(masks)} masks and {len(labels)} labels"
        )
    if len(masks) > len(colors):
        raise ValueError(
            f"At most {len(colors)} instances fit in the palette. "
            f"Received {len(masks)} masks"
        )
    image = np.zeros(masks.shape[1:] + (3,), np.uint8)
    for i, mask in enumerate(masks):
        image[mask.astype(bool)] = colors[i]
    text = " , ".join(
        f"{label} : {color_names[i]}" for i, label in enumerate(labels)
    ).lower()
    return image, text


def remove_small_components(mask, min_size=8):
    """Drop 8-connected components with fewer than `min_size` pixels."""
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    labelled, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask
    sizes = np.bincount(labelled.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[labelled]


def image_to_segmentation(
    image,
    colors=SEGMENTATION_COLORS,
    color_names=SEGMENTATION_COLOR_NAMES,
    text=None,
    min_size=8,
):
    """Colour image -> binary masks (nearest palette colour, cleaned).

    Each pixel is assigned to the nearest colour of `[black] + colors`; each
    colour's pixels, with connected components under `min_size` removed,
    form one mask.

    Args:
        image: `[H, W, 3]` uint8 or float [0, 1] (e.g. a VQ-GAN output).
        text: optional `"label : colour , ..."` text; when given, only the
            colours it names are read and each mask gets its label.
        min_size: smallest component kept, in pixels.

    Returns:
        list of `(label_or_colour_name, mask [H, W] bool)` for every
        non-empty colour, in palette order.
    """
    colors, color_names = _palette(colors, color_names)
    image = _image01(image)
    if image.shape[-1] != 3:
        raise ValueError(
            f"`image` must be RGB [H, W, 3]. Received shape: {image.shape}"
        )
    wanted = None
    if text is not None:
        wanted = {}
        for item in str(text).split(","):
            if ":" not in item:
                continue
            label, colour = item.rsplit(":", 1)
            wanted[colour.strip().lower()] = label.strip()
    # Unique colours only (the original palette repeats red).
    uniq, first = [], {}
    for c, name in zip(map(tuple, colors.tolist()), color_names):
        if c not in first:
            first[c] = len(uniq)
            uniq.append((c, name))
    if wanted is not None:
        # Only the colours the prompt names compete with the background.
        uniq = [(c, name) for c, name in uniq if name in wanted]
    palette = np.array([(0, 0, 0)] + [c for c, _ in uniq], np.float64) / 255
    dist = ((image[..., None, :] - palette) ** 2).sum(-1)
    nearest = dist.argmin(-1)
    out = []
    for k, (_, name) in enumerate(uniq, start=1):
        mask = remove_small_components(nearest == k, min_size)
        if mask.any():
            out.append((wanted[name] if wanted else name, mask))
    return out
