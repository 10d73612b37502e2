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

`MixtureEntry` is in `mixture_entry.py`, the dataset reader in
`dataset_stream.py` and the batching (`preprocess_examples`,
`output_signature`) in `batching.py`.

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

from keras_uio.data.batching import check_batch_size
from keras_uio.data.batching import output_signature
from keras_uio.data.batching import preprocess_examples
from keras_uio.data.dataset_stream import DatasetStream
from keras_uio.data.mixture_entry import MixtureEntry
from keras_uio.data.mixture_entry import as_entry
from keras_uio.data.mixture_entry import dataset_size
from keras_uio.data.mixture_entry import positive_number
from keras_uio.data.mixture_entry import resolve_task

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

    def __init__(
        self,
        entries,
        group_rates=None,
        temperature=2.0,
        seed=0,
        num_image_patches=None,
        tokenizer=None,
    ):
        if isinstance(entries, (MixtureEntry, dict)) or not entries:
            raise ValueError(
                "`entries` must be a non-empty list of mixture entries. "
                f"Received: {entries!r}"
            )
        self.temperature = positive_number(temperature, "`temperature`")
        if int(seed) != seed:
            raise ValueError(f"`seed` must be an int. Received: {seed!r}")
        self.seed = int(seed)
        if num_image_patches is not None and (
            int(num_image_patches) != num_image_patches or num_image_patches < 1
        ):
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
            g: positive_number(r, f"`group_rates[{g!r}]`")
            for g, r in group_rates.items()
        }
        self.entries = []
        names = set()
        for i, spec in enumerate(entries):
            entry = as_entry(spec, i)
            entry.task = resolve_task(entry.task, tokenizer)
            if entry.name is None:
                base = entry.task.name
                entry.name, k = base, 1
                while entry.name in names:
                    k += 1
                    entry.name = f"{base}_{k}"
            if entry.name in names:
                raise ValueError(
                    f"Mixture entry names must be unique; {entry.name!r} is repeated."
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
                entry.rate = positive_number(
                    entry.rate, f"Entry {entry.name!r}: `rate`"
                )
            if entry.size is None:
                entry.size = dataset_size(entry.dataset)
                if entry.size == 0:
                    raise ValueError(
                        f"Mixture entry {entry.name!r}: its dataset is empty."
                    )
            if entry.size is not None:
                entry.size = positive_number(
                    entry.size, f"Entry {entry.name!r}: `size`"
                )
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
                weights = [e.size ** (1.0 / self.temperature) for e in members]
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
        streams = [DatasetStream(e) for e in self.entries]
        for k in self._choices(choice_rng):
            entry, stream = self.entries[k], streams[k]
            element = stream.next()
            try:
                if self._takes_rng[k]:
                    encoded = entry.task.encode_example(element, rng=example_rng)
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
        return any(
            getattr(e.task, "output_mode", "text") != "text" for e in self.entries
        )

    def batches(self, preprocessor, batch_size, epoch=0, image_targets=None):
        """Infinite iterator of preprocessed NumPy batches `(x, y, sw)`.

        See `preprocess_examples` for the contents; `image_targets`
        defaults to `self.image_targets()`. `UnifiedIO.fit` takes the
        iterator as it is: `model.fit(mixture.batches(model.preprocessor,
        8), steps_per_epoch=1000)`.
        """
        batch_size = check_batch_size(batch_size)
        if image_targets is None:
            image_targets = self.image_targets()
        _, _, patch_rng = _rngs(self.seed, epoch)
        examples = self.examples(epoch)
        while True:
            chunk = list(itertools.islice(examples, batch_size))
            yield preprocess_examples(
                chunk,
                preprocessor,
                rng=patch_rng,
                num_image_patches=self.num_image_patches,
                image_targets=image_targets,
            )

    def as_tf_dataset(self, preprocessor, batch_size, prefetch=2, image_targets=None):
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

        batch_size = check_batch_size(batch_size)
        if image_targets is None:
            image_targets = self.image_targets()
        signature = output_signature(
            preprocessor, batch_size, image_targets, self.num_image_patches
        )
        epochs = itertools.count()

        def generator():
            yield from self.batches(
                preprocessor,
                batch_size,
                epoch=next(epochs),
                image_targets=image_targets,
            )

        ds = tf.data.Dataset.from_generator(generator, output_signature=signature)
        return ds.prefetch(prefetch) if prefetch else ds

    def __repr__(self):
        rows = ", ".join(f"{k}: {v:.4f}" for k, v in self.rates.items())
        return f"Mixture(seed={self.seed}, rates={{{rows}}})"
