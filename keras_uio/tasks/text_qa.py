"""Text question answering (reading comprehension), no image.

Prompt source: no published prompt found; ours. The released inference
code (allenai/unified-io-inference, `uio/runner.py`) has no NLP prompts,
and we found none in the paper (arXiv 2206.08916; its appendix was not
available to check). We use T5's SQuAD format (Raffel et al., 2020),
`question: {question} context: {context}`: Unified-IO's text side is
T5's (tokenizer, text-to-text framing), the format is public and short,
and it leaves the 256-token prompt budget to the context.
"""

from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


@register_task
class TextQATask(TextTask):
    """Answer a question about a passage.

    Inputs: `question`, `context`, optional `answer_options` (scored by
    `predict_tasks`). Training target: `answer`.
    Result: `"answer"`.

    Example:
    >>> task = TextQATask()
    >>> task.build_prompt(question="Who wrote it?", context="Ann wrote it.")
    'question: Who wrote it? context: Ann wrote it.'
    """

    name = "text_qa"
    required = ("question", "context")
    optional = ("answer_options",)
    targets = ("answer",)
    prompt_template = "question: {} context: {}"
    answer_key = "answer"
    uses_image = False

    def _prompt_args(self, inputs, meta):
        return (
            check_text(inputs["question"], "question"),
            check_text(inputs["context"], "context"),
        )

    def _targets(self, targets, inputs, meta):
        return {"target_text": check_text(targets["answer"], "answer")}
