"""Tests for `UnifiedIOPreprocessor` (eager and `tf.data`).

Uses a small SentencePiece model trained on the fly (T5 special ids).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_uio.models.unified_io.train_sentencepiece import train_sentencepiece
from keras_uio.models.unified_io.unified_io_preprocessor import UnifiedIOPreprocessor
from keras_uio.models.unified_io.unified_io_tokenizer import UnifiedIOTokenizer

TEXT = [
    "What does the image describe ?",
    'Filling the blank region " <extra_id_350> <extra_id_453> " dog ?',
    "a black dog on the grass",
]


@pytest.fixture(scope="module")
def preprocessor():
    proto = train_sentencepiece(TEXT * 30, vocabulary_size=60)
    tokenizer = UnifiedIOTokenizer(proto=proto, image_vocab_size=256)
    return UnifiedIOPreprocessor(
        tokenizer, encoder_sequence_length=64, decoder_sequence_length=16
    )


def _examples(n=2):
    rng = np.random.default_rng(0)
    return {
        "prompt": [TEXT[1]] * n,
        "image": rng.integers(0, 256, (n, 120, 90, 3)).astype("uint8"),
        "target_text": [TEXT[2]] * n,
        "target_image": rng.integers(0, 256, (n, 60, 80, 3)).astype("uint8"),
        "mask_region": np.array([[10.0, 10.0, 50.0, 60.0]] * n),
    }


def test_outputs_and_shift(preprocessor):
    v = preprocessor.vocab
    codes = np.arange(512).reshape(2, 256) % 256
    x, y, w = preprocessor(
        {
            "prompt": TEXT[:2],
            "image": [np.zeros((40, 30, 3), "uint8"), None],
            "target_text": TEXT[2:] + ["dog"],
            "target_codes": codes,
        }
    )
    assert x["text_encoder_inputs"].shape == (2, 64)
    assert x["image_encoder_inputs"].shape == (2, 384, 384, 3)
    assert x["image_input_masks"][1].sum() == 0
    t = y["text_decoder_targets"]
    np.testing.assert_array_equal(x["text_decoder_inputs"][:, 1:], t[:, :-1])
    assert (x["text_decoder_inputs"][:, 0] == 0).all()
    np.testing.assert_array_equal(x["text_decoder_masks"], t > 0)
    # EOS, then EOS after it, where it fits (the first target fills all 16)
    assert (t == 1).sum(1).tolist() == [1, 2]
    ids = y["image_decoder_targets"]
    np.testing.assert_array_equal(ids, codes + v.image_offset)
    assert (x["image_decoder_inputs"][:, 0] == v.image_start_id).all()
    np.testing.assert_array_equal(x["image_decoder_inputs"][:, 1:], ids[:, :-1])
    assert w["text_decoder_targets"] is x["text_decoder_masks"]


def test_text_answers_teach_eos_after_eos_as_score_reads_it(preprocessor):
    from types import SimpleNamespace

    from keras_uio.models.unified_io import unified_io_scoring

    backbone = SimpleNamespace(image_start_id=preprocessor.vocab.image_start_id)
    answers = ["dog", "a black dog"]
    x, y, w = preprocessor({"prompt": [TEXT[0]] * 2, "target_text": answers})
    for row, answer in enumerate(answers):
        option = np.asarray(preprocessor.tokenizer(answer))[None]  # EOS, as scored
        (inputs, masks, _, _), targets, weights = (
            unified_io_scoring._text_option_targets(backbone, option)
        )
        n = targets.shape[1]
        np.testing.assert_array_equal(y["text_decoder_targets"][row, :n], targets[0])
        np.testing.assert_array_equal(x["text_decoder_inputs"][row, :n], inputs[0])
        np.testing.assert_array_equal(x["text_decoder_masks"][row, :n], masks[0])
        np.testing.assert_array_equal(w["text_decoder_targets"][row, :n], weights[0])
        assert not w["text_decoder_targets"][row, n:].any()


def test_eos_once_for_empty_targets_and_none_past_the_end(preprocessor):
    truncating = UnifiedIOPreprocessor(
        preprocessor.tokenizer,
        encoder_sequence_length=64,
        decoder_sequence_length=16,
        truncate=True,
    )
    full = " ".join(["dog"] * 40)
    examples = {"prompt": [TEXT[0]] * 2, "target_text": ["", full]}
    _, y, _ = truncating(examples)
    t = y["text_decoder_targets"]
    assert t[0].tolist() == [1] + [0] * 15  # image tasks: EOS alone
    assert (t[1] > 0).all() and t[1, -1] == 1 and (t[1, :-1] != 1).all()
    ds = tf.data.Dataset.from_tensor_slices(examples).batch(2).map(truncating)
    _, gy, _ = next(iter(ds))
    np.testing.assert_array_equal(gy["text_decoder_targets"].numpy(), t)
    _, gy, _ = next(
        iter(
            tf.data.Dataset.from_tensor_slices(
                {"prompt": [TEXT[0]], "target_text": ["dog"]}
            )
            .batch(1)
            .map(truncating)
        )
    )
    _, ey, _ = truncating({"prompt": [TEXT[0]], "target_text": ["dog"]})
    np.testing.assert_array_equal(
        gy["text_decoder_targets"].numpy(), ey["text_decoder_targets"]
    )
    assert (ey["text_decoder_targets"] == 1).sum() == 2


def test_tf_data_matches_eager(preprocessor):
    ex = _examples()
    eager_x, eager_y, _ = preprocessor(ex)
    assert eager_x["image_decoder_targets"].shape == (2, 256, 256, 3)
    assert eager_x["image_target_masks"].shape == (2, 256)
    ds = tf.data.Dataset.from_tensor_slices(ex).map(preprocessor).batch(2)
    gx, gy, _ = next(iter(ds))
    assert set(gx) == set(eager_x)
    for k in eager_x:
        np.testing.assert_allclose(gx[k].numpy(), eager_x[k], err_msg=k)
    np.testing.assert_array_equal(
        gy["text_decoder_targets"].numpy(), eager_y["text_decoder_targets"]
    )
    # batched inside the pipeline too
    ds = tf.data.Dataset.from_tensor_slices(ex).batch(2).map(preprocessor)
    bx, _, _ = next(iter(ds))
    np.testing.assert_array_equal(
        bx["image_input_masks"].numpy(), eager_x["image_input_masks"]
    )


def test_too_long_text(preprocessor):
    long = " ".join(["dog"] * 80)
    with pytest.raises(ValueError, match="truncate=True"):
        preprocessor({"prompt": [long]})
    config = preprocessor.get_config()
    cut = UnifiedIOPreprocessor.from_config({**config, "truncate": True})
    cut.tokenizer.set_proto(preprocessor.tokenizer.proto)
    x, _, _ = cut({"prompt": [long]})
    assert x["text_encoder_inputs"][0, -1] == 1
    ds = tf.data.Dataset.from_tensor_slices({"prompt": [long]}).map(preprocessor)
    with pytest.raises(tf.errors.InvalidArgumentError, match="truncate"):
        next(iter(ds))
    ds = tf.data.Dataset.from_tensor_slices({"prompt": [long]}).map(cut)
    np.testing.assert_array_equal(
        next(iter(ds))[0]["text_encoder_inputs"].numpy(),
        x["text_encoder_inputs"][0],
    )


def test_config_round_trip(preprocessor):
    config = keras.saving.serialize_keras_object(preprocessor)
    restored = keras.saving.deserialize_keras_object(config)
    assert restored.encoder_sequence_length == 64
    assert restored.decoder_sequence_length == 16
    assert restored.image_size == (384, 384)
    assert restored.target_image_size == (256, 256)
    assert restored.get_config() == preprocessor.get_config()


def test_generate_pre_and_post(preprocessor):
    x = preprocessor.generate_preprocess({"prompt": TEXT[0]})
    assert x["text_encoder_inputs"].shape == (64,)
    ids = preprocessor.tokenizer(TEXT[2]).tolist() + [0, 0, 5]
    assert preprocessor.generate_postprocess(np.array(ids)) == TEXT[2]


def test_bad_examples(preprocessor):
    with pytest.raises(ValueError, match="Unknown example keys"):
        preprocessor({"prompt": ["a"], "images": [None]})
    with pytest.raises(ValueError, match="one entry per prompt"):
        preprocessor({"prompt": ["a", "b"], "target_text": ["a"]})
    with pytest.raises(ValueError, match="target_codes"):
        preprocessor({"prompt": ["a"], "target_codes": [[300] * 256]})
