"""Instance segmentation of one class: image + class -> colour mask image.

The model draws each instance of the class in its own colour on black.
The original decodes the first instance as white/grey (the VQ-GAN often
blurs white into grey) and the next ones by their dominant channel
(red, green, blue); targets here use that order, then more colours.
"""

import numpy as np

from keras_uio.preprocessing.dense import remove_small_components
from keras_uio.tasks import original_parsers
from keras_uio.tasks.checks import check_text
from keras_uio.tasks.outputs import to_input_frame
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.task import Task

# Instance colours of segmentation targets, in order. The first four are
# the ones the original's "coarse colour" decoder separates.
INSTANCE_COLORS = (
    (255, 255, 255),
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (255, 0, 255),
    (0, 255, 255),
    (128, 128, 128),
    (128, 0, 0),
    (0, 128, 0),
    (0, 0, 128),
    (128, 128, 0),
    (128, 0, 128),
    (0, 128, 128),
)
INSTANCE_COLOR_NAMES = (
    "white",
    "red",
    "lime",
    "blue",
    "yellow",
    "fuchsia",
    "aqua",
    "gray",
    "maroon",
    "green",
    "navy",
    "olive",
    "purple",
    "teal",
)
DECODE_MODES = ("original", "coarse_color", "palette")


def check_masks(masks, image_size, name="masks"):
    """`[n, H, W]` (or a list of `[H, W]`) booleans of the image's size."""
    if isinstance(masks, (list, tuple)) and len(masks) == 0:
        return np.zeros((0,) + tuple(image_size), bool)
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[1:] != tuple(image_size):
        raise ValueError(
            f"`{name}` must be `[num_instances, H, W]` binary masks of the "
            f"image's size {tuple(image_size)}. Received shape: {masks.shape}"
        )
    return masks.astype(bool)


def masks_to_image(masks, colors=INSTANCE_COLORS):
    """`[n, H, W]` masks -> float32 `[H, W, 3]`, instance `i` in colour `i`."""
    if len(masks) > len(colors):
        raise ValueError(
            f"At most {len(colors)} instances fit in the palette. Received "
            f"{len(masks)} masks"
        )
    image = np.zeros(masks.shape[1:] + (3,), np.float32)
    for mask, color in zip(masks, colors):
        image[mask] = np.asarray(color, np.float32) / 255.0
    return image


def coarse_color_masks(image, min_size=10):
    """The original's colour rule, with 2-D connected components.

    Background: channel mean <= 30 (of 255). First instance: the other
    pixels whose channels are all near their mean (white or grey). Then
    one instance per dominant channel (red, green, blue) that exceeds the
    mean by more than 40. Components under `min_size` pixels are dropped.
    (The original labels components on the flattened image, a bug not
    reproduced here.)

    Returns:
        list of `(colour name, bool [H, W] mask)`.
    """
    rgb = np.asarray(image, np.float64) * 255.0
    mean = rgb.mean(-1)
    diff = rgb - mean[..., None]
    foreground = mean > 30
    grey = foreground & (np.abs(diff).sum(-1) < 100)
    out = []
    taken = grey.copy()
    mask = remove_small_components(grey, min_size)
    if mask.any():
        out.append(("white", mask))
    dominant = rgb.argmax(-1)
    for c, name in enumerate(("red", "lime", "blue")):
        mask = foreground & ~taken & (dominant == c) & (diff[..., c] > 40)
        mask = remove_small_components(mask, min_size)
        if mask.any():
            out.append((name, mask))
            taken |= mask
    return out


def palette_masks(
    image, colors=INSTANCE_COLORS, color_names=INSTANCE_COLOR_NAMES, min_size=10
):
    """Nearest-colour masks: each pixel goes to the nearest of black and
    `colors`; each colour's pixels are opened with a 3x3 square (resizing
    leaves thin half-tone seams between colours, e.g. maroon between red
    and black) and components under `min_size` pixels are dropped.

    Returns:
        list of `(colour name, bool [H, W] mask)` in palette order.
    """
    from scipy import ndimage

    palette = np.array([(0, 0, 0)] + list(colors), np.float64) / 255.0
    image = np.asarray(image, np.float64)
    dist = ((image[..., None, :] - palette) ** 2).sum(-1)
    nearest = dist.argmin(-1)
    out = []
    square = np.ones((3, 3), bool)
    for k, name in enumerate(color_names, start=1):
        mask = ndimage.binary_opening(nearest == k, structure=square)
        mask = remove_small_components(mask, min_size)
        if mask.any():
            out.append((name, mask))
    return out


@register_task
class SegmentationTask(Task):
    """Segment every instance of a class.

    Inputs: `image`, `object_name`. Training target: `masks`
    (`[n, H, W]` booleans, `n` up to 14; none gives a black image).
    Result: `"masks"` bool `[n, H, W]` at input size (with the original
    rule also `"raw_masks"`, the masks on the generated image), `"colors"` (the
    colour each mask was read from), `"labels"` (`object_name` per mask),
    `"image"` (the colour image at input size), `"raw_image"`.

    Args:
        mode: `"original"` (default: the original's
            `extract_segmentation_masks` on the generated 256x256 image,
            components found along raster rows, see `original_parsers`;
            the masks are then resized to the input, nearest),
            `"coarse_color"` (the same colour rule with 2-D components, on
            the image at input size; up to 4 instances, white/grey, red,
            green, blue) or `"palette"` (nearest colour of
            `INSTANCE_COLORS`, up to 14; see `palette_masks`).
        min_size: components with fewer pixels are dropped.
        **kwargs: see `Task`.

    Example:
    >>> import numpy as np
    >>> task = SegmentationTask()
    >>> image = np.zeros((64, 64, 3), "uint8")
    >>> inputs, meta = task.encode_inputs(image=image, object_name="painting")
    >>> inputs["prompt"]
    'What is the segmentation of " painting " ?'
    >>> masks = np.zeros((2, 64, 64), bool); masks[0, :20, :20] = True
    >>> masks[1, 30:, 30:] = True
    >>> target = task.encode_example(
    ...     {"image": image, "object_name": "painting", "masks": masks})
    >>> r = task.decode(image=target["target_image"], meta=meta)
    >>> r["colors"], bool((r["masks"] == masks).all())
    (['white', 'red'], True)
    """

    name = "segmentation"
    output_mode = "image"
    required = ("image", "object_name")
    targets = ("masks",)
    prompt_template = 'What is the segmentation of " {} " ?'
    max_text_length = 1

    def __init__(self, mode="original", min_size=10, **kwargs):
        super().__init__(**kwargs)
        if mode not in DECODE_MODES:
            raise ValueError(
                f"`mode` must be one of {DECODE_MODES}. Received: {mode!r}"
            )
        self.mode = mode
        self.min_size = int(min_size)

    def _prompt_args(self, inputs, meta):
        name = check_text(inputs["object_name"], "object_name")
        meta["object_name"] = name
        return (name,)

    def _targets(self, targets, inputs, meta):
        masks = check_masks(targets["masks"], meta["image_size"])
        return {"target_image": masks_to_image(masks)}

    def _decode(self, raw, result, meta):
        image = to_input_frame(
            result["raw_image"], meta.get("image_size"), self.interpolation
        )
        result["image"] = image
        if self.mode == "original":
            raw_found = original_parsers.coarse_color_instances(
                result["raw_image"], self.min_size
            )
            result["raw_masks"] = [m for _, m in raw_found]
            found = [(name, self._to_input_frame(m, meta)) for name, m in raw_found]
        elif self.mode == "coarse_color":
            found = coarse_color_masks(image, self.min_size)
        else:
            found = palette_masks(image, min_size=self.min_size)
        shape = (0,) + image.shape[:2]
        result["masks"] = (
            np.stack([m for _, m in found]) if found else np.zeros(shape, bool)
        )
        result["colors"] = [c for c, _ in found]
        result["labels"] = [meta.get("object_name")] * len(found)

    def _to_input_frame(self, mask, meta):
        image = mask[..., None].astype(np.float32)
        return to_input_frame(image, meta.get("image_size"))[..., 0] > 0
