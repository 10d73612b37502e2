"""`TextTask`: the base of tasks whose output is free text."""

from keras_uio.tasks.task import Task


def match_option(text, options):
    """Index of `text` among `options` (exact, then case/space-insensitive)."""
    if options is None or text is None:
        return None
    if text in options:
        return options.index(text)
    norm = [" ".join(o.lower().split()) for o in options]
    key = " ".join(text.lower().split())
    return norm.index(key) if key in norm else None


class TextTask(Task):
    """A task whose output is free text (caption, answer, label, ...).

    The text is stored under `"text"` and under `answer_key`. With
    `answer_options` in `meta`, the result also has `"option_index"` (or
    `None` plus an error when the text is not one of the options).
    """

    answer_key = "text"

    def _decode(self, raw, result, meta):
        text = self._need_text(raw, result)
        if not text:
            result["errors"].append("empty output")
        result[self.answer_key] = text
        options = meta.get("answer_options")
        if options is not None:
            index = match_option(text, options)
            result["option_index"] = index
            if index is None:
                result["errors"].append(
                    f"output {text!r} is not one of the answer options"
                )
            else:
                result[self.answer_key] = options[index]
