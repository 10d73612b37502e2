"""Image classification, optionally restricted to answer options."""

from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


class _ClassificationMixin:
    def _targets(self, targets, inputs, meta):
        label = check_text(targets["label"], "label")
        options = meta.get("answer_options")
        if options is not None and label not in options:
            raise ValueError(
                f"`label` {label!r} is not one of `answer_options` {options}"
            )
        return {"target_text": label}


@register_task
class ImageClassificationTask(_ClassificationMixin, TextTask):
    """Name what the image shows.

    `answer_options` (a list of class names) is kept in `meta` so that the
    model can score each option instead of generating freely (as the
    original `predict_with_answer_options`); `decode` maps the output onto
    them (exact, then case/space-insensitive match).

    Inputs: `image`, optional `answer_options`. Training target: `label`.
    Result: `"label"`, and `"option_index"` with options.

    Example:
    >>> import numpy as np
    >>> task = ImageClassificationTask()
    >>> inputs, meta = task.encode_inputs(
    ...     image=np.zeros((8, 8, 3), "uint8"),
    ...     answer_options=["hotel room", "pool"])
    >>> inputs["prompt"]
    'What is this in the image ?'
    >>> task.decode("Hotel  Room", meta=meta)["option_index"]
    0
    """

    name = "image_classification"
    required = ("image",)
    optional = ("answer_options",)
    targets = ("label",)
    prompt_template = "What is this in the image ?"
    answer_key = "label"
