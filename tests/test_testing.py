"""keras_uio.testing: code/token comparisons that tolerate proven float32 ties only."""

import numpy as np
import pytest

from keras_uio.testing import TIE_ULPS
from keras_uio.testing import assert_argmax_match
from keras_uio.testing import assert_codes_match
from keras_uio.testing import assert_greedy_tokens_match
from keras_uio.testing import assert_vqgan_codes_match
from keras_uio.testing import tie_gap
from keras_uio.testing import vqgan_code_distances

TIED = np.float32(33.396885)
NEXT = np.nextafter(TIED, np.float32(np.inf))  # one float32 spacing above


def _distances(rows):
    """`[len(rows), 4]` distances; each row is `{candidate: distance}` over 50s."""
    table = np.full((len(rows), 4), 50.0, "float32")
    for i, row in enumerate(rows):
        for candidate, value in row.items():
            table[i, candidate] = value
    return table


def _never_called():
    raise AssertionError("the scores are needed only when something differs")


def test_equal_codes_pass_without_computing_scores():
    codes = np.array([[1, 2], [3, 0]])
    assert assert_codes_match(codes, codes.copy(), _never_called) == []


def test_a_proven_tie_passes_and_is_reported():
    scores = _distances([{0: 10.0}, {1: TIED, 2: NEXT}])[None]  # [1, 2, 4]
    expected = np.array([[0, 1]])
    ties = assert_codes_match(np.array([[0, 2]]), expected, scores)
    assert ties == [(0, 1)]
    gap, tolerance = tie_gap(scores[0, 1], 1, 2)
    assert 0 < gap <= tolerance and gap < 2 * np.spacing(TIED)


def test_a_mismatch_that_is_not_a_tie_fails():
    # 1 and 2 are 0.01 apart: thousands of float32 spacings, a real change.
    scores = _distances([{1: 33.39, 2: 33.40}])
    with pytest.raises(AssertionError, match=r"(?s)NOT a float32 tie.*\(0,\): ours 2"):
        assert_codes_match(np.array([2]), np.array([1]), scores)


def test_both_candidates_must_be_near_the_best():
    # 1 and 2 tie with each other, but 3 is far better than both.
    scores = _distances([{1: TIED, 2: NEXT, 3: 1.0}])
    with pytest.raises(AssertionError, match="NOT a float32 tie"):
        assert_codes_match(np.array([2]), np.array([1]), scores)


def test_the_tie_width_is_a_few_float32_spacings():
    far = TIED + np.float32(TIE_ULPS + 1) * np.spacing(TIED)
    scores = _distances([{1: TIED, 2: far}])
    with pytest.raises(AssertionError, match="NOT a float32 tie"):
        assert_codes_match(np.array([2]), np.array([1]), scores)
    assert assert_codes_match(np.array([2]), np.array([1]), scores, ulps=TIE_ULPS + 2)


def test_too_many_ties_fail():
    scores = _distances([{1: TIED, 2: NEXT}] * 3)
    expected, actual = np.array([1, 1, 1]), np.array([2, 2, 2])
    with pytest.raises(AssertionError, match="3 positions differ at float32 ties"):
        assert_codes_match(actual, expected, scores)
    assert len(assert_codes_match(actual, expected, scores, max_ties=3)) == 3


def test_a_value_that_is_no_candidate_fails():
    scores = _distances([{1: TIED, 2: NEXT}])
    with pytest.raises(AssertionError, match="ours 9"):
        assert_codes_match(np.array([9]), np.array([1]), scores)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="actual values have shape"):
        assert_codes_match(np.zeros((2,)), np.ones((3,)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="candidate scores must have shape"):
        assert_codes_match(np.zeros((2,)), np.ones((2,)), np.zeros((3, 4)))


def test_argmax_ties_are_between_the_two_largest_logits():
    logits = -_distances([{1: TIED, 2: NEXT}, {1: 1.0, 2: 2.0}])
    assert assert_argmax_match(np.array([2, 1]), np.array([1, 1]), logits) == [(0,)]
    with pytest.raises(AssertionError, match="NOT a float32 tie"):
        assert_argmax_match(np.array([1, 2]), np.array([1, 1]), logits)


def _greedy_logits(expected, tied_at=None):
    """Teacher-forced logits: a clear winner (the reference), or a tie."""
    logits = np.zeros(expected.shape + (8,), "float32")
    np.put_along_axis(logits, expected[..., None], 5.0, -1)
    if tied_at is not None:
        row, position, other = tied_at
        logits[row, position, other] = np.nextafter(np.float32(5.0), np.float32(0))
    return logits


def test_greedy_tokens_may_diverge_after_a_tie_only():
    expected = np.array([[3, 4, 5, 6], [1, 2, 3, 4]])
    actual = np.array([[3, 4, 7, 0], [1, 2, 3, 4]])  # row 0: 7 at 2, then anything
    logits = _greedy_logits(expected, tied_at=(0, 2, 7))
    assert assert_greedy_tokens_match(actual, expected, logits) == {0: 2}
    assert assert_greedy_tokens_match(expected, expected, _never_called) == {}


def test_greedy_tokens_fail_before_any_tie():
    expected = np.array([[3, 4, 5, 6]])
    logits = _greedy_logits(expected, tied_at=(0, 2, 7))
    # differs at 1, where the reference's token wins clearly
    with pytest.raises(AssertionError, match=r"(?s)NOT a float32 tie.*\(0, 1\)"):
        assert_greedy_tokens_match(np.array([[3, 0, 7, 6]]), expected, logits)
    with pytest.raises(AssertionError, match="2 positions differ at float32 ties"):
        assert_greedy_tokens_match(
            np.array([[3, 4, 7, 6]] * 2),
            np.repeat(expected, 2, 0),
            np.repeat(logits, 2, 0),
            max_ties=1,
        )


@pytest.fixture(scope="module")
def reference_vqgan(reference_checkpoint):
    from keras_uio.convert.vqgan_weights import load_vqgan_checkpoint

    return load_vqgan_checkpoint(reference_checkpoint)


def test_the_reference_image_has_exactly_one_tie(reference_vqgan, reference_io):
    """From the numbers: (0, 184) ties between 218 and 120, nothing else does."""
    images = reference_io["in/image_decoder_targets"]
    distances = vqgan_code_distances(reference_vqgan, images)
    assert distances.shape == (2, 256, 256)
    best_two = np.sort(distances, -1)[..., :2]
    tolerance = TIE_ULPS * np.spacing(best_two[..., 1].astype("float32"))
    tied = np.argwhere(best_two[..., 1] - best_two[..., 0] <= tolerance)
    assert tied.tolist() == [[0, 184]]
    assert set(np.argsort(distances[0, 184])[:2]) == {120, 218}

    expected = reference_io["out/vae_codes"]
    flipped = expected.copy()
    flipped[0, 184] = 120 if expected[0, 184] == 218 else 218
    ties = assert_vqgan_codes_match(reference_vqgan, images, flipped, expected)
    assert ties == [(0, 184)]
    # the next-closest pair (1, 50) is ~36 float32 spacings apart: no tie
    wrong = expected.copy()
    wrong[1, 50] = np.argsort(distances[1, 50])[1]
    with pytest.raises(AssertionError, match=r"\(1, 50\)"):
        assert_vqgan_codes_match(reference_vqgan, images, wrong, expected)
