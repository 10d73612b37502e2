"""Referring expressions: image + phrase -> the box it refers to."""

import numpy as np

from keras_uio.tasks.box_task import BoxTask
from keras_uio.tasks.checks import check_box
from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task


@register_task
class ReferringExpressionTask(BoxTask):
    """Find the one region a phrase describes.

    Inputs: `image`, `expression`. Training target: `box`. Result:
    `"box"` (the first well-formed box, float64 `[4]`, or `None`), plus
    `"boxes"`, `"labels"`, `"label_ids"` as `BoxTask`.

    Example:
    >>> import numpy as np
    >>> task = ReferringExpressionTask()
    >>> inputs, meta = task.encode_inputs(image=np.zeros((480, 640, 3), "uint8"),
    ...                                   expression="the bed on the left")
    >>> inputs["prompt"]
    'Which region does the text " the bed on the left " describe ?'
    >>> task.decode("<extra_id_350> <extra_id_453> <extra_id_593> "
    ...             "<extra_id_843>", meta=meta)["box"].round(2).tolist()
    [226.56, 160.64, 476.16, 316.16]
    """

    name = "referring_expression"
    required = ("image", "expression")
    targets = ("box",)
    prompt_template = 'Which region does the text " {} " describe ?'

    def _prompt_args(self, inputs, meta):
        return (check_text(inputs["expression"], "expression"),)

    def _targets(self, targets, inputs, meta):
        box = check_box(targets["box"], name="box")
        return {"target_text": self.region_text(box, meta["image_size"])}

    def _decode(self, raw, result, meta):
        super()._decode(raw, result, meta)
        boxes = result["boxes"]
        result["box"] = np.array(boxes[0]) if len(boxes) else None
        if not len(boxes):
            result["errors"].append("no box in the output")
