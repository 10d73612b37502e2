"""Segmentation-to-image: coloured instance masks + labels -> an image."""

import numpy as np

from keras_uio.preprocessing.dense import ORIGINAL_SEGMENTATION_COLOR_NAMES
from keras_uio.preprocessing.dense import ORIGINAL_SEGMENTATION_COLORS
from keras_uio.preprocessing.dense import SEGMENTATION_COLOR_NAMES
from keras_uio.preprocessing.dense import SEGMENTATION_COLORS
from keras_uio.preprocessing.dense import segmentation_to_image
from keras_uio.preprocessing.images import prepare_image
from keras_uio.tasks.checks import check_text
from keras_uio.tasks.outputs import to_input_frame
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.task import Task


@register_task
class SegmentationToImageTask(Task):
    """Generate an image whose regions follow a labelled segmentation.

    The masks are painted in palette colours on black and the painting is
    the input image; the prompt says which class each colour is
    (`"label : colour , ..."`, lower-cased).

    Inputs: `masks` (`[n, H, W]` booleans or a list of `[H, W]`, `n >= 1`),
    `labels` (`n` class names), optional `answer_options` (candidate
    images, scored by `predict_tasks`). Training target: `target_image` (the photo,
    same size). Result: `"image"` float32 `[H, W, 3]`, `"raw_image"`.

    Args:
        original_palette: `False` (default) paints instance `i` in colour
            `i` of `SEGMENTATION_COLORS` and names it correctly; `True`
            reproduces the original runner, whose first colour is red named
            "white" and whose second is red again (**quirk**).
        **kwargs: see `Task`.

    Example:
    >>> import numpy as np
    >>> task = SegmentationToImageTask()
    >>> masks = np.zeros((1, 32, 32), bool); masks[0, 8:24, 8:24] = True
    >>> inputs, meta = task.encode_inputs(masks=masks, labels=["Penguin"])
    >>> inputs["prompt"]
    'What is the complete image? Segmentation color: " penguin : red "'
    >>> inputs["image"].shape, inputs["image"][16, 16].tolist()
    ((32, 32, 3), [255, 0, 0])
    """

    name = "segmentation_to_image"
    output_mode = "image"
    required = ("masks", "labels")
    optional = ("answer_options",)
    targets = ("target_image",)
    prompt_template = 'What is the complete image? Segmentation color: " {} "'
    max_text_length = 1
    uses_image = False

    def __init__(self, original_palette=False, **kwargs):
        super().__init__(**kwargs)
        self.original_palette = bool(original_palette)
        if self.original_palette:
            self.colors = ORIGINAL_SEGMENTATION_COLORS
            self.color_names = ORIGINAL_SEGMENTATION_COLOR_NAMES
        else:
            self.colors = SEGMENTATION_COLORS
            self.color_names = SEGMENTATION_COLOR_NAMES

    def _check_inputs(self, inputs, meta):
        masks = np.asarray(inputs["masks"])
        if masks.ndim == 2:
            masks = masks[None]
        if masks.ndim != 3 or masks.shape[0] < 1 or min(masks.shape) < 1:
            raise ValueError(
                "`masks` must be `[num_instances, H, W]` binary masks (or one "
                f"`[H, W]` mask), at least one. Received shape: {masks.shape}"
            )
        labels = inputs["labels"]
        if isinstance(labels, (str, bytes)):
            labels = [labels]
        labels = [check_text(l, f"labels[{i}]") for i, l in enumerate(labels)]
        image, text = segmentation_to_image(
            masks.astype(bool), labels, self.colors, self.color_names
        )
        inputs["masks"], inputs["labels"] = masks.astype(bool), labels
        meta["image_size"] = tuple(masks.shape[1:])
        inputs["segmentation_image"] = image
        meta["segmentation_text"] = text

    def _prompt_args(self, inputs, meta):
        return (meta["segmentation_text"],)

    def _extra_model_inputs(self, inputs, meta):
        return {"image": inputs["segmentation_image"]}

    def _targets(self, targets, inputs, meta):
        image = prepare_image(targets["target_image"], name="target_image")
        if image.shape[:2] != tuple(meta["image_size"]):
            raise ValueError(
                "`target_image` must have the masks' size "
                f"{meta['image_size']}. Received shape: {image.shape}"
            )
        return {"target_image": image.astype(np.float32)}

    def _decode(self, raw, result, meta):
        result["image"] = to_input_frame(
            result["raw_image"], meta.get("image_size"), self.interpolation
        )
