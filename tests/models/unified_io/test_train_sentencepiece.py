"""`train_sentencepiece`: T5's special ids, usable by `UnifiedIOTokenizer`."""

import pytest
import sentencepiece as spm

from keras_uio import UnifiedIOTokenizer
from keras_uio import train_sentencepiece

SENTENCES = ["a red circle", "a blue square", "what color is the shape ?"]


def test_t5_special_ids_and_round_trip():
    proto = train_sentencepiece(SENTENCES * 30, vocabulary_size=40)
    processor = spm.SentencePieceProcessor(model_proto=proto)
    assert (processor.pad_id(), processor.eos_id(), processor.unk_id()) == (0, 1, 2)
    assert processor.bos_id() == -1
    assert 3 < processor.vocab_size() <= 40
    tokenizer = UnifiedIOTokenizer(proto=proto)
    ids = tokenizer("what color is the circle ?")
    assert int(ids[-1]) == 1  # EOS
    assert tokenizer.detokenize(ids) == "what color is the circle ?"


def test_word_model_keeps_whole_words():
    proto = train_sentencepiece(SENTENCES * 30, 20, model_type="word")
    processor = spm.SentencePieceProcessor(model_proto=proto)
    assert processor.encode("a blue circle", out_type=str) == ["▁a", "▁blue", "▁circle"]


def test_options_reach_sentencepiece():
    def pieces(**options):
        proto = train_sentencepiece(SENTENCES * 30, 40, **options)
        processor = spm.SentencePieceProcessor(model_proto=proto)
        return processor.encode("<box>", out_type=str)

    assert pieces(user_defined_symbols=["<box>"]) == ["▁", "<box>"]
    assert "<box>" not in pieces()


@pytest.mark.parametrize(
    "args, message",
    [
        (("a red circle", 30), "list of strings"),
        (([1, 2], 30), "list of strings"),
        ((["", " "], 30), "no text"),
        ((SENTENCES, 3), "at least 4"),
        ((SENTENCES, 30.0), "must be an int"),
    ],
)
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        train_sentencepiece(*args)
    with pytest.raises(ValueError, match="unknown `model_type` 'words'"):
        train_sentencepiece(SENTENCES, 30, model_type="words")
