"""Text classification, optionally with answer options, no image.

Prompt source: no published prompt found; ours. The released inference
code (allenai/unified-io-inference, `uio/runner.py`) has no NLP prompts,
and we found none in the paper (arXiv 2206.08916; its appendix was not
available to check). In T5's style (a task prefix, then the text) we use
`classify: {text}`, and with answer options
`classify: {text} options: {a} , {b} , ...` so that the model sees the
label set, as T5/FLAN-style multiple choice prompts do. The options are
also kept in `meta` for option scoring.
"""

from keras_uio.tasks.checks import check_text
from keras_uio.tasks.image_classification import _ClassificationMixin
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


@register_task
class TextClassificationTask(_ClassificationMixin, TextTask):
    """Classify a text.

    Inputs: `text`, optional `answer_options`. Training target: `label`.
    Result: `"label"`, and `"option_index"` with options.

    Args:
        options_template: how options are appended (`{}` = the options
            joined by `" , "`); `None` leaves them out of the prompt.
        **kwargs: see `Task`.

    Example:
    >>> task = TextClassificationTask()
    >>> task.build_prompt(text="A great film.",
    ...                   answer_options=["positive", "negative"])
    'classify: A great film. options: positive , negative'
    """

    name = "text_classification"
    required = ("text",)
    optional = ("answer_options",)
    targets = ("label",)
    prompt_template = "classify: {}"
    answer_key = "label"
    uses_image = False

    def __init__(self, options_template=" options: {}", **kwargs):
        super().__init__(**kwargs)
        self.options_template = options_template

    def _build_prompt(self, inputs, meta):
        prompt = self.prompt_template.format(check_text(inputs["text"], "text"))
        options = inputs.get("answer_options")
        if options and self.options_template is not None:
            prompt += self.options_template.format(" , ".join(options))
        return prompt
