"""Text-to-image generation: description -> image."""

from keras_uio.preprocessing.images import prepare_image
from keras_uio.tasks.checks import check_text
from keras_uio.tasks.outputs import to_input_frame
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.task import Task


@register_task
class TextToImageTask(Task):
    """Generate an image from a description (no input image).

    Inputs: `description`, optional `image_size` (`(height, width)`: crop
    and resize the square output to that aspect and size, as if an image of
    that size had been the target), optional `answer_options` (candidate
    images, scored by `predict_tasks`). Training target: `target_image`.
    Result: `"image"` float32 `[H, W, 3]` in [0, 1] (`image_size`, or the
    generated size), `"raw_image"`.

    Example:
    >>> import numpy as np
    >>> task = TextToImageTask()
    >>> inputs, meta = task.encode_inputs(description="A horse in a grassy field.")
    >>> inputs
    {'prompt': 'What is the complete image? Text: " A horse in a grassy field. " .'}
    >>> task.decode(image=np.zeros((256, 256, 3), "float32"), meta=meta)["image"].shape
    (256, 256, 3)
    """

    name = "text_to_image"
    output_mode = "image"
    required = ("description",)
    optional = ("image_size", "answer_options")
    targets = ("target_image",)
    prompt_template = 'What is the complete image? Text: " {} " .'
    max_text_length = 1
    uses_image = False

    def _check_inputs(self, inputs, meta):
        size = inputs.get("image_size")
        if size is not None:
            try:
                h, w = (int(v) for v in size)
            except (TypeError, ValueError):
                h = w = 0
            if h < 1 or w < 1:
                raise ValueError(
                    "`image_size` must be a `(height, width)` pair of "
                    f"positive integers. Received: {size!r}"
                )
            meta["image_size"] = (h, w)

    def _prompt_args(self, inputs, meta):
        return (check_text(inputs["description"], "description"),)

    def _targets(self, targets, inputs, meta):
        return {
            "target_image": prepare_image(
                targets["target_image"], name="target_image"
            ).astype("float32")
        }

    def _decode(self, raw, result, meta):
        result["image"] = to_input_frame(
            result["raw_image"], meta.get("image_size"), self.interpolation
        )
