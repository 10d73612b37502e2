"""Task mixtures with the Unified-IO sampling rules (paper, section 3.4).

A `Mixture` holds entries `(task, dataset, rate?, size?, group?)`. Each
draw picks an entry at random, takes the next raw example of its dataset,
encodes it with the task (`encode_example`) and tags it with the task name
(`"task"`) and the entry name (`"source"`).

Rates follow the paper:
- entries belong to named groups; a group's share of a batch is its
  `group_rates` value, renormalised over the groups that have entries
  (`PAPER_GROUP_RATES`: 8 groups of 1/8, except image synthesis 3/16 and
  dense labelling 1/16);
- inside a group, entries are weighted by `size ** (1 / temperature)`
  (T = 2) renormalised, or by their explicit `rate` (then every entry of
  the group needs one).

Datasets stream: each is iterated one element per draw (never loaded whole)
and re-iterated from the start when exhausted. A dataset is a list or any
re-iterable, a `tf.data.Dataset` (read with `as_numpy_iterator()`), a
function returning a fresh iterator (a generator function), or a one-shot
iterator (an error once it runs out).

Everything is deterministic for a `seed`: the entry choices, the
objectives' randomness and the patch subsets use separate NumPy streams
derived from `(seed, epoch)`.

Example:
>>> from keras_uio.data import Mixture
>>> qa = [{"question": "Who?", "context": "Ann ran.", "answer": "Ann"}]
>>> captions = [{"image": np.zeros((8, 8, 3), "uint8"), "caption": "dark"}]
>>> mixture = Mixture([("text_qa", qa), ("captioning", captions)], seed=0)
>>> mixture.rates
{'text_qa': 0.5, 'captioning': 0.5}
>>> example = next(iter(mixture))
>>> example["task"], sorted(example)
('captioning', ['image', 'prompt', 'source', 'target_text', 'task'])
"""

import inspect
import itertools

import numpy as np

from keras_uio.data.objectives import OBJECTIVES
from keras_uio.data.objectives import PATCH_MASK_RATIO_KEY
from keras_uio.data.objectives import PROMPT_IDS_KEY
from keras_uio.data.objectives import TARGET_IDS_KEY
from keras_uio.data.objectives import hide_patches
from keras_uio.data.objectives import select_patches
from keras_uio.tasks import get_task

# The 8 task groups of the paper's multi-task stage and their batch shares.
# The shares are the paper's; the group names (and the 8th group, the
# continued masked language modelling served by `DenoisingTask`) are our
# reading of its task table. Pass `group_rates` to use your own.
GROUPS = (
    "image_synthesis",
    "sparse_labelling",
    "dense_labelling",
    "image_classification",
    "image_captioning",
    "vision_language",
    "nlp",
    "language_modelling",
)
PAPER_GROUP_RATES = {g: 1 / 8 for g in GROUPS}
PAPER_GROUP_RATES["image_synthesis"] = 3 / 16
PAPER_GROUP_RATES["dense_labelling"] = 1 / 16

# Group of each built-in task (used when an entry gives no `group`).
DEFAULT_TASK_GROUPS = {
    "text_to_image": "image_synthesis",
    "inpainting": "image_synthesis",
    "segmentation_to_image": "image_synthesis",
    "object_detection": "sparse_labelling",
    "localization": "sparse_labelling",
    "referring_expression": "sparse_labelling",
    "keypoints": "sparse_labelling",
    "relationship_detection": "sparse_labelling",
    "depth": "dense_labelling",
    "surface_normals": "dense_labelling",
    "segmentation": "dense_labelling",
    "image_classification": "image_classification",
    "region_classification": "image_classification",
    "captioning": "image_captioning",
    "region_captioning": "image_captioning",
    "vqa": "vision_language",
    "grounded_vqa": "vision_language",
    "text_qa": "nlp",
    "text_classification": "nlp",
    "summarization": "nlp",
    "denoising": "language_modelling",
}

TAG_KEYS = ("task", "source")


def _is_tf_dataset(ds):
    return hasattr(ds, "as_numpy_iterator") and hasattr(ds, "cardinality")


def _resolve_task(task, tokenizer):
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

    def __init__(self, task, dataset, rate=None, size=None, group=None,
                 name=None):
        self.task = task
        self.dataset = dataset
        self.rate = rate
        self.size = size
        self.group = group
        self.name = name

    def __repr__(self):
        return (f"MixtureEntry(name={self.name!r}, group={self.group!r}, "
                f"rate={self.rate!r}, size={self.size!r})")


def _as_entry(spec, index):
    if isinstance(spec, MixtureEntry):
        return MixtureEntry(spec.task, spec.dataset, spec.rate, spec.size,
                            spec.group, spec.name)
    if isinstance(spec, dict):
        unknown = set(spec) - {"task", "dataset", "rate", "size", "group",
                               "name"}
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


def _positive(value, what):
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (v > 0 and np.isfinite(v)):
        raise ValueError(f"{what} must be a positive number. Received: "
                         f"{value!r}")
    return v


def _dataset_size(ds):
    if _is_tf_dataset(ds):
        n = int(ds.cardinality())
        return n if n >= 0 else None  # -1 infinite, -2 unknown
    if hasattr(ds, "__len__") and not callable(getattr(ds, "__next__", None)):
        try:
            return len(ds)
        except TypeError:
            return None
    return None


class _Stream:
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
        if _is_tf_dataset(ds):
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
                        f"Mixture entry {self.entry.name!r}: its dataset "
                        "is empty."
                    ) from None
                continue
            self.index = self._count
            self._count += 1
            return element
        raise ValueError(
            f"Mixture entry {self.entry.name!r}: its dataset is empty."
        )


def _takes_rng(task):
    try:
        return "rng" in inspect.signature(task.encode_example).parameters
    except (TypeError, ValueError):
        return False


def _rngs(seed, epoch, n=3):
    ss = np.random.SeedSequence([int(seed), int(epoch)])
    return [np.random.default_rng(s) for s in ss.spawn(n)]


class Mixture:
    """A seeded, infinite, streaming mixture of tasks and datasets.

    Args:
        entries: list of `MixtureEntry`, dicts with the same keys, or tuples
            `(task, dataset, rate?, size?, group?, name?)`.
        group_rates: dict group -> share (default `PAPER_GROUP_RATES`);
            renormalised over the groups present.
        temperature: T of the `size ** (1 / T)` weighting (2.0).
        seed: int.
        num_image_patches: optional int: encode a random subset of at most
            this many visible patches per image (the paper: 256 of 576 for
            multi-task, 128 for pre-training). Batches then carry
            `image_input_indices [B, n]` and a compacted `image_input_masks
            [B, n]` (`select_patches`), and the encoder runs on `n` image
            positions, not 576.
        tokenizer: optional tokenizer given to tasks built from a name.

    Attributes:
        rates: dict entry name -> probability of a draw.
        group_shares: dict group -> probability of a draw.

    Example:
    >>> small = [{"question": "q", "context": "c", "answer": "a"}] * 100
    >>> large = [{"question": "q", "context": "c", "answer": "a"}] * 400
    >>> mixture = Mixture([("text_qa", small), ("text_qa", large)])
    >>> {k: round(v, 3) for k, v in mixture.rates.items()}
    {'text_qa': 0.333, 'text_qa_2': 0.667}
    """

    def __init__(self, entries, group_rates=None, temperature=2.0, seed=0,
                 num_image_patches=None, tokenizer=None):
        if isinstance(entries, (MixtureEntry, dict)) or not entries:
            raise ValueError(
                "`entries` must be a non-empty list of mixture entries. "
                f"Received: {entries!r}"
            )
        self.temperature = _positive(temperature, "`temperature`")
        if int(seed) != seed:
            raise ValueError(f"`seed` must be an int. Received: {seed!r}")
        self.seed = int(seed)
        if num_image_patches is not None and (
                int(num_image_patches) != num_image_patches
                or num_image_patches < 1):
            raise ValueError(
                "`num_image_patches` must be None or a positive int. "
                f"Received: {num_image_patches!r}"
            )
        self.num_image_patches = num_image_patches
        if group_rates is None:
            group_rates = PAPER_GROUP_RATES
        if not isinstance(group_rates, dict) or not group_rates:
            raise ValueError(
                "`group_rates` must be a non-empty dict group -> rate. "
                f"Received: {group_rates!r}"
            )
        group_rates = {
            g: _positive(r, f"`group_rates[{g!r}]`")
            for g, r in group_rates.items()
        }
        self.entries = []
        names = set()
        for i, spec in enumerate(entries):
            entry = _as_entry(spec, i)
            entry.task = _resolve_task(entry.task, tokenizer)
            if entry.name is None:
                base = entry.task.name
                entry.name, k = base, 1
                while entry.name in names:
                    k += 1
                    entry.name = f"{base}_{k}"
            if entry.name in names:
                raise ValueError(
                    f"Mixture entry names must be unique; {entry.name!r} is "
                    "repeated."
                )
            names.add(entry.name)
            if entry.group is None:
                entry.group = DEFAULT_TASK_GROUPS.get(entry.task.name)
                if entry.group is None:
                    raise ValueError(
                        f"Mixture entry {entry.name!r}: task "
                        f"{entry.task.name!r} has no default group; pass "
                        f"`group=` (one of {sorted(group_rates)})."
                    )
            if entry.group not in group_rates:
                raise ValueError(
                    f"Mixture entry {entry.name!r}: group {entry.group!r} is "
                    f"not in `group_rates` ({sorted(group_rates)})."
                )
            if entry.rate is not None:
                entry.rate = _positive(
                    entry.rate, f"Entry {entry.name!r}: `rate`")
            if entry.size is None:
                entry.size = _dataset_size(entry.dataset)
                if entry.size == 0:
                    raise ValueError(
                        f"Mixture entry {entry.name!r}: its dataset is empty."
                    )
            if entry.size is not None:
                entry.size = _positive(
                    entry.size, f"Entry {entry.name!r}: `size`")
            self.entries.append(entry)
        self._compute_rates(group_rates)
        self._takes_rng = [_takes_rng(e.task) for e in self.entries]

    def _compute_rates(self, group_rates):
        groups = {}
        for e in self.entries:
            groups.setdefault(e.group, []).append(e)
        total = sum(group_rates[g] for g in groups)
        self.group_shares = {g: group_rates[g] / total for g in groups}
        rates = {}
        for g, members in groups.items():
            explicit = [e.rate is not None for e in members]
            sized = [e.size is not None for e in members]
            if all(explicit):
                weights = [e.rate for e in members]
            elif any(explicit):
                raise ValueError(
                    f"Group {g!r} mixes entries with an explicit `rate` "
                    f"({[e.name for e in members if e.rate is not None]}) "
                    "and entries without; give every entry of a group a "
                    "`rate`, or none."
                )
            elif all(sized):
                weights = [e.size ** (1.0 / self.temperature)
                           for e in members]
            elif not any(sized):
                weights = [1.0] * len(members)
            else:
                raise ValueError(
                    f"Group {g!r}: entries "
                    f"{[e.name for e in members if e.size is None]} have no "
                    "known size (pass `size=` or `rate=`) while others do."
                )
            wsum = float(sum(weights))
            for e, w in zip(members, weights):
                rates[e.name] = self.group_shares[g] * w / wsum
        self.rates = {e.name: rates[e.name] for e in self.entries}
        p = np.array([self.rates[e.name] for e in self.entries])
        self._cdf = np.cumsum(p / p.sum())
        self._cdf[-1] = 1.0

    # ----------------------------------------------------------- draws
    def _choices(self, rng):
        while True:
            for u in rng.random(1024):
                yield int(np.searchsorted(self._cdf, u, side="right"))

    def sample_entries(self, num_draws, epoch=0):
        """The entry names of the first `num_draws` draws (reads no data).

        The same sequence as the `"source"` tags of `examples(epoch)`.
        """
        rng = _rngs(self.seed, epoch)[0]
        choices = self._choices(rng)
        return [self.entries[next(choices)].name for _ in range(num_draws)]

    def examples(self, epoch=0):
        """Infinite iterator of encoded, tagged examples.

        Each is the task's `encode_example` output plus `"task"` (task name)
        and `"source"` (entry name). `epoch` selects an independent random
        stream (same seed); the datasets are read from their start.

        Raises:
            ValueError: an element that does not match its task (the
                message names the entry, the task and the task's error,
                which names the field).
        """
        choice_rng, example_rng, _ = _rngs(self.seed, epoch)
        streams = [_Stream(e) for e in self.entries]
        for k in self._choices(choice_rng):
            entry, stream = self.entries[k], streams[k]
            element = stream.next()
            try:
                if self._takes_rng[k]:
                    encoded = entry.task.encode_example(element,
                                                        rng=example_rng)
                else:
                    encoded = entry.task.encode_example(element)
            except (ValueError, TypeError, KeyError) as err:
                raise ValueError(
                    f"Mixture entry {entry.name!r}: element {stream.index} "
                    f"(pass {stream.passes}) of its dataset does not match "
                    f"task {entry.task.name!r}: {err}"
                ) from err
            encoded = dict(encoded)
            encoded["task"] = entry.task.name
            encoded["source"] = entry.name
            yield encoded

    def __iter__(self):
        return self.examples()

    # --------------------------------------------------------- batches
    def image_targets(self):
        """Whether batches carry target images (some task outputs images)."""
        return any(getattr(e.task, "output_mode", "text") != "text"
                   for e in self.entries)

    def batches(self, preprocessor, batch_size, epoch=0, image_targets=None):
        """Infinite iterator of preprocessed NumPy batches `(x, y, sw)`.

        See `preprocess_examples` for the contents; `image_targets`
        defaults to `self.image_targets()`.
        """
        batch_size = _check_batch_size(batch_size)
        if image_targets is None:
            image_targets = self.image_targets()
        _, _, patch_rng = _rngs(self.seed, epoch)
        examples = self.examples(epoch)
        while True:
            chunk = list(itertools.islice(examples, batch_size))
            yield preprocess_examples(
                chunk, preprocessor, rng=patch_rng,
                num_image_patches=self.num_image_patches,
                image_targets=image_targets,
            )

    def as_tf_dataset(self, preprocessor, batch_size, prefetch=2,
                      image_targets=None):
        """An infinite `tf.data.Dataset` of `(x, y, sample_weight)` batches.

        Ready for `model.fit(dataset, steps_per_epoch=...)`. Examples are
        drawn and preprocessed in Python (`batches`) behind
        `tf.data.Dataset.from_generator`, with `prefetch` batches ahead.
        Each new iteration of the dataset continues with the next epoch's
        random stream (`epoch = 0, 1, ...`).

        Example:
        ```python
        import keras_uio
        from keras_uio.data import Mixture

        model = keras_uio.UnifiedIO.from_preset("uio_tiny_easyvqa")
        captions = [{"image": np.zeros((64, 64, 3), "uint8"), "caption": "dark"}]
        mixture = Mixture([("captioning", captions)], seed=0)
        ds = mixture.as_tf_dataset(model.preprocessor, batch_size=2)
        x, y, sw = next(iter(ds))
        x["image_encoder_inputs"].shape  # (2, 64, 64, 3)
        ```

        The batches are already preprocessed; `UnifiedIO.fit` passes such
        batches through without running its preprocessor again:
        ```python
        # not run: a real training run (one step alone compiles for ~20 s on CPU)
        model.compile()
        model.fit(ds, steps_per_epoch=1000, epochs=10)
        ```
        """
        import tensorflow as tf

        batch_size = _check_batch_size(batch_size)
        if image_targets is None:
            image_targets = self.image_targets()
        signature = output_signature(preprocessor, batch_size, image_targets,
                                     self.num_image_patches)
        epochs = itertools.count()

        def generator():
            yield from self.batches(preprocessor, batch_size,
                                    epoch=next(epochs),
                                    image_targets=image_targets)

        ds = tf.data.Dataset.from_generator(
            generator, output_signature=signature)
        return ds.prefetch(prefetch) if prefetch else ds

    def __repr__(self):
        rows = ", ".join(f"{k}: {v:.4f}" for k, v in self.rates.items())
        return f"Mixture(seed={self.seed}, rates={{{rows}}})"


def _check_batch_size(batch_size):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: {batch_size!r}"
        )
    return int(batch_size)


# ------------------------------------------------------ preprocessing
def _shapes(preprocessor, image_targets, num_image_patches=None):
    le = preprocessor.encoder_sequence_length
    ld = preprocessor.decoder_sequence_length
    size = preprocessor.image_converter.image_size[0]
    patches = num_image_patches or preprocessor.image_converter.num_patches
    x = {
        "text_encoder_inputs": ((le,), "int32"),
        "image_encoder_inputs": ((size, size, 3), "float32"),
        "image_input_masks": ((patches,), "int32"),
        "text_decoder_inputs": ((ld,), "int32"),
        "text_decoder_masks": ((ld,), "int32"),
    }
    if num_image_patches:
        x["image_input_indices"] = ((patches,), "int32")
    if image_targets:
        conv = preprocessor.target_image_converter
        t = conv.image_size[0]
        x["image_decoder_targets"] = ((t, t, 3), "float32")
        x["image_target_masks"] = ((conv.num_patches,), "int32")
    y = {"text_decoder_targets": ((ld,), "int32")}
    return x, y, dict(y)


def output_signature(preprocessor, batch_size, image_targets=True,
                     num_image_patches=None):
    """`tf.TensorSpec`s of `preprocess_examples`' batches (for tf.data)."""
    import tensorflow as tf

    return tuple(
        {k: tf.TensorSpec((batch_size,) + s, d) for k, (s, d) in part.items()}
        for part in _shapes(preprocessor, image_targets, num_image_patches)
    )


def _pack_ids(ids, length, truncate, eos_id, what):
    ids = [int(i) for i in np.asarray(ids).reshape(-1)] + [eos_id]
    if len(ids) > length:
        if not truncate:
            raise ValueError(
                f"{what} has {len(ids)} tokens (with EOS), longer than the "
                f"sequence length {length}. Pass `truncate=True` to the "
                "preprocessor, or a smaller `max_text_tokens` to the "
                "objective."
            )
        ids = ids[: length - 1] + [eos_id]
    out = np.zeros((length,), np.int32)
    out[: len(ids)] = ids
    return out


def preprocess_examples(examples, preprocessor, rng=None,
                        num_image_patches=None, image_targets=True):
    """Encoded examples (a `Mixture`'s) -> one NumPy batch `(x, y, sw)`.

    Each example goes through `preprocessor` eagerly, so images of any size
    and rows with or without images mix freely. On top of the
    preprocessor's keys this understands:
    - `"prompt_ids"` / `"target_text_ids"`: token ids (no EOS) packed as
      the preprocessor packs text (EOS appended, 0 padding, decoder inputs
      shifted right) - the span-corruption objective's output;
    - `"patch_mask_ratio"`: hide that fraction of the image's patches
      (`hide_patches`, masked image denoising);
    - `"task"` / `"source"` tags (ignored).
    Then `num_image_patches` keeps a random subset of the visible patches
    of every image, compacted: `image_input_indices` and `image_input_masks`
    become `[B, num_image_patches]` (`select_patches`).

    With `image_targets`, every batch has `x["image_decoder_targets"]`
    (`[B, 256, 256, 3]`) and `x["image_target_masks"]` (`[B, 256]`), zero
    for rows without a target image; without it, a target image raises.

    Returns:
        `(x, y, sw)` dicts of NumPy arrays (see `UnifiedIOPreprocessor`).

    Example:
    ```python
    import keras_uio
    from keras_uio.data import Mixture
    from keras_uio.models.unified_io.unified_io_backbone import (
        bundled_preset_path,
    )

    preprocessor = keras_uio.UnifiedIOPreprocessor.from_preset(
        bundled_preset_path("uio_tiny_easyvqa"))  # the shipped preset's folder
    qa = [{"question": "Who?", "context": "Ann ran.", "answer": "Ann"}]
    captions = [{"image": np.zeros((64, 64, 3), "uint8"), "caption": "dark"}]
    mixture = Mixture([("text_qa", qa), ("captioning", captions)], seed=0)
    x, y, sw = preprocess_examples(
        list(itertools.islice(iter(mixture), 4)), preprocessor,
        image_targets=False)
    x["text_encoder_inputs"].shape, y["text_decoder_targets"].shape
    # (4, 32), (4, 16): the preset's sequence lengths
    ```
    """
    if rng is None:
        rng = np.random.default_rng()
    if not examples:
        raise ValueError("`examples` must not be empty.")
    if num_image_patches is not None:
        total = preprocessor.image_converter.num_patches
        if not 1 <= num_image_patches <= total:
            raise ValueError(
                f"`num_image_patches` must be in [1, {total}] (the image "
                f"converter's patches). Received: {num_image_patches!r}"
            )
    shapes = _shapes(preprocessor, image_targets, num_image_patches)
    eos = preprocessor.tokenizer.vocab.eos_id
    rows = []
    for i, example in enumerate(examples):
        ex = {k: v for k, v in example.items() if k not in TAG_KEYS}
        who = (f"example {i} (task {example.get('task', '?')!r}, source "
               f"{example.get('source', '?')!r})")
        prompt_ids = ex.pop(PROMPT_IDS_KEY, None)
        target_ids = ex.pop(TARGET_IDS_KEY, None)
        ratio = ex.pop(PATCH_MASK_RATIO_KEY, None)
        if prompt_ids is not None:
            ex.setdefault("prompt", "")
        if target_ids is not None and "target_text" in ex:
            raise ValueError(
                f"{who}: has both `target_text` and `target_text_ids`."
            )
        if not image_targets and ex.get("target_image") is not None:
            raise ValueError(
                f"{who} has a `target_image` but the batches have no image "
                "targets; pass `image_targets=True`."
            )
        ex = {k: v for k, v in ex.items() if v is not None}
        try:
            x, y, sw = preprocessor(ex)
        except ValueError as err:
            # Keep the message; drop Keras' dump of the call's arguments
            # (whole images) that it appends to errors raised in `call`.
            message = str(err).split("\n\nArguments received by")[0]
            raise ValueError(f"{who}: {message.strip()}") from err
        x = {k: np.asarray(v) for k, v in x.items()}
        y = {k: np.asarray(v) for k, v in y.items()}
        if prompt_ids is not None:
            x["text_encoder_inputs"] = _pack_ids(
                prompt_ids, preprocessor.encoder_sequence_length,
                preprocessor.truncate, eos, f"{who}: `prompt_ids`")
        if target_ids is not None:
            targets = _pack_ids(
                target_ids, preprocessor.decoder_sequence_length,
                preprocessor.truncate, eos, f"{who}: `target_text_ids`")
            y["text_decoder_targets"] = targets
            x["text_decoder_inputs"] = np.concatenate(
                [[0], targets[:-1]]).astype(np.int32)
            x["text_decoder_masks"] = (targets > 0).astype(np.int32)
        if ratio is not None:
            x["image_input_masks"] = hide_patches(
                x["image_input_masks"], ratio, rng)
        if num_image_patches is not None:
            x["image_input_indices"], x["image_input_masks"] = select_patches(
                x["image_input_masks"], num_image_patches, rng)
        extra = set(x) - set(shapes[0])
        if extra:
            raise ValueError(
                f"{who}: the preprocessor produced {sorted(extra)}, which "
                "mixture batches do not support (`target_codes`?); give "
                "`target_image` instead."
            )
        rows.append((x, y))
    x_shapes, y_shapes, _ = shapes
    x = {}
    for k, (shape, dtype) in x_shapes.items():
        x[k] = np.stack([
            r[0][k] if k in r[0] else np.zeros(shape, dtype) for r in rows
        ]).astype(dtype)
    y = {k: np.stack([r[1][k] for r in rows]).astype(d)
         for k, (_, d) in y_shapes.items()}
    sw = {"text_decoder_targets": x["text_decoder_masks"].copy()}
    return x, y, sw
