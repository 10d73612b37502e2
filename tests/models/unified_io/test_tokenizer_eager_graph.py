"""Eager and `tf.data` tokenisation agree on any text.

The tf.data path once set special tokens apart with a marker string
(`"\\x1f\\x1e\\x1f"`), so text containing it was split there too; and it
stripped only ASCII whitespace around special tokens where the eager path
strips all of Python's `\\s`. Uses the bundled preset's SentencePiece model.
"""

import glob
import os

import pytest
import tensorflow as tf

from keras_uio.models.unified_io.unified_io_preset_loading import bundled_preset_path
from keras_uio.models.unified_io.unified_io_tokenizer import UnifiedIOTokenizer

TEXTS = [
    "a\x1f\x1e\x1fb",
    "what color\x1f\x1e\x1fis it ?",
    "\x1f\x1e\x1f",
    "x\x1f\x1e\x1f<extra_id_3>\x1f\x1e\x1fy",
    "a\x01b",
    "\x010",
    "\x011",
    "\x01<extra_id_7>\x01",
    "a\x01\x011b",
    "\x00",
    "a\x00b <extra_id_2>",
    "a\xa0<extra_id_3>\u3000b",
    "red\x0b<extra_id_5>\x85blue",
    "x\u2028<pad>\u2029y",
    "\x1c</s>\x1d",
    "\u200b<unk>\u200b",
    "",
    " ",
    "<extra_id_3>",
    "<extra_id_3><extra_id_4>",
    "a  b",
    'region " <extra_id_350>  <extra_id_453> " .',
]


@pytest.fixture(scope="module")
def tokenizer():
    folder = os.path.join(bundled_preset_path("uio_tiny_easyvqa"), "assets")
    (proto,) = glob.glob(os.path.join(folder, "tokenizer", "*.spm"))
    return UnifiedIOTokenizer(proto=proto)


def graph_ids(tokenizer, texts):
    ds = tf.data.Dataset.from_tensor_slices(texts).map(tokenizer)
    return [row.numpy().tolist() for row in ds]


def test_separator_text_tokenizes_alike(tokenizer):
    eager = [tokenizer(t).tolist() for t in TEXTS]
    assert graph_ids(tokenizer, TEXTS) == eager
    batched = tf.data.Dataset.from_tensor_slices(TEXTS).batch(5).map(tokenizer)
    assert [r for b in batched for r in b.to_list()] == eager


def test_separator_is_ordinary_text(tokenizer):
    """The old marker is not a split point: as eager, it is SentencePiece's."""
    sp = tokenizer._sentence_piece_spm
    text = "a\x1f\x1e\x1fb"
    assert tokenizer(text).tolist() == sp.encode(text) + [1]
    assert graph_ids(tokenizer, [text])[0] == sp.encode(text) + [1]


def test_unicode_whitespace_around_special_tokens_is_dropped(tokenizer):
    extra = tokenizer.token_to_id("<extra_id_3>")
    for space in ("\u3000", "\xa0", "\x1f", "\x0b"):
        text = f"{space}<extra_id_3>{space}"
        assert tokenizer(text).tolist() == [extra, 1]
        assert graph_ids(tokenizer, [text])[0] == [extra, 1]
