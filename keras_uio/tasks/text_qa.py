"""Text question answering (reading comprehension), no image.

The released code has no NLP prompts. We use T5's SQuAD format,
`question: {question} context: {context}`: Unified-IO's text side is
T5's (tokenizer, text-to-text framing), the format is public and
short, and it leaves the 256-token prompt budget to the context.
"""

from keras_uio.tasks.task import TextTask
from keras_uio.tasks.task import check_text
from keras_uio.tasks.task import register_task


@register_task
class TextQATask(TextTask):
    """Answer a question about a passage.

    Inputs: `question`, `context`. Training target: `answer`.
    Result: `"answer"`.

    Example:
    >>> task = TextQATask()
    >>> task.build_prompt(question="Who wrote it?", context="Ann wrote it.")
    'question: Who wrote it? context: Ann wrote it.'
    """

    name = "text_qa"
    required = ("question", "context")
    targets = ("answer",)
    prompt_template = "question: {} context: {}"
    answer_key = "answer"
    uses_image = False

    def _prompt_args(self, inputs, meta):
        return (check_text(inputs["question"], "question"),
                check_text(inputs["context"], "context"))

    def _targets(self, targets, inputs, meta):
        return {"target_text": check_text(targets["answer"], "answer")}
