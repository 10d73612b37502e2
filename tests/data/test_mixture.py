"""`keras_uio.data.Mixture`: rates, determinism, streaming, batches."""

import collections
import doctest
import itertools

import numpy as np
import pytest

import keras_uio.data.mixture as mixture_module
from keras_uio.data import DEFAULT_TASK_GROUPS
from keras_uio.data import GROUPS
from keras_uio.data import PAPER_GROUP_RATES
from keras_uio.data import DenoisingTask
from keras_uio.data import Mixture
from keras_uio.data import MixtureEntry
from keras_uio.data import select_patches
from keras_uio.tasks import TASKS


class EchoTask:
    """A minimal duck-typed task: cheap to encode, any group."""

    output_mode = "text"

    def __init__(self, name):
        self.name = name

    def encode_example(self, example):
        return {"prompt": f"p {example}", "target_text": "t"}


def counting_factory(limit=None):
    """An infinite (or `limit`-long) generator function that counts pulls."""
    state = {"pulled": 0, "calls": 0}

    def factory():
        state["calls"] += 1

        def gen():
            for i in itertools.count():
                if limit is not None and i >= limit:
                    return
                state["pulled"] += 1
                yield i

        return gen()

    return factory, state


QA = {"question": "what color ?", "context": "red circle", "answer": "red"}


def test_paper_group_rates():
    assert len(GROUPS) == 8 and set(PAPER_GROUP_RATES) == set(GROUPS)
    assert sum(PAPER_GROUP_RATES.values()) == pytest.approx(1.0)
    assert PAPER_GROUP_RATES["image_synthesis"] == 3 / 16
    assert PAPER_GROUP_RATES["dense_labelling"] == 1 / 16
    others = set(GROUPS) - {"image_synthesis", "dense_labelling"}
    assert all(PAPER_GROUP_RATES[g] == 1 / 8 for g in others)
    # Every built-in task has a default group, and it is a paper group.
    assert set(TASKS) | {"denoising"} == set(DEFAULT_TASK_GROUPS)
    assert set(DEFAULT_TASK_GROUPS.values()) == set(GROUPS)


def test_rates_from_task_names():
    entries = [(name, [None]) for name in sorted(DEFAULT_TASK_GROUPS)]
    m = Mixture(entries)
    assert sum(m.rates.values()) == pytest.approx(1.0)
    for g in GROUPS:
        members = [n for n, gg in DEFAULT_TASK_GROUPS.items() if gg == g]
        share = sum(m.rates[n] for n in members)
        assert share == pytest.approx(PAPER_GROUP_RATES[g])
        # Equal sizes -> equal rates inside the group.
        assert np.allclose([m.rates[n] for n in members],
                           PAPER_GROUP_RATES[g] / len(members))


def test_frequencies_over_10k_draws_match_rates():
    entries = []
    for g in GROUPS:
        entries.append(MixtureEntry(EchoTask(f"{g}_a"), factory_of(g),
                                    size=100, group=g))
        entries.append(MixtureEntry(EchoTask(f"{g}_b"), list(range(7)),
                                    size=900, group=g))
    m = Mixture(entries, seed=3)
    # size ** (1/2): 10 vs 30 -> 1/4 and 3/4 of the group's share.
    for g in GROUPS:
        assert m.rates[f"{g}_a"] == pytest.approx(PAPER_GROUP_RATES[g] / 4)
        assert m.rates[f"{g}_b"] == pytest.approx(
            PAPER_GROUP_RATES[g] * 3 / 4)
    n = 10_000
    counts = collections.Counter(
        ex["source"] for ex in itertools.islice(iter(m), n))
    for name, rate in m.rates.items():
        assert abs(counts[name] / n - rate) < 0.02, (name, counts[name])
    groups = collections.Counter()
    for name, c in counts.items():
        groups[name.rsplit("_", 1)[0]] += c
    for g in GROUPS:
        assert abs(groups[g] / n - PAPER_GROUP_RATES[g]) < 0.02
    # `sample_entries` gives the same draws without reading data.
    tags = [ex["source"] for ex in itertools.islice(iter(m), 500)]
    assert m.sample_entries(500) == tags


def factory_of(tag):
    def factory():
        return (f"{tag}{i}" for i in itertools.count())
    return factory


def test_size_weighting_and_temperature():
    data = {"s": [QA] * 100, "m": [QA] * 400, "l": [QA] * 1600}
    entries = [MixtureEntry("text_qa", d, name=k) for k, d in data.items()]
    m = Mixture(entries)  # sizes from len(), T = 2
    assert [m.rates[k] for k in "sml"] == pytest.approx([1 / 7, 2 / 7, 4 / 7])
    m1 = Mixture(entries, temperature=1.0)
    assert [m1.rates[k] for k in "sml"] == pytest.approx(
        [1 / 21, 4 / 21, 16 / 21])
    counts = collections.Counter(m.sample_entries(10_000))
    for k in "sml":
        assert abs(counts[k] / 10_000 - m.rates[k]) < 0.02
    # Explicit rates inside a group, renormalised.
    explicit = Mixture([
        MixtureEntry("text_qa", [QA], rate=3.0, name="a"),
        MixtureEntry("text_qa", [QA], rate=1.0, name="b"),
        MixtureEntry("captioning", [None], name="c"),
    ])
    assert explicit.rates == pytest.approx({"a": 0.375, "b": 0.125, "c": 0.5})


def test_user_group_rates_and_tf_dataset_size():
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(
        {"question": ["q"] * 16, "context": ["c"] * 16, "answer": ["a"] * 16})
    m = Mixture(
        [MixtureEntry("text_qa", ds, group="mine"),
         MixtureEntry("text_qa", [QA] * 64, group="mine"),
         MixtureEntry(EchoTask("echo"), [1], group="other")],
        group_rates={"mine": 3.0, "other": 1.0, "unused": 5.0},
    )
    assert m.entries[0].size == 16
    assert m.group_shares == pytest.approx({"mine": 0.75, "other": 0.25})
    assert m.rates["text_qa"] == pytest.approx(0.75 / 3)
    examples = [ex for ex in itertools.islice(iter(m), 40)
                if ex["source"] == "text_qa"]
    assert examples and examples[0]["prompt"] == "question: q context: c"


def test_determinism_for_a_seed():
    def stream(seed, epoch=0, n=200):
        m = Mixture([
            MixtureEntry(DenoisingTask(), [{"text_ids": list(range(5, 45))}],
                         group="a"),
            MixtureEntry(EchoTask("echo"), list(range(3)), group="b"),
        ], group_rates={"a": 1, "b": 1}, seed=seed)
        out = []
        for ex in itertools.islice(m.examples(epoch), n):
            out.append((ex["source"], ex["prompt"] if "prompt" in ex
                        else tuple(ex["prompt_ids"].tolist())))
        return out

    assert stream(0) == stream(0)
    assert stream(0) != stream(1)
    assert stream(0, epoch=1) != stream(0, epoch=0)
    # The denoising draws themselves differ across seeds, too.
    corrupt = lambda s: [p for src, p in s if src == "denoising"]  # noqa
    assert corrupt(stream(0)) != corrupt(stream(1))


def test_streaming_reads_one_element_per_draw():
    fa, sa = counting_factory()
    fb, sb = counting_factory(limit=3)  # re-iterated when exhausted
    m = Mixture([MixtureEntry(EchoTask("a"), fa, group="g", rate=1),
                 MixtureEntry(EchoTask("b"), fb, group="g", rate=2)],
                group_rates={"g": 1})
    seen = collections.Counter()
    for ex in itertools.islice(iter(m), 300):
        seen[ex["source"]] += 1
        # Nothing is read ahead: pulls == draws, at every step.
        assert sa["pulled"] == seen["a"] and sb["pulled"] == seen["b"]
    assert sa["calls"] == 1
    assert sb["calls"] == -(-seen["b"] // 3)  # ceil: one pass per 3 draws
    # The prompts cycle through the finite dataset.
    prompts = [ex["prompt"] for ex in itertools.islice(iter(m), 50)
               if ex["source"] == "b"]
    assert prompts[:4] == ["p 0", "p 1", "p 2", "p 0"]


def test_one_shot_iterator_and_empty_dataset_errors():
    one_shot = iter([1, 2])
    m = Mixture([MixtureEntry(EchoTask("a"), one_shot, group="g")],
                group_rates={"g": 1})
    it = iter(m)
    next(it), next(it)
    with pytest.raises(ValueError, match="one-shot"):
        next(it)
    with pytest.raises(ValueError, match="'a': its dataset is empty"):
        Mixture([MixtureEntry(EchoTask("a"), [], group="g")],
                group_rates={"g": 1})
    m = Mixture([MixtureEntry(EchoTask("a"), lambda: iter(()), group="g")],
                group_rates={"g": 1})
    with pytest.raises(ValueError, match="'a': its dataset is empty"):
        next(iter(m))


def test_bad_element_names_task_and_field():
    bad = [QA, {"question": "q", "answer": "a"}]
    m = Mixture([("text_qa", bad, None, None, None, "squad")])
    it = iter(m)
    next(it)
    with pytest.raises(ValueError) as info:
        next(it)
    msg = str(info.value)
    assert "'text_qa'" in msg and "context" in msg and "'squad'" in msg
    assert "element 1" in msg
    m = Mixture([("captioning", [{"image": np.zeros((4,)), "caption": "x"}])])
    with pytest.raises(ValueError, match=r"(?s)'captioning'.*`image`"):
        next(iter(m))


def test_configuration_errors():
    with pytest.raises(ValueError, match="no default group"):
        Mixture([(EchoTask("mine"), [1])])
    with pytest.raises(ValueError, match="not in `group_rates`"):
        Mixture([MixtureEntry("text_qa", [QA], group="nope")])
    with pytest.raises(ValueError, match="mixes entries"):
        Mixture([MixtureEntry("text_qa", [QA], rate=1.0),
                 MixtureEntry("text_qa", [QA])])
    with pytest.raises(ValueError, match="no known size"):
        Mixture([MixtureEntry("text_qa", [QA]),
                 MixtureEntry("text_qa", factory_of("x"))])
    with pytest.raises(ValueError, match="Unknown task"):
        Mixture([("no_such_task", [QA])])
    with pytest.raises(ValueError, match="temperature"):
        Mixture([("text_qa", [QA])], temperature=0)


def test_select_patches():
    rng = np.random.default_rng(0)
    masks = np.ones((3, 576), np.int32)
    masks[2, 200:] = 0  # a padded image: 200 visible patches
    indices, kept = select_patches(masks, 256, rng)
    assert indices.shape == kept.shape == (3, 256)
    assert kept.sum(axis=1).tolist() == [256, 256, 200]
    for index, keep, mask in zip(indices, kept, masks):
        chosen = index[keep > 0]
        assert (np.diff(chosen) > 0).all()  # ascending, no repeats
        assert mask[chosen].all()  # only visible patches
    np.testing.assert_array_equal(indices[2, :200], np.arange(200))
    assert not np.array_equal(indices[0], indices[1])  # random per image
    one_indices, one_kept = select_patches(masks[0], 10, rng)
    assert one_indices.shape == one_kept.shape == (10,)
    with pytest.raises(ValueError, match="more than the image has"):
        select_patches(masks, 577, rng)
    with pytest.raises(ValueError, match="positive int"):
        select_patches(masks, 0, rng)


@pytest.fixture(scope="module")
def preprocessor(tiny_proto):
    from keras_uio import UnifiedIOPreprocessor
    from keras_uio import UnifiedIOTokenizer

    tokenizer = UnifiedIOTokenizer(proto=tiny_proto, image_vocab_size=256)
    return UnifiedIOPreprocessor(
        tokenizer, encoder_sequence_length=48, decoder_sequence_length=16)


def _mixed(preprocessor, **kwargs):
    image = np.full((12, 20, 3), 128, np.uint8)
    return Mixture([
        MixtureEntry("text_qa", [QA], group="a"),
        MixtureEntry("captioning", [{"image": image, "caption": "a red circle"}],
                     group="b"),
        MixtureEntry(DenoisingTask(preprocessor.tokenizer.vocab,
                                   modality_drop_rate=0.0),
                     [{"text_ids": list(range(3, 30)), "image": image}],
                     group="c"),
    ], group_rates={"a": 1, "b": 1, "c": 1}, seed=1, **kwargs)


def test_batches_and_tf_dataset(preprocessor):
    import tensorflow as tf

    m = _mixed(preprocessor, num_image_patches=256)
    assert m.image_targets()
    x, y, sw = next(m.batches(preprocessor, batch_size=6))
    assert x["text_encoder_inputs"].shape == (6, 48)
    assert x["image_encoder_inputs"].shape == (6, 384, 384, 3)
    assert x["image_decoder_targets"].shape == (6, 256, 256, 3)
    assert y["text_decoder_targets"].shape == (6, 16)
    np.testing.assert_array_equal(sw["text_decoder_targets"],
                                  x["text_decoder_masks"])
    sources = m.sample_entries(6)
    assert set(sources) == {"text_qa", "captioning", "denoising"}
    # The kept patches, compacted: indices and a mask of 256 slots.
    assert x["image_input_masks"].shape == x["image_input_indices"].shape == (6, 256)
    visible = x["image_input_masks"].sum(axis=1)
    image = np.full((12, 20, 3), 128, np.uint8)
    full = int(preprocessor({"prompt": "x", "image": image})[0][
        "image_input_masks"].sum())
    assert full > 256
    for i, src in enumerate(sources):
        if src == "text_qa":
            assert visible[i] == 0 and not x["image_target_masks"][i].any()
        elif src == "captioning":
            # 12x20 image: 24 x 14 visible patches, subset to <= 256.
            assert visible[i] == 256
            assert not x["image_target_masks"][i].any()
        else:  # denoising: 75% hidden, then <= 256 kept.
            assert visible[i] == full - round(0.75 * full)
            assert x["image_target_masks"][i].any()
            vocab = preprocessor.tokenizer.vocab
            assert vocab.is_sentinel(x["text_encoder_inputs"][i]).any()
    ds = m.as_tf_dataset(preprocessor, batch_size=3)
    spec = ds.element_spec
    assert spec[0]["image_input_masks"].shape == (3, 256)
    assert spec[0]["image_input_indices"].shape == (3, 256)
    assert spec[1]["text_decoder_targets"].dtype == tf.int32
    first = [b for b in ds.take(2)]
    assert len(first) == 2
    # Deterministic: the tf.data path gives the batches() batches.
    ref = next(m.batches(preprocessor, batch_size=3))
    np.testing.assert_array_equal(
        first[0][0]["text_encoder_inputs"].numpy(),
        ref[0]["text_encoder_inputs"])


def test_text_only_mixture_has_no_image_targets(preprocessor):
    m = Mixture([("text_qa", [QA])])
    assert not m.image_targets()
    x, y, _ = next(m.batches(preprocessor, batch_size=2))
    assert "image_decoder_targets" not in x
    assert x["text_decoder_inputs"][0, 0] == 0


def test_docstring_examples():
    result = doctest.testmod(mixture_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_bad_example_error_names_the_example_not_the_pixels(preprocessor):
    image = np.zeros((32, 32, 3), "uint8")
    long_caption = {"image": image, "caption": "red " * 200}
    m = Mixture([("captioning", [long_caption])], seed=0,
                tokenizer=preprocessor.tokenizer)
    with pytest.raises(ValueError) as info:
        next(m.batches(preprocessor, batch_size=1))
    message = str(info.value)
    assert "task 'captioning'" in message and "longer than" in message
    assert "Arguments received" not in message and "array(" not in message
