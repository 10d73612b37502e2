"""Object localisation: image + class name -> the boxes of its instances."""

from keras_uio.tasks.task import BoxTask
from keras_uio.tasks.task import check_boxes
from keras_uio.tasks.task import check_text
from keras_uio.tasks.task import register_task


@register_task
class LocalizationTask(BoxTask):
    """Find every instance of a named class (same prompt as referring
    expressions, as the original's `object_localization`).

    Inputs: `image`, `object_name`. Training target: `boxes` (`[n, 4]`),
    written as location tokens only. Result: `"boxes"` (see `BoxTask`).

    Example:
    >>> import numpy as np
    >>> task = LocalizationTask()
    >>> task.build_prompt(image=np.zeros((8, 8, 3), "uint8"),
    ...                   object_name="person")
    'Which region does the text " person " describe ?'
    """

    name = "localization"
    required = ("image", "object_name")
    targets = ("boxes",)
    prompt_template = 'Which region does the text " {} " describe ?'
    max_text_length = 128

    def _prompt_args(self, inputs, meta):
        return (check_text(inputs["object_name"], "object_name"),)

    def _targets(self, targets, inputs, meta):
        boxes = check_boxes(targets["boxes"])
        return {"target_text": self._boxes_text(boxes, meta["image_size"])}
