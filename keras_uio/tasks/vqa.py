"""Visual question answering: image + question -> short answer."""

from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


@register_task
class VQATask(TextTask):
    """Answer a question about an image.

    The prompt is the question itself, lower-cased (the original trained on
    lower-cased questions).

    Inputs: `image`, `question`, optional `answer_options` (scored by
    `predict_tasks`). Training target: `answer`. Result: `"answer"`.

    Example:
    >>> import numpy as np
    >>> task = VQATask()
    >>> task.build_prompt(image=np.zeros((8, 8, 3), "uint8"),
    ...                   question="What color is the couch?")
    'what color is the couch?'
    """

    name = "vqa"
    required = ("image", "question")
    optional = ("answer_options",)
    targets = ("answer",)
    prompt_template = "{}"
    answer_key = "answer"

    def _prompt_args(self, inputs, meta):
        return (check_text(inputs["question"], "question").lower(),)

    def _targets(self, targets, inputs, meta):
        return {"target_text": check_text(targets["answer"], "answer")}
