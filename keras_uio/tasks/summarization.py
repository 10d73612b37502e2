"""Summarisation, no image.

The released code has no NLP prompts; we use T5's `summarize: {text}`
(Unified-IO's text side is T5's; the prefix is public and short).
"""

from keras_uio.tasks.task import TextTask
from keras_uio.tasks.task import check_text
from keras_uio.tasks.task import register_task


@register_task
class SummarizationTask(TextTask):
    """Summarise a text.

    Inputs: `text`. Training target: `summary`. Result: `"summary"`.

    Example:
    >>> task = SummarizationTask()
    >>> task.build_prompt(text="A long article.")
    'summarize: A long article.'
    """

    name = "summarization"
    required = ("text",)
    targets = ("summary",)
    prompt_template = "summarize: {}"
    answer_key = "summary"
    max_text_length = 128
    uses_image = False

    def _prompt_args(self, inputs, meta):
        return (check_text(inputs["text"], "text"),)

    def _targets(self, targets, inputs, meta):
        return {"target_text": check_text(targets["summary"], "summary")}
