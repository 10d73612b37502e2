"""Pre-training objectives: span corruption, patch masking, modality drop."""

import doctest

import numpy as np
import pytest

import keras_uio.data.objectives as objectives_module
from keras_uio.data import DenoisingTask
from keras_uio.data import drop_modality
from keras_uio.data import hide_patches
from keras_uio.data import preprocess_examples
from keras_uio.data import random_spans_noise_mask
from keras_uio.data import span_corruption
from keras_uio.data import undo_span_corruption
from keras_uio.vocab import Vocabulary

VOCAB = Vocabulary()


def _spans(mask):
    """Lengths of the runs of True in a bool mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(int)
    d = np.diff(padded)
    return np.flatnonzero(d == -1) - np.flatnonzero(d == 1)


def test_span_corruption_statistics():
    rng = np.random.default_rng(0)
    noised = total = 0
    span_lengths = []
    for _ in range(1000):
        length = int(rng.integers(20, 300))
        ids = rng.integers(3, 32000, length)
        inputs, targets = span_corruption(ids, VOCAB, rng)
        sent_in = VOCAB.is_sentinel(inputs)
        sent_tg = VOCAB.is_sentinel(targets)
        k = int(sent_in.sum())
        # Sentinels <extra_id_0>, <extra_id_1>, ... in order, same in both.
        expected = [VOCAB.sentinel_id(i) for i in range(k)]
        assert inputs[sent_in].tolist() == expected
        assert targets[sent_tg].tolist() == expected
        assert targets[0] == VOCAB.sentinel_id(0)
        # Input + target reconstruct the original.
        np.testing.assert_array_equal(
            undo_span_corruption(inputs, targets, VOCAB), ids)
        noised += len(targets) - k
        total += length
        # Span lengths: between consecutive sentinels of the target.
        starts = np.flatnonzero(sent_tg)
        span_lengths += np.diff(np.append(starts, len(targets))).tolist()
    span_lengths = np.asarray(span_lengths) - 1
    assert abs(noised / total - 0.15) < 0.005
    assert abs(span_lengths.mean() - 3.0) < 0.15
    assert span_lengths.min() >= 1 and span_lengths.std() > 0.5  # random


def test_noise_mask_density_and_spans():
    rng = np.random.default_rng(1)
    masks = [random_spans_noise_mask(100, rng) for _ in range(500)]
    assert all(m.sum() == 15 for m in masks)
    assert all(len(_spans(m)) == 5 for m in masks)
    # Not always the same positions.
    assert len({m.tobytes() for m in masks}) > 400
    m = random_spans_noise_mask(50, rng, noise_density=0.5,
                                mean_noise_span_length=5)
    assert m.sum() == 25 and len(_spans(m)) == 5
    with pytest.raises(ValueError, match="noise_density"):
        random_spans_noise_mask(10, rng, noise_density=1.5)


def test_span_corruption_seeded_and_edge_cases():
    ids = np.arange(3, 103)
    a = span_corruption(ids, VOCAB, np.random.default_rng(5))
    b = span_corruption(ids, VOCAB, np.random.default_rng(5))
    c = span_corruption(ids, VOCAB, np.random.default_rng(6))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    # Trailing EOS / padding is removed before corrupting.
    inputs, targets = span_corruption(list(ids) + [1, 0, 0], VOCAB, 0)
    np.testing.assert_array_equal(
        undo_span_corruption(inputs, targets, VOCAB), ids)
    one, empty = span_corruption([7], VOCAB, 0)
    assert one.tolist() == [7] and empty.size == 0
    with pytest.raises(ValueError, match="token_ids"):
        span_corruption(np.zeros((2, 3), int), VOCAB, 0)
    with pytest.raises(ValueError, match="out of order"):
        s0, s1 = VOCAB.sentinel_id(0), VOCAB.sentinel_id(1)
        undo_span_corruption([5, s0], [s1, 6], VOCAB)


def test_hide_patches_hides_75_percent():
    rng = np.random.default_rng(0)
    masks = np.ones((64, 576), np.int32)
    masks[32:, 360:] = 0  # padded images: 360 visible patches
    out = hide_patches(masks, 0.75, rng)
    assert (out[:32].sum(axis=1) == 144).all()  # 432 of 576 hidden
    assert (out[32:].sum(axis=1) == 90).all()  # 75% of the visible 360
    assert not out[32:, 360:].any() and (out <= masks).all()
    # The hidden patches are spread uniformly.
    freq = out[:32].mean(axis=0)
    assert abs(freq.mean() - 0.25) < 1e-6 and freq.std() < 0.1
    assert hide_patches(np.ones(576, np.int32), 0.0, rng).sum() == 576
    np.testing.assert_array_equal(
        hide_patches(masks, 0.75, 3), hide_patches(masks, 0.75, 3))


def test_modality_drop_rate():
    rng = np.random.default_rng(0)
    dropped = [drop_modality({"text": "a", "image": 1}, rng)[1]
               for _ in range(10_000)]
    rate = np.mean([d is not None for d in dropped])
    assert abs(rate - 0.1) < 0.01
    n_text = dropped.count("text")
    assert abs(n_text / (n_text + dropped.count("image")) - 0.5) < 0.06
    ex, d = drop_modality({"text": "a"}, rng, rate=1.0)
    assert d is None and ex == {"text": "a"}


@pytest.fixture(scope="module")
def tokenizer(tiny_proto):
    from keras_uio import UnifiedIOTokenizer

    return UnifiedIOTokenizer(proto=tiny_proto, image_vocab_size=256)


def test_denoising_task_text(tokenizer):
    task = DenoisingTask(tokenizer=tokenizer, seed=0)
    text = "a blue triangle on a white background what color is the shape"
    ex = task.encode_example({"text": text})
    assert sorted(ex) == ["prompt_ids", "target_text_ids"]
    vocab = tokenizer.vocab
    assert vocab.is_sentinel(ex["prompt_ids"]).any()
    ids = np.asarray(tokenizer(text))
    np.testing.assert_array_equal(
        undo_span_corruption(ex["prompt_ids"], ex["target_text_ids"], vocab),
        ids[:-1])  # without EOS
    # Seeded: the same `rng` gives the same corruption.
    e1 = task.encode_example({"text": text}, rng=np.random.default_rng(4))
    e2 = task.encode_example({"text": text}, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(e1["prompt_ids"], e2["prompt_ids"])
    # `max_text_tokens` crops a random window before corrupting.
    crop = DenoisingTask(tokenizer=tokenizer, max_text_tokens=10, seed=0)
    ex = crop.encode_example({"text": text})
    assert len(ex["prompt_ids"]) + len(ex["target_text_ids"]) == 10 + 2 * int(
        vocab.is_sentinel(ex["prompt_ids"]).sum())
    # Strings for the plain preprocessor.
    as_text = DenoisingTask(tokenizer=tokenizer, return_text=True, seed=0)
    ex = as_text.encode_example({"text": text})
    assert "<extra_id_0>" in ex["prompt"]
    assert ex["target_text"].startswith("<extra_id_0>")


def test_denoising_task_image_and_modality_drop():
    image = np.zeros((8, 8, 3), np.uint8)
    task = DenoisingTask(seed=0)
    ex = task.encode_example({"image": image})
    assert ex["prompt"] == "What is the complete image ?"
    assert ex["patch_mask_ratio"] == 0.75
    assert ex["target_image"].shape == (8, 8, 3)
    rng = np.random.default_rng(0)
    kinds = []
    for _ in range(2000):
        ex = task.encode_example({"text_ids": list(range(3, 40)),
                                  "image": image}, rng=rng)
        kinds.append(("prompt_ids" in ex, "image" in ex))
    both = kinds.count((True, True)) / len(kinds)
    assert abs(both - 0.9) < 0.025
    assert kinds.count((False, True)) > 0 and kinds.count((True, False)) > 0


def test_denoising_task_errors():
    task = DenoisingTask()
    with pytest.raises(ValueError, match=r"'denoising'.*`image`"):
        task.encode_example({})
    with pytest.raises(ValueError, match=r"'denoising'.*caption"):
        task.encode_example({"caption": "x"})
    with pytest.raises(ValueError, match=r"tokenizer"):
        task.encode_example({"text": "no tokenizer here"})


def test_preprocess_denoising_examples(tokenizer):
    from keras_uio import UnifiedIOPreprocessor

    pre = UnifiedIOPreprocessor(tokenizer, encoder_sequence_length=48,
                                decoder_sequence_length=24)
    task = DenoisingTask(tokenizer=tokenizer, modality_drop_rate=0.0)
    rng = np.random.default_rng(0)
    image = np.full((32, 32, 3), 200, np.uint8)
    ids = list(range(3, 40))
    examples = [task.encode_example({"text_ids": ids, "image": image}, rng),
                task.encode_example({"image": image}, rng)]
    x, y, sw = preprocess_examples(examples, pre, rng=rng)
    assert x["image_input_masks"].sum(axis=1).tolist() == [144, 144]
    assert x["image_target_masks"].sum(axis=1).tolist() == [256, 256]
    p, t = examples[0]["prompt_ids"], examples[0]["target_text_ids"]
    np.testing.assert_array_equal(x["text_encoder_inputs"][0, :len(p) + 1],
                                  list(p) + [1])
    assert not x["text_encoder_inputs"][0, len(p) + 1:].any()
    np.testing.assert_array_equal(y["text_decoder_targets"][0, :len(t) + 1],
                                  list(t) + [1])
    np.testing.assert_array_equal(x["text_decoder_inputs"][0, 1:len(t) + 2],
                                  list(t) + [1])
    assert y["text_decoder_targets"][1].tolist()[:2] == [1, 0]  # EOS only
    # Too long for the decoder without `truncate`: a clear error.
    long_ex = task.encode_example({"text_ids": list(range(3, 300))}, rng)
    with pytest.raises(ValueError, match="`prompt_ids` has"):
        preprocess_examples([long_ex], pre)


def test_docstring_examples():
    result = doctest.testmod(objectives_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
