"""BLEU and CIDEr-D through `pycocoevalcap`, on captions whose scores
follow by reasoning."""

import math

import pytest

from keras_uio.evaluation import caption_scorers as cm

REFS = {
    1: ["a black dog runs on the grass"],
    2: ["two red buses parked near a station"],
}


def test_perfect_captions():
    scores, notes = cm.caption_metrics(
        REFS, {k: v[0] for k, v in REFS.items()}, use_java=False
    )
    for n in range(1, 5):
        assert scores[f"bleu_{n}"] == pytest.approx(1.0, abs=1e-6)
    # Every n-gram's tf-idf vector matches its reference exactly (cosine
    # 1, no length penalty) and CIDEr-D scales by 10.
    assert scores["cider_d"] == pytest.approx(10.0)
    assert "simple_tokenize" in notes[0]
    assert "meteor" not in scores


def test_brevity_penalty():
    # Every n-gram of the 4-word candidate is in the 5-word reference:
    # BLEU-n = brevity penalty exp(1 - 5 / 4).
    scores, _ = cm.caption_metrics(
        {1: ["the cat sat on mats"]}, {1: "the cat sat on"}, use_java=False
    )
    assert scores["bleu_4"] == pytest.approx(math.exp(1 - 5 / 4), abs=1e-6)
    assert scores["bleu_1"] == pytest.approx(math.exp(1 - 5 / 4), abs=1e-6)


def test_unrelated_captions_score_zero():
    swapped = {1: REFS[2][0], 2: REFS[1][0]}
    # "a" is shared, so BLEU-1 is small but not 0; no longer n-gram is.
    scores, _ = cm.caption_metrics(REFS, swapped, use_java=False)
    assert scores["cider_d"] == pytest.approx(0.0, abs=1e-9)
    assert scores["bleu_4"] == pytest.approx(0.0, abs=1e-4)


def test_simple_tokenize_drops_case_and_punctuation():
    scores, _ = cm.caption_metrics(
        REFS,
        {
            1: "A black dog, runs on the grass.",
            2: "Two red buses (parked) near a station!",
        },
        use_java=False,
    )
    assert scores["bleu_4"] == pytest.approx(1.0, abs=1e-6)


def test_mismatched_ids_raise():
    with pytest.raises(ValueError, match="same image ids"):
        cm.caption_metrics(REFS, {1: "a dog"}, use_java=False)


@pytest.mark.skipif(not cm.java_available(), reason="needs java")
def test_ptb_tokenizer_with_java():
    scores, notes = cm.caption_metrics(
        REFS,
        {
            1: "A black dog, runs on the grass.",
            2: "Two red buses parked near a station.",
        },
        use_java=True,
        java_metrics=False,
    )
    assert "PTBTokenizer" in notes[0]
    assert scores["bleu_4"] == pytest.approx(1.0, abs=1e-6)
