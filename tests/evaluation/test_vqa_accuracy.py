"""VQA answer normalisation and accuracy, on cases derived from the rules
of the VQA evaluation (see `keras_uio.evaluation.vqa_metrics`)."""

import pytest

from keras_uio.evaluation.vqa_metrics import normalize_answer
from keras_uio.evaluation.vqa_metrics import vqa_accuracy


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("Two", "2"),  # lower case, number word -> digit
        ("none", "0"),
        ("ten", "10"),
        ("eleven", "eleven"),  # only zero..ten are converted
        ("the dog.", "dog"),  # article and final period removed
        ("A dog", "dog"),
        ("an apple", "apple"),
        ("isnt", "isn't"),  # missing apostrophe put back
        ("Isn't", "isn't"),
        ("dont", "don't"),
        ("wont", "won't"),
        ("its", "its"),  # a word without the apostrophe too
        ("2.5", "2.5"),  # a decimal keeps its period
        ("100,978", "100978"),  # comma between digits removed
        ("red, white", "red white"),  # other punctuation -> space
        ("hot-dog", "hot dog"),
        ("yes!", "yes"),
        ("2:20 PM", "2:20 pm"),  # colon kept (times)
        ("girl's", "girl's"),  # apostrophe kept (possessives)
        ("  Red\n", "red"),
        ("3 o clock", "3 o clock"),
        ("5 oclock", "5 o'clock"),
    ],
)
def test_normalize_answer(raw, normal):
    assert normalize_answer(raw) == normal


@pytest.mark.parametrize(
    "matching, expected",
    [
        # 10 answers, k match: leaving out one of the k leaves k - 1 matches,
        # leaving out another leaves k; each subset scores min(n / 3, 1).
        (4, 1.0),
        (3, (3 * (2 / 3) + 7 * 1.0) / 10),  # 0.9
        (2, (2 * (1 / 3) + 8 * (2 / 3)) / 10),  # 0.6
        (1, (1 * 0.0 + 9 * (1 / 3)) / 10),  # 0.3
        (0, 0.0),
        (10, 1.0),
    ],
)
def test_accuracy_over_leave_one_out_subsets(matching, expected):
    humans = ["blue"] * matching + ["green"] * (10 - matching)
    assert vqa_accuracy("blue", humans) == pytest.approx(expected)


def test_accuracy_normalises_both_sides():
    humans = ["Two"] * 3 + ["three"] * 7
    assert vqa_accuracy("2", humans) == pytest.approx(0.9)
    assert vqa_accuracy("the 3.", humans) == 1.0


def test_official_script_normalises_only_on_disagreement():
    humans = ["yes"] * 10
    assert vqa_accuracy("Yes", humans) == 1.0
    assert vqa_accuracy("Yes", humans, always_normalize=False) == 0.0
    mixed = ["yes"] * 9 + ["no"]
    assert vqa_accuracy("Yes", mixed, always_normalize=False) == 1.0


def test_single_answer_and_empty_answers():
    assert vqa_accuracy("red", ["Red"]) == 1.0
    assert vqa_accuracy("blue", ["red"]) == 0.0
    with pytest.raises(ValueError, match="human_answers"):
        vqa_accuracy("red", [])
