"""Object detection: image -> every object's box and class."""

from keras_uio.tasks.box_task import BoxTask
from keras_uio.tasks.checks import check_boxes
from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task


@register_task
class ObjectDetectionTask(BoxTask):
    """Find all objects: `[y1 x1 y2 x2 tokens][class]` repeated.

    The prompt is the paper's (the released code has no detection helper).

    Inputs: `image`. Training targets: `boxes` (`[n, 4]` pixels) and
    `labels` (`n` class names), written in the given order.
    Result: `"boxes"`, `"labels"`, `"label_ids"` (see `BoxTask`).

    Example:
    >>> import numpy as np
    >>> task = ObjectDetectionTask()
    >>> inputs, meta = task.encode_inputs(image=np.zeros((480, 640, 3), "uint8"))
    >>> inputs["prompt"]
    'What objects are in the image ?'
    >>> r = task.decode("<extra_id_350> <extra_id_453> <extra_id_593> "
    ...                 "<extra_id_843> bed", meta=meta)
    >>> r["boxes"].round(2).tolist(), r["labels"]
    ([[226.56, 160.64, 476.16, 316.16]], ['bed'])
    """

    name = "object_detection"
    required = ("image",)
    targets = ("boxes", "labels")
    prompt_template = "What objects are in the image ?"
    max_text_length = 128

    def _targets(self, targets, inputs, meta):
        boxes = check_boxes(targets["boxes"])
        labels = targets["labels"]
        if isinstance(labels, (str, bytes)):
            labels = [labels]
        labels = [check_text(l, f"labels[{i}]") for i, l in enumerate(labels)]
        text = self.vocab.labels_to_text(boxes, labels, meta["image_size"])
        return {"target_text": text}
