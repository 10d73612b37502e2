"""Image captioning: image -> a sentence describing it."""

from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


@register_task
class CaptioningTask(TextTask):
    """Describe an image.

    Inputs: `image`, optional `answer_options` (scored by `predict_tasks`).
    Training target: `caption`. Result: `"caption"`.

    Example:
    >>> import numpy as np
    >>> task = CaptioningTask()
    >>> inputs, meta = task.encode_inputs(image=np.zeros((48, 64, 3), "uint8"))
    >>> inputs["prompt"]
    'What does the image describe ?'
    >>> task.decode("a black dog on a sofa", meta=meta)["caption"]
    'a black dog on a sofa'
    """

    name = "captioning"
    required = ("image",)
    optional = ("answer_options",)
    targets = ("caption",)
    prompt_template = "What does the image describe ?"
    answer_key = "caption"

    def _targets(self, targets, inputs, meta):
        return {"target_text": check_text(targets["caption"], "caption")}
