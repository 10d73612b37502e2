"""Inpainting: image + box + object word -> the image with the box filled."""

from keras_uio.preprocessing.images import prepare_image
from keras_uio.tasks.checks import check_text
from keras_uio.tasks.outputs import to_input_frame
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.task import Task


@register_task
class InpaintingTask(Task):
    """Fill the region `(x1, y1, x2, y2)` with `replace_with`.

    The region's patches are removed from the encoder's image mask
    (`mask_region`; the pixels themselves are kept, as the original); the
    prompt holds the region tokens followed by the word.

    Inputs: `image`, `region`, `replace_with`, optional `answer_options`
    (candidate images, scored by `predict_tasks`). Training target: the
    complete image, `target_image` (optional; default: `image` itself).
    Result: `"image"` float32 at input size, `"raw_image"`.

    Example:
    >>> import numpy as np
    >>> task = InpaintingTask()
    >>> inputs, meta = task.encode_inputs(
    ...     image=np.zeros((480, 640, 3), "uint8"),
    ...     region=[226.56, 160.64, 476.16, 316.16], replace_with="table")
    >>> inputs["prompt"]
    'Filling the blank region " <extra_id_350> <extra_id_453> <extra_id_593> <extra_id_843> table " ?'
    >>> inputs["mask_region"].tolist()
    [226.56, 160.64, 476.16, 316.16]
    """

    name = "inpainting"
    output_mode = "image"
    required = ("image", "region", "replace_with")
    optional = ("answer_options",)
    optional_targets = ("target_image",)
    prompt_template = 'Filling the blank region " {} {} " ?'
    max_text_length = 1

    def _prompt_args(self, inputs, meta):
        region = self.region_text(inputs["region"], meta["image_size"])
        return (region, check_text(inputs["replace_with"], "replace_with"))

    def _extra_model_inputs(self, inputs, meta):
        return {"mask_region": inputs["region"]}

    def _targets(self, targets, inputs, meta):
        target = targets.get("target_image", inputs["image"])
        image = prepare_image(target, name="target_image").astype("float32")
        if image.shape[:2] != tuple(meta["image_size"]):
            raise ValueError(
                "`target_image` must have the input image's size "
                f"{meta['image_size']}. Received shape: {image.shape}"
            )
        return {"target_image": image}

    def _decode(self, raw, result, meta):
        result["image"] = to_input_frame(
            result["raw_image"], meta.get("image_size"), self.interpolation
        )
