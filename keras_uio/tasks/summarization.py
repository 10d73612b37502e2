"""Summarisation, no image.

Prompt source: no published prompt found; ours. The released inference
code (allenai/unified-io-inference, `uio/runner.py`) has no NLP prompts,
and we found none in the paper (arXiv 2206.08916; its appendix was not
available to check). We use T5's `summarize: {text}` (Raffel et al.,
2020; Unified-IO's text side is T5's; the prefix is public and short).
"""

from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


@register_task
class SummarizationTask(TextTask):
    """Summarise a text.

    Inputs: `text`, optional `answer_options` (scored by `predict_tasks`).
    Training target: `summary`. Result: `"summary"`.

    Example:
    >>> task = SummarizationTask()
    >>> task.build_prompt(text="A long article.")
    'summarize: A long article.'
    """

    name = "summarization"
    required = ("text",)
    optional = ("answer_options",)
    targets = ("summary",)
    prompt_template = "summarize: {}"
    answer_key = "summary"
    max_text_length = 128
    uses_image = False

    def _prompt_args(self, inputs, meta):
        return (check_text(inputs["text"], "text"),)

    def _targets(self, targets, inputs, meta):
        return {"target_text": check_text(targets["summary"], "summary")}
