"""Object localisation: image + class name -> the boxes of its instances."""

from keras_uio.tasks.box_task import BoxTask
from keras_uio.tasks.checks import check_boxes
from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task


@register_task
class LocalizationTask(BoxTask):
    """Find every instance of a named class (same prompt as referring
    expressions, as the original's `object_localization`).

    Inputs: `image`, `object_name`. Training target: `boxes` (`[n, 4]`),
    each written as its location tokens and the class name (the paper's
    format, appendix A.1.2). Result: `"boxes"` (see `BoxTask`).

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
    max_text_length = 32

    def _prompt_args(self, inputs, meta):
        meta["object_name"] = check_text(inputs["object_name"], "object_name")
        return (meta["object_name"],)

    def _targets(self, targets, inputs, meta):
        # As the paper's training data (A.1.2): each box followed by the
        # class name.
        boxes = check_boxes(targets["boxes"])
        labels = [meta["object_name"]] * len(boxes)
        text = self.vocab.labels_to_text(boxes, labels, meta["image_size"])
        return {"target_text": text}
