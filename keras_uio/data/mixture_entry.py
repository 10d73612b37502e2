"""`MixtureEntry`: one dataset of a `Mixture`, and how entries are given."""

import numpy as np

from keras_uio.data.dataset_stream import is_tf_dataset
from keras_uio.data.objectives import OBJECTIVES
from keras_uio.tasks import get_task


def resolve_task(task, tokenizer):
    """A task name (or an objective's) -> a task instance; instances pass."""
    if isinstance(task, str):
        kwargs = {} if tokenizer is None else {"tokenizer": tokenizer}
        if task in OBJECTIVES:
            return OBJECTIVES[task](**kwargs)
        return get_task(task, **kwargs)
    if not (hasattr(task, "encode_example") and hasattr(task, "name")):
        raise ValueError(
            "A mixture entry's `task` must be a task name or a `Task` "
            f"(with `name` and `encode_example`). Received: {task!r}"
        )
    return task


class MixtureEntry:
    """One dataset of a `Mixture`.

    Args:
        task: task name (a `keras_uio.tasks` task or `"denoising"`) or a
            `Task` instance.
        dataset: raw examples: a list / re-iterable, a `tf.data.Dataset`,
            a function returning a new iterator, or a one-shot iterator.
        rate: optional explicit weight inside the group.
        size: optional number of examples (default: `len(dataset)` or the
            `tf.data` cardinality when known).
        group: group name (default: `DEFAULT_TASK_GROUPS[task.name]`).
        name: entry name for tags and `Mixture.rates` (default: the task
            name, suffixed `_2`, `_3`, ... when repeated).
    """

    def __init__(self, task, dataset, rate=None, size=None, group=None, name=None):
        self.task = task
        self.dataset = dataset
        self.rate = rate
        self.size = size
        self.group = group
        self.name = name

    def __repr__(self):
        return (
            f"MixtureEntry(name={self.name!r}, group={self.group!r}, "
            f"rate={self.rate!r}, size={self.size!r})"
        )


def as_entry(spec, index):
    """A `MixtureEntry`, dict or tuple -> a new `MixtureEntry`."""
    if isinstance(spec, MixtureEntry):
        return MixtureEntry(
            spec.task, spec.dataset, spec.rate, spec.size, spec.group, spec.name
        )
    if isinstance(spec, dict):
        unknown = set(spec) - {"task", "dataset", "rate", "size", "group", "name"}
        if unknown or "task" not in spec or "dataset" not in spec:
            raise ValueError(
                f"Mixture entry {index} must have keys 'task' and 'dataset' "
                "(and optionally 'rate', 'size', 'group', 'name'). Received "
                f"keys: {sorted(spec)}"
            )
        return MixtureEntry(**spec)
    if isinstance(spec, (tuple, list)) and 2 <= len(spec) <= 6:
        return MixtureEntry(*spec)
    raise ValueError(
        f"Mixture entry {index} must be a `MixtureEntry`, a dict or a tuple "
        f"`(task, dataset, rate?, size?, group?, name?)`. Received: {spec!r}"
    )


def positive_number(value, what):
    """`value` as a positive finite float, else a `ValueError` naming `what`."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (v > 0 and np.isfinite(v)):
        raise ValueError(f"{what} must be a positive number. Received: {value!r}")
    return v


def dataset_size(ds):
    """Number of elements of `ds` when known without reading it, else `None`."""
    if is_tf_dataset(ds):
        n = int(ds.cardinality())
        return n if n >= 0 else None  # -1 infinite, -2 unknown
    if hasattr(ds, "__len__") and not callable(getattr(ds, "__next__", None)):
        try:
            return len(ds)
        except TypeError:
            return None
    return None
