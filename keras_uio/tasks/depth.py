"""Depth estimation: image -> a grayscale depth image -> a depth map."""

import numpy as np

from keras_uio.preprocessing.dense import depth_to_image
from keras_uio.preprocessing.dense import image_to_depth
from keras_uio.tasks.outputs import to_input_frame
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.task import Task


def check_dense(value, image_size, name, channels=None):
    """A dense label of the input image's size: `[H, W]` or `[H, W, C]`."""
    value = np.asarray(value, dtype=np.float64)
    if channels is None and value.ndim == 3 and value.shape[-1] == 1:
        value = value[..., 0]
    want = tuple(image_size) + ((channels,) if channels else ())
    if value.shape != want:
        shape = "[H, W]" if channels is None else f"[H, W, {channels}]"
        raise ValueError(
            f"`{name}` must be {shape} with the image's size {want}. "
            f"Received shape: {value.shape}"
        )
    return value


@register_task
class DepthTask(Task):
    """Per-pixel depth.

    The model draws depth as a grayscale image of `depth / max_depth`
    (clipped to [0, 1]); `decode` maps it back to the input size and
    multiplies by `max_depth`.

    Inputs: `image`. Training target: `depth` (`[H, W]`, e.g. metres;
    `nan`, `inf` and values <= 0 are missing and become black).
    Result: `"depth"` float32 `[H, W]`, `"image"` (the depth image at
    input size), `"raw_image"`.

    Args:
        max_depth: the depth drawn as white. 10 (metres) fits NYU Depth v2,
            the benchmark the paper reports; the scale the released
            checkpoints were trained with is not in the released code.
            `meta["max_depth"]` overrides it in `decode`.
        **kwargs: see `Task`.

    Example:
    >>> import numpy as np
    >>> task = DepthTask(max_depth=10.0)
    >>> inputs, meta = task.encode_inputs(image=np.zeros((48, 64, 3), "uint8"))
    >>> inputs["prompt"]
    'What is the depth map of the image ?'
    >>> out = np.full((256, 256, 3), 0.5, "float32")
    >>> task.decode(image=out, meta=meta)["depth"].shape
    (48, 64)
    """

    name = "depth"
    output_mode = "image"
    required = ("image",)
    targets = ("depth",)
    prompt_template = "What is the depth map of the image ?"
    max_text_length = 1

    def __init__(self, max_depth=10.0, **kwargs):
        super().__init__(**kwargs)
        if not (np.isfinite(max_depth) and max_depth > 0):
            raise ValueError(
                f"`max_depth` must be a positive number. Received: {max_depth!r}"
            )
        self.max_depth = float(max_depth)

    def _targets(self, targets, inputs, meta):
        depth = check_dense(targets["depth"], meta["image_size"], "depth")
        image, _ = depth_to_image(depth, self.max_depth)
        return {"target_image": image}

    def _decode(self, raw, result, meta):
        image = to_input_frame(
            result["raw_image"], meta.get("image_size"), self.interpolation
        )
        result["image"] = image
        result["depth"] = image_to_depth(image, meta.get("max_depth", self.max_depth))
