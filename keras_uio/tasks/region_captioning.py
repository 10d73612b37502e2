"""Region captioning: image + box -> a description of the region."""

from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


@register_task
class RegionCaptioningTask(TextTask):
    """Describe the region `(x1, y1, x2, y2)` of an image.

    The box enters the prompt as 4 location tokens (y1, x1, y2, x2).

    Inputs: `image`, `region`, optional `answer_options` (scored by
    `predict_tasks`). Training target: `caption`.
    Result: `"caption"`.

    Example:
    >>> import numpy as np
    >>> task = RegionCaptioningTask()
    >>> task.build_prompt(image=np.zeros((480, 640, 3), "uint8"),
    ...                   region=[226.56, 160.64, 476.16, 316.16])
    'What does the region " <extra_id_350> <extra_id_453> <extra_id_593> <extra_id_843> " describe ?'
    """

    name = "region_captioning"
    required = ("image", "region")
    optional = ("answer_options",)
    targets = ("caption",)
    prompt_template = 'What does the region " {} " describe ?'
    answer_key = "caption"

    def _prompt_args(self, inputs, meta):
        return (self.region_text(inputs["region"], meta["image_size"]),)

    def _targets(self, targets, inputs, meta):
        return {"target_text": check_text(targets["caption"], "caption")}
