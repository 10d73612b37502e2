"""Unified-IO pre-training objectives (paper, section 3.3).

Three pieces, each usable on its own and all seeded by a NumPy `Generator`:

- **text span corruption** (T5): 15% of the tokens are noised in spans of
  mean length 3; each span becomes one sentinel `<extra_id_k>` (k = 0, 1,
  ...) in the input; the target is each sentinel followed by the tokens it
  replaced. Works on token ids with the `Vocabulary`'s sentinel ids
  (`span_corruption`, `random_spans_noise_mask`, `undo_span_corruption`).
- **masked image denoising**: 75% of the image's encoder patches are hidden
  through the patch mask (`hide_patches`); the target is the whole image
  (the model's VQ-GAN turns it into codes).
- **modality drop**: an example with both text and image loses one of them
  (each with probability 1/2) 10% of the time (`drop_modality`).

`DenoisingTask` combines them into a task a `keras_uio.data.Mixture` can
draw from (name `"denoising"`, group `"language_modelling"` by default).
Its examples carry token ids (`"prompt_ids"`, `"target_text_ids"`) so that
the corruption is exact; `Mixture.batches` / `preprocess_examples` pack
them, or pass `return_text=True` to get strings for the plain
`UnifiedIOPreprocessor` (re-tokenising the text may split pieces
differently from the corrupted ids).

The hidden patches are applied after preprocessing (the patch mask depends
on the image's padding): the example carries `"patch_mask_ratio"`, which
`preprocess_examples` applies with `hide_patches`.

Example:
>>> import numpy as np
>>> from keras_uio.vocab import Vocabulary
>>> vocab = Vocabulary()
>>> rng = np.random.default_rng(0)
>>> ids = np.arange(100, 140)
>>> inputs, targets = span_corruption(ids, vocab, rng)
>>> bool(np.array_equal(undo_span_corruption(inputs, targets, vocab), ids))
True
>>> int(vocab.sentinel_id(0)) in inputs.tolist()
True
"""

import numpy as np

from keras_uio.host_arrays import to_numpy
from keras_uio.preprocessing.images import prepare_image
from keras_uio.tasks.checks import check_text
from keras_uio.tasks.task import Task
from keras_uio.vocab import Vocabulary

NOISE_DENSITY = 0.15
MEAN_NOISE_SPAN_LENGTH = 3.0
IMAGE_MASK_RATIO = 0.75
MODALITY_DROP_RATE = 0.1

# Extra example keys understood by `keras_uio.data.preprocess_examples`.
PROMPT_IDS_KEY = "prompt_ids"
TARGET_IDS_KEY = "target_text_ids"
PATCH_MASK_RATIO_KEY = "patch_mask_ratio"


def _check_rng(rng):
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            "`rng` must be a `numpy.random.Generator`, an int seed or None. "
            f"Received: {type(rng).__name__}"
        )
    return rng


def _check_fraction(value, name, low_open=True):
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    ok = (0.0 < v < 1.0) if low_open else (0.0 <= v <= 1.0)
    if not ok:
        interval = "(0, 1)" if low_open else "[0, 1]"
        raise ValueError(f"`{name}` must be in {interval}. Received: {value!r}")
    return v


def _random_segmentation(total, num_segments, rng):
    """`num_segments` positive ints summing to `total`, uniformly at random."""
    if num_segments == 1:
        return np.array([total])
    cuts = np.sort(rng.choice(np.arange(1, total), num_segments - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [total]]))


def random_spans_noise_mask(
    length,
    rng=None,
    noise_density=NOISE_DENSITY,
    mean_noise_span_length=MEAN_NOISE_SPAN_LENGTH,
    max_spans=None,
):
    """T5's noise mask: which of `length` tokens are noised.

    `round(length * noise_density)` tokens (at least 1, at most
    `length - 1`) are noised, in `round(num_noise / mean_noise_span_length)`
    spans (at least 1; at most `max_spans` and the number of kept tokens).
    Span lengths are a random composition of the counts; as in T5 the
    sequence starts with kept tokens and alternates kept / noised.

    Args:
        length: int >= 2, number of tokens.
        rng: `numpy.random.Generator` (or int seed).
        noise_density: fraction of noised tokens, in (0, 1).
        mean_noise_span_length: float >= 1.
        max_spans: optional cap on the number of spans (the sentinels).

    Returns:
        bool `[length]`, `True` for noised tokens.

    Example:
    >>> m = random_spans_noise_mask(20, np.random.default_rng(0))
    >>> int(m.sum())
    3
    """
    rng = _check_rng(rng)
    length = int(length)
    if length < 2:
        raise ValueError(f"`length` must be >= 2 to corrupt spans. Received: {length}")
    noise_density = _check_fraction(noise_density, "noise_density")
    if float(mean_noise_span_length) < 1:
        raise ValueError(
            "`mean_noise_span_length` must be >= 1. Received: "
            f"{mean_noise_span_length!r}"
        )
    num_noise = int(np.clip(round(length * noise_density), 1, length - 1))
    num_keep = length - num_noise
    num_spans = max(1, int(round(num_noise / float(mean_noise_span_length))))
    num_spans = min(num_spans, num_noise, num_keep)
    if max_spans is not None:
        num_spans = max(1, min(num_spans, int(max_spans)))
    noise_lengths = _random_segmentation(num_noise, num_spans, rng)
    keep_lengths = _random_segmentation(num_keep, num_spans, rng)
    mask = np.zeros(length, bool)
    pos = 0
    for keep, noise in zip(keep_lengths, noise_lengths):
        pos += keep
        mask[pos : pos + noise] = True
        pos += noise
    return mask


def _as_ids(token_ids, name="token_ids"):
    ids = to_numpy(token_ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(
            f"`{name}` must be a 1-D sequence of integer token ids. "
            f"Received: shape {ids.shape}, dtype {ids.dtype}"
        )
    return ids.astype(np.int64)


def span_corruption(
    token_ids,
    vocab,
    rng=None,
    noise_density=NOISE_DENSITY,
    mean_noise_span_length=MEAN_NOISE_SPAN_LENGTH,
):
    """T5 span corruption of one sequence of token ids.

    Each noised span is replaced in the input by one sentinel
    `<extra_id_k>` (`vocab.sentinel_id(k)`, k = 0, 1, ... in order); the
    target is `<extra_id_0> span_0 <extra_id_1> span_1 ...`. Neither has
    EOS (the preprocessor appends it). Trailing EOS/padding in `token_ids`
    is removed first.

    Args:
        token_ids: 1-D ints (SentencePiece ids).
        vocab: the `Vocabulary` (sentinel ids).
        rng: `numpy.random.Generator` or int seed.
        noise_density: fraction of tokens noised (0.15).
        mean_noise_span_length: mean span length (3).

    Returns:
        `(inputs, targets)` int32 arrays. A sequence of fewer than 2 tokens
        is returned unchanged with an empty target.

    Example:
    >>> vocab = Vocabulary()
    >>> inputs, targets = span_corruption(np.arange(3, 23), vocab, 0)
    >>> len(inputs) + len(targets) == 20 + 2 * int(vocab.is_sentinel(inputs).sum())
    True
    """
    if not isinstance(vocab, Vocabulary):
        raise ValueError(
            "`vocab` must be a `keras_uio.Vocabulary`. Received: "
            f"{type(vocab).__name__}"
        )
    rng = _check_rng(rng)
    ids = _as_ids(token_ids)
    end = len(ids)
    while end and ids[end - 1] in (vocab.eos_id, vocab.pad_id):
        end -= 1
    ids = ids[:end]
    if len(ids) < 2:
        return ids.astype(np.int32), np.zeros((0,), np.int32)
    if vocab.num_sentinels < 1:
        raise ValueError("span corruption needs a vocabulary with sentinels")
    mask = random_spans_noise_mask(
        len(ids),
        rng,
        noise_density,
        mean_noise_span_length,
        max_spans=vocab.num_sentinels,
    )
    starts = mask & ~np.concatenate([[False], mask[:-1]])
    span_index = np.cumsum(starts) - 1  # span number at each noised token
    sentinels = vocab.sentinel_id(np.maximum(span_index, 0))
    inputs = np.where(starts, sentinels, ids)[~mask | starts]
    # Targets: each noised span preceded by its sentinel.
    where = (np.cumsum(mask) - 1)[starts]  # span starts among noised ids
    targets = np.insert(ids[mask], where, sentinels[starts]).astype(np.int32)
    return inputs.astype(np.int32), targets


def undo_span_corruption(inputs, targets, vocab):
    """Rebuild the original ids from `span_corruption`'s output.

    Raises a `ValueError` if a sentinel of `inputs` is missing from
    `targets` or the sentinels are out of order.

    Example:
    >>> vocab = Vocabulary()
    >>> s0, s1 = vocab.sentinel_id(0), vocab.sentinel_id(1)
    >>> undo_span_corruption([5, s0, 8, s1], [s0, 6, 7, s1, 9], vocab).tolist()
    [5, 6, 7, 8, 9]
    """
    inputs = _as_ids(inputs, "inputs")
    targets = _as_ids(targets, "targets")
    numbers = vocab.extra_id_number(targets)
    spans, k = {}, -1
    for t, s, n in zip(
        targets.tolist(), vocab.is_sentinel(targets).tolist(), numbers.tolist()
    ):
        if s:
            if n != k + 1:
                raise ValueError(
                    f"`targets` sentinels out of order: <extra_id_{n}> after "
                    f"<extra_id_{k}>"
                )
            k = n
            spans[k] = []
        elif k >= 0:
            spans[k].append(t)
    out = []
    expected = 0
    for t, s, n in zip(
        inputs.tolist(),
        vocab.is_sentinel(inputs).tolist(),
        vocab.extra_id_number(inputs).tolist(),
    ):
        if s:
            if n != expected or n not in spans:
                raise ValueError(
                    f"`inputs` sentinel <extra_id_{n}> has no matching span "
                    f"in `targets` (expected <extra_id_{expected}>)"
                )
            out.extend(spans[n])
            expected += 1
        else:
            out.append(t)
    return np.asarray(out, np.int64)


# ------------------------------------------------------------- patches
def _check_patch_mask(patch_mask, name="patch_mask"):
    if hasattr(patch_mask, "numpy"):
        patch_mask = patch_mask.numpy()
    mask = np.asarray(patch_mask)
    if mask.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` must be `[num_patches]` or `[batch, num_patches]`. "
            f"Received shape: {mask.shape}"
        )
    return mask


def hide_patches(patch_mask, mask_ratio=IMAGE_MASK_RATIO, rng=None):
    """Hide a random `mask_ratio` of each image's visible patches.

    `round(mask_ratio * visible)` of the entries that are 1 in each row of
    the encoder patch mask (`image_input_masks`, 576 per image) are set to
    0; padding patches stay 0. This is masked image denoising: the encoder
    sees 25% of the image and the target is the whole image.

    Args:
        patch_mask: `[num_patches]` or `[batch, num_patches]` 0/1 ints.
        mask_ratio: fraction hidden, in [0, 1] (0.75).
        rng: `numpy.random.Generator` or int seed.

    Returns:
        a new mask, same shape and dtype.

    Example:
    >>> m = hide_patches(np.ones(576, "int32"), 0.75, np.random.default_rng(0))
    >>> int(m.sum())
    144
    """
    rng = _check_rng(rng)
    mask_ratio = _check_fraction(mask_ratio, "mask_ratio", low_open=False)
    mask = _check_patch_mask(patch_mask)
    out = mask.copy()
    rows = out[None] if out.ndim == 1 else out
    for row in rows:
        visible = np.flatnonzero(row)
        n_hide = int(round(mask_ratio * len(visible)))
        if n_hide:
            row[rng.choice(visible, n_hide, replace=False)] = 0
    return out


def select_patches(patch_mask, num_patches, rng=None):
    """A random subset of at most `num_patches` visible patches per image.

    The paper trains on a random subset of the 576 patches: 128
    (pre-training) or 256 (multi-task). The subset is returned compacted,
    so that the encoder runs on `num_patches` image positions instead of
    576 (`UnifiedIOBackbone.encode(..., image_input_indices=...)`): the
    kept patches' indices in ascending order and a mask that is 0 for the
    slots left over when an image has fewer visible patches (padding).

    Args:
        patch_mask: `[num_patches_total]` or `[batch, num_patches_total]`
            0/1 ints (the preprocessor's `image_input_masks`).
        num_patches: int, the number of slots kept.
        rng: `np.random.Generator` or seed.

    Returns:
        `(indices, mask)`, int32 `[..., num_patches]` each.

    Example:
    >>> indices, mask = select_patches(np.ones((2, 576), "int32"), 256, 0)
    >>> indices.shape, mask.sum(axis=1).tolist()
    ((2, 256), [256, 256])
    """
    rng = _check_rng(rng)
    if (
        isinstance(num_patches, bool)
        or int(num_patches) != num_patches
        or num_patches < 1
    ):
        raise ValueError(
            f"`num_patches` must be a positive int. Received: {num_patches!r}"
        )
    num_patches = int(num_patches)
    mask = _check_patch_mask(patch_mask)
    if num_patches > mask.shape[-1]:
        raise ValueError(
            f"`num_patches` ({num_patches}) is more than the image has "
            f"({mask.shape[-1]} patches)."
        )
    rows = mask.reshape(-1, mask.shape[-1])
    indices = np.zeros((len(rows), num_patches), np.int32)
    kept = np.zeros((len(rows), num_patches), np.int32)
    for row, index, keep in zip(rows, indices, kept):
        visible = np.flatnonzero(row)
        if len(visible) > num_patches:
            visible = np.sort(rng.choice(visible, num_patches, replace=False))
        index[: len(visible)] = visible
        keep[: len(visible)] = 1
    shape = mask.shape[:-1] + (num_patches,)
    return indices.reshape(shape), kept.reshape(shape)


# ---------------------------------------------------------- modalities
def drop_modality(
    example, rng=None, rate=MODALITY_DROP_RATE, text_key="text", image_key="image"
):
    """With both text and image present, drop one of them `rate` of the time.

    The dropped modality is the text or the image with probability 1/2
    each. An example with only one modality is returned unchanged (and no
    random number is drawn for it).

    Returns:
        `(example, dropped)`: a shallow copy of the example without the
        dropped key, and `"text"`, `"image"` or `None`.

    Example:
    >>> ex, dropped = drop_modality({"text": "a", "image": 1}, rate=1.0, rng=0)
    >>> dropped in ("text", "image") and len(ex) == 1
    True
    """
    rng = _check_rng(rng)
    rate = _check_fraction(rate, "rate", low_open=False)
    has_text = example.get(text_key) is not None
    has_image = example.get(image_key) is not None
    if not (has_text and has_image):
        return dict(example), None
    if rng.random() >= rate:
        return dict(example), None
    dropped = "text" if rng.random() < 0.5 else "image"
    out = dict(example)
    out.pop(text_key if dropped == "text" else image_key)
    return out, dropped


# ---------------------------------------------------------------- task
class DenoisingTask(Task):
    """Unified-IO pre-training: text span + masked image denoising.

    Example keys (at least one of the text and the image):
    - `"text"`: a string (needs `tokenizer`) or `"text_ids"`: token ids;
    - `"image"`: an image (`[H, W, 3]` uint8 or float in [0, 1], ...).

    `encode_example(example, rng)`:
    1. with text and image, drops one of them `modality_drop_rate` of the
       time (`drop_modality`);
    2. text: optionally crops a random window of `max_text_tokens`, then
       `span_corruption`; the corrupted ids are the prompt
       (`"prompt_ids"`) and the sentinel spans the target
       (`"target_text_ids"`);
    3. image: the image is the encoder input and the target image
       (`"target_image"`), and `"patch_mask_ratio"` asks the batcher to
       hide `image_mask_ratio` of its patches (`hide_patches`). Without
       text the prompt is `image_prompt` and the target text is empty.

    With `return_text=True` the ids are detokenised into `"prompt"` /
    `"target_text"` strings for the plain `UnifiedIOPreprocessor` (and the
    patch ratio is left out: apply `hide_patches` to its output).

    Not in `keras_uio.tasks.TASKS` (it does not generate); a `Mixture`
    finds it by the name `"denoising"`.

    Args:
        vocab / tokenizer: as `Task` (a tokenizer is needed for `"text"`).
        noise_density, mean_noise_span_length: span corruption (0.15, 3).
        image_mask_ratio: hidden fraction of patches (0.75).
        modality_drop_rate: 0.1.
        max_text_tokens: optional int, random crop of long texts.
        image_prompt: prompt of image-only examples.
        return_text: bool, strings instead of ids.
        seed: seed of the generator used when `encode_example` is called
            without `rng`.

    Example:
    >>> task = DenoisingTask(seed=0)
    >>> ex = task.encode_example({"text_ids": list(range(100, 130))})
    >>> sorted(ex)
    ['prompt_ids', 'target_text_ids']
    """

    name = "denoising"
    output_mode = "text_and_image"
    uses_image = True
    prompt_template = "What is the complete image ?"
    max_text_length = 128

    def __init__(
        self,
        vocab=None,
        tokenizer=None,
        noise_density=NOISE_DENSITY,
        mean_noise_span_length=MEAN_NOISE_SPAN_LENGTH,
        image_mask_ratio=IMAGE_MASK_RATIO,
        modality_drop_rate=MODALITY_DROP_RATE,
        max_text_tokens=None,
        image_prompt=None,
        return_text=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            vocab=vocab, tokenizer=tokenizer, prompt_template=image_prompt, **kwargs
        )
        self.noise_density = _check_fraction(noise_density, "noise_density")
        if float(mean_noise_span_length) < 1:
            raise ValueError(
                "`mean_noise_span_length` must be >= 1. Received: "
                f"{mean_noise_span_length!r}"
            )
        self.mean_noise_span_length = float(mean_noise_span_length)
        self.image_mask_ratio = _check_fraction(
            image_mask_ratio, "image_mask_ratio", low_open=False
        )
        self.modality_drop_rate = _check_fraction(
            modality_drop_rate, "modality_drop_rate", low_open=False
        )
        if max_text_tokens is not None and int(max_text_tokens) < 2:
            raise ValueError(
                "`max_text_tokens` must be None or an int >= 2. Received: "
                f"{max_text_tokens!r}"
            )
        self.max_text_tokens = None if max_text_tokens is None else int(max_text_tokens)
        self.return_text = bool(return_text)
        self._rng = np.random.default_rng(seed)

    def _text_ids(self, example):
        if example.get("text_ids") is not None:
            return _as_ids(example["text_ids"], "text_ids")
        text = check_text(example["text"], "text")
        if self.tokenizer is None:
            raise ValueError(
                f"Task {self.name!r}: the `text` field needs a tokenizer; "
                "pass `tokenizer=` to `DenoisingTask` or give `text_ids`."
            )
        ids = self.tokenizer(text)
        if hasattr(ids, "numpy"):
            ids = ids.numpy()
        return _as_ids(np.asarray(ids).reshape(-1), "text")

    def encode_example(self, example, rng=None):
        """One pre-training example; see the class docstring."""
        rng = self._rng if rng is None else _check_rng(rng)
        if not isinstance(example, dict):
            raise ValueError(
                f"Task {self.name!r}: `example` must be a dict. Received: "
                f"{type(example).__name__}"
            )
        allowed = {"text", "text_ids", "image"}
        unknown = set(example) - allowed
        if unknown:
            raise ValueError(
                f"Task {self.name!r} received unknown example keys "
                f"{sorted(unknown)}; expected some of {sorted(allowed)}"
            )
        if example.get("text") is not None and (example.get("text_ids") is not None):
            raise ValueError(
                f"Task {self.name!r}: give `text` or `text_ids`, not both."
            )
        ex = {
            "text": example.get("text", example.get("text_ids")),
            "image": example.get("image"),
        }
        if ex["text"] is None and ex["image"] is None:
            raise ValueError(
                f"Task {self.name!r} needs a `text` (or `text_ids`) or an "
                f"`image` field. Received keys: {sorted(example)}"
            )
        ex, _ = drop_modality(ex, rng, self.modality_drop_rate)
        out = {}
        if ex.get("text") is not None:
            src = (
                {"text_ids": example["text_ids"]}
                if example.get("text_ids") is not None
                else {"text": example["text"]}
            )
            ids = self._text_ids(src)
            end = len(ids)
            while end and ids[end - 1] in (self.vocab.eos_id, self.vocab.pad_id):
                end -= 1
            ids = ids[:end]
            limit = self.max_text_tokens
            if limit is not None and len(ids) > limit:
                start = int(rng.integers(0, len(ids) - limit + 1))
                ids = ids[start : start + limit]
            inputs, targets = span_corruption(
                ids, self.vocab, rng, self.noise_density, self.mean_noise_span_length
            )
            out[PROMPT_IDS_KEY] = inputs
            out[TARGET_IDS_KEY] = targets
        if ex.get("image") is not None:
            image = prepare_image(ex["image"], name="image")
            out["image"] = ex["image"]
            out["target_image"] = image.astype(np.float32)
            if PROMPT_IDS_KEY not in out:
                out["prompt"] = self.prompt_template
            if self.image_mask_ratio > 0:
                out[PATCH_MASK_RATIO_KEY] = self.image_mask_ratio
        if self.return_text:
            out = self._to_text(out)
        return out

    def _to_text(self, out):
        if PROMPT_IDS_KEY not in out:
            out.pop(PATCH_MASK_RATIO_KEY, None)
            return out
        if self._detokenize is None:
            raise ValueError(
                f"Task {self.name!r}: `return_text=True` needs a tokenizer."
            )
        out["prompt"] = self.detokenize(out.pop(PROMPT_IDS_KEY))
        out["target_text"] = self.detokenize(out.pop(TARGET_IDS_KEY))
        out.pop(PATCH_MASK_RATIO_KEY, None)
        return out

    def decode(self, text=None, image=None, meta=None):
        """Generated output as is: `{"text", "image"}`."""
        return {"text": text, "image": image}


OBJECTIVES = {DenoisingTask.name: DenoisingTask}
