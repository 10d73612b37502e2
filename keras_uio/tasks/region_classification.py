"""Region categorisation: image + box -> the object's class."""

from keras_uio.tasks.image_classification import _ClassificationMixin
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


@register_task
class RegionClassificationTask(_ClassificationMixin, TextTask):
    """Name the object in the region `(x1, y1, x2, y2)`.

    Inputs: `image`, `region`, optional `answer_options`. Training target:
    `label`. Result: `"label"`, and `"option_index"` with options.

    Example:
    >>> import numpy as np
    >>> task = RegionClassificationTask()
    >>> task.build_prompt(image=np.zeros((480, 640, 3), "uint8"),
    ...                   region=[226.56, 160.64, 476.16, 316.16])
    'What is the category of region " <extra_id_350> <extra_id_453> <extra_id_593> <extra_id_843> " ?'
    """

    name = "region_classification"
    required = ("image", "region")
    optional = ("answer_options",)
    targets = ("label",)
    prompt_template = 'What is the category of region " {} " ?'
    answer_key = "label"

    def _prompt_args(self, inputs, meta):
        return (self.region_text(inputs["region"], meta["image_size"]),)
