"""Reading one dataset of a `Mixture` one element at a time, forever."""


def is_tf_dataset(ds):
    """Whether `ds` looks like a `tf.data.Dataset` (without importing TF)."""
    return hasattr(ds, "as_numpy_iterator") and hasattr(ds, "cardinality")


class DatasetStream:
    """Streams one dataset, re-iterating it when exhausted."""

    def __init__(self, entry):
        self.entry = entry
        self.dataset = entry.dataset
        self._it = None
        self.passes = 0
        self._count = 0  # elements read in this pass
        self.index = -1  # index of the last element in its pass

    def _new_iterator(self):
        ds = self.dataset
        if is_tf_dataset(ds):
            return ds.as_numpy_iterator()
        if callable(ds) and not hasattr(ds, "__iter__"):
            it = ds()
            try:
                return iter(it)
            except TypeError:
                raise ValueError(
                    f"Mixture entry {self.entry.name!r}: the dataset "
                    "function must return an iterable. Received: "
                    f"{type(it).__name__}"
                ) from None
        try:
            it = iter(ds)
        except TypeError:
            raise ValueError(
                f"Mixture entry {self.entry.name!r}: `dataset` must be an "
                "iterable, a `tf.data.Dataset` or a function returning an "
                f"iterator. Received: {type(ds).__name__}"
            ) from None
        if it is ds and self.passes > 0:
            raise ValueError(
                f"Mixture entry {self.entry.name!r}: its dataset is a "
                "one-shot iterator and is exhausted. Pass a re-iterable "
                "(list, `tf.data.Dataset`) or a function returning a new "
                "iterator (e.g. the generator function itself)."
            )
        return it

    def next(self):
        for _ in range(2):
            if self._it is None:
                self._it = self._new_iterator()
                self.passes += 1
                self._count = 0
            try:
                element = next(self._it)
            except StopIteration:
                empty = self._count == 0
                self._it = None
                if empty:
                    raise ValueError(
                        f"Mixture entry {self.entry.name!r}: its dataset is empty."
                    ) from None
                continue
            self.index = self._count
            self._count += 1
            return element
        raise ValueError(f"Mixture entry {self.entry.name!r}: its dataset is empty.")
