"""Tests for `UnifiedIOTokenizer`.

The real T5 `spiece.model` is not on PyPI, so a small SentencePiece model
with T5's special ids (pad 0, EOS 1, unk 2) is trained on the fly (well under
a second).
"""

import io

import keras
import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from keras_uio.models.unified_io.train_sentencepiece import train_sentencepiece
from keras_uio.models.unified_io.unified_io_tokenizer import UnifiedIOTokenizer

PROMPTS = [
    "What does the image describe ?",
    'Which region does the text " a black dog " describe ?',
    "What is the depth map of the image ?",
    'What is the segmentation of " person " ?',
    'Find the human joints in the region " <extra_id_350> <extra_id_453> '
    '<extra_id_593> <extra_id_843> " .',
    "a quokka sitting on the ground , smiling at the camera . 1 2 3",
]


@pytest.fixture(scope="module")
def proto():
    return train_sentencepiece(PROMPTS * 30, vocabulary_size=80)


@pytest.fixture(scope="module")
def tokenizer(proto):
    return UnifiedIOTokenizer(proto=proto)


def test_extra_id_mapping(tokenizer):
    v = tokenizer.vocab
    sp = tokenizer._sentence_piece_spm.vocab_size()
    assert v.sentencepiece_size == sp
    assert v.text_vocab_size == sp + 1100 + 52
    end = sp + 1100
    for n in (0, 1, 99, 100, 350, 1099):
        ids = tokenizer(f"<extra_id_{n}>")
        assert ids.tolist() == [end - 1 - n, 1]
        assert tokenizer.token_to_id(f"<extra_id_{n}>") == end - 1 - n
    assert tokenizer.vocab.location_id(250) == tokenizer.token_to_id("<extra_id_350>")


def test_real_layout_numbers():
    """With 32000 pieces the ids are the original's (33099 - n)."""
    from keras_uio.vocab import Vocabulary

    v = Vocabulary(sentencepiece_size=32000)
    assert v.extra_id(0) == 33099 and v.location_id(250) == 32749


def test_prompt_split_like_hf(tokenizer):
    sp = tokenizer._sentence_piece_spm
    text = 'the region " <extra_id_350>  <extra_id_453> " .'
    want = (
        sp.encode('the region "')
        + [
            tokenizer.token_to_id("<extra_id_350>"),
            tokenizer.token_to_id("<extra_id_453>"),
        ]
        + sp.encode('" .')
        + [1]
    )
    assert tokenizer(text).tolist() == want
    assert tokenizer("a</s>").tolist() == sp.encode("a") + [1, 1]


def test_every_id_detokenizes(tokenizer):
    n = tokenizer.vocabulary_size()
    assert n == tokenizer.vocab.vocab_size
    ids = np.arange(-3, n + 3)
    text = tokenizer.detokenize(ids)
    assert "<extra_id_1099>" in text and "<image_start>" in text
    assert "<image_16383>" in text and "<invalid_-3>" in text
    for i in range(n):
        tokenizer.id_to_token(i)
    graph = tf.data.Dataset.from_tensors(ids).map(tokenizer.detokenize)
    assert next(iter(graph)).numpy().decode() == text


def test_round_trip_and_tf_data_parity(tokenizer):
    eager = [tokenizer(p).tolist() for p in PROMPTS]
    ds = tf.data.Dataset.from_tensor_slices(PROMPTS).map(tokenizer)
    assert [e.numpy().tolist() for e in ds] == eager
    batched = tf.data.Dataset.from_tensor_slices(PROMPTS).batch(3).map(tokenizer)
    got = [r for b in batched for r in b.to_list()]
    assert got == eager
    for ids in eager:
        text = tokenizer.detokenize(ids)
        assert tokenizer(text).tolist() == ids
    assert tokenizer.detokenize(eager[4]).endswith(
        '" <extra_id_350> <extra_id_453> <extra_id_593> <extra_id_843> " .'
    )


def test_sequence_length_and_config(proto):
    tok = UnifiedIOTokenizer(proto=proto, sequence_length=8, add_eos=False)
    out = tok(["a", "What does the image describe ?"])
    assert out.shape == (2, 8) and out[0, -1] == 0
    config = keras.saving.serialize_keras_object(tok)
    restored = keras.saving.deserialize_keras_object(config)
    restored.set_proto(proto)
    assert restored.get_config() == tok.get_config()
    assert restored(["a"]).tolist() == out[:1].tolist()


def test_bad_inputs(tokenizer):
    with pytest.raises(ValueError, match="strings"):
        tokenizer([1, 2])
    with pytest.raises(ValueError, match="pad"):
        m = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(PROMPTS * 5),
            model_writer=m,
            vocab_size=80,
            hard_vocab_limit=False,
            minloglevel=2,
        )
        UnifiedIOTokenizer(proto=m.getvalue())
