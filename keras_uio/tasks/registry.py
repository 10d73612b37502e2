"""The task registry: `register_task` adds a `Task` subclass under its
`name`, `get_task(name)` builds one."""

from keras_uio.tasks.task import Task

OUTPUT_MODES = ("text", "image", "text_and_image")

TASKS = {}


def register_task(cls):
    """Class decorator: add a `Task` subclass to `TASKS` under `cls.name`."""
    if not cls.name or cls.name in TASKS:
        raise ValueError(f"Task name {cls.name!r} is empty or already registered.")
    if cls.output_mode not in OUTPUT_MODES:
        raise ValueError(
            f"`output_mode` of task {cls.name!r} must be one of "
            f"{OUTPUT_MODES}. Received: {cls.output_mode!r}"
        )
    TASKS[cls.name] = cls
    return cls


def get_task(name, **kwargs):
    """Instantiate a registered task by name.

    Args:
        name: a task name (see `TASKS`), or a `Task` instance (returned
            unchanged; `kwargs` must then be empty).
        **kwargs: passed to the task's constructor (`vocab`, `tokenizer`,
            `detokenize`, `prompt_template`, task-specific options).

    Example:
    >>> import numpy as np
    >>> task = get_task("captioning")
    >>> task.build_prompt(image=np.zeros((4, 6, 3), "uint8"))
    'What does the image describe ?'
    """
    if isinstance(name, Task):
        if kwargs:
            raise ValueError(
                "`get_task` received a `Task` instance and constructor "
                f"arguments {sorted(kwargs)}; pass one or the other."
            )
        return name
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(
            f"Unknown task {name!r}. Known tasks: {', '.join(sorted(TASKS))}"
        )
    return TASKS[name](**kwargs)
