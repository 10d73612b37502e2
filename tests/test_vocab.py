"""Tests for `keras_uio.vocab` (id layout, boxes, points, keypoints, parsing)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_uio.vocab import Vocabulary


def test_default_layout_matches_spec():
    v = Vocabulary()
    assert v.vocab_size == 49536
    assert v.sentencepiece_size == 32000
    assert v.location_range == (32000, 33000)
    assert v.sentinel_range == (33000, 33100)
    assert v.unused_range == (33100, 33151)
    assert v.image_start_id == 33151
    assert v.image_id(0) == 33152 and v.image_id(16383) == 49535
    assert v.extra_id(0) == 33099 and v.extra_id(1099) == 32000
    assert v.location_id(0) == 32999 and v.location_id(999) == 32000
    assert v.location_bin(32999) == 0
    assert v.token_string(v.location_id(250)) == "<extra_id_350>"
    assert v.token_string(33151) == "<image_start>"
    assert v.token_string(33152 + 7) == "<image_7>"


def test_small_layout_scales():
    v = Vocabulary(
        text_vocab_size=1152,
        image_vocab_size=256,
        sentencepiece_size=100,
        num_location_bins=500,
        num_sentinels=10,
    )
    assert v.image_start_id == 1151 and v.image_offset == 1152
    assert v.location_range == (100, 600)
    assert v.unused_range == (610, 1151)
    assert Vocabulary.from_config(v.get_config()) == v


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="text_vocab_size"):
        Vocabulary(text_vocab_size=1152)
    with pytest.raises(ValueError, match="sentencepiece_size"):
        Vocabulary(text_vocab_size=2000, sentencepiece_size=1000)
    with pytest.raises(ValueError, match="bin_index"):
        Vocabulary().location_id(1000)
    with pytest.raises(ValueError, match="image_size"):
        Vocabulary().box_to_ids([0, 0, 1, 1], image_size=(0, 10))


def test_region_tokens_and_decoded_box_match_reference(preprocess_io):
    v = Vocabulary()
    box = [226.56, 160.64, 476.16, 316.16]
    text = v.box_to_text(box, image_size=(480, 640))
    assert text == str(preprocess_io["out/region_tokens_str"])
    ids = v.box_to_ids(box, image_size=(480, 640))
    parsed = v.ids_to_boxes(ids + [1], image_size=(480, 640))
    np.testing.assert_array_equal(parsed.boxes, preprocess_io["out/decoded_box_xyxy"])
    assert parsed.errors == []


sizes = st.tuples(st.integers(1, 4000), st.integers(1, 4000))


@settings(max_examples=200, deadline=None)
@given(size=sizes, data=st.data())
def test_box_round_trip_within_one_bin(size, data):
    h, w = size
    frac = st.floats(0, 1, allow_nan=False)
    x1, x2 = sorted(data.draw(st.tuples(frac, frac)))
    y1, y2 = sorted(data.draw(st.tuples(frac, frac)))
    box = np.array([x1 * w, y1 * h, x2 * w, y2 * h])
    v = Vocabulary()
    parsed = v.ids_to_boxes(v.box_to_ids(box, (h, w)), (h, w))
    bin_size = max(h, w) / 1000
    assert parsed.boxes.shape == (1, 4)
    np.testing.assert_array_less(
        np.abs(parsed.boxes[0] - box), bin_size * 1.0011 + 1e-9
    )


@settings(max_examples=200, deadline=None)
@given(size=sizes, fx=st.floats(0, 1), fy=st.floats(0, 1))
def test_point_round_trip_within_one_bin(size, fx, fy):
    h, w = size
    v = Vocabulary()
    point = np.array([fx * w, fy * h])
    parsed = v.ids_to_points(v.point_to_ids(point, (h, w)), (h, w))
    assert np.all(np.abs(parsed.boxes[0] - point) <= max(h, w) / 1000 * 1.0011)


def test_detection_sequence_and_labels():
    v = Vocabulary()
    size = (480, 640)
    b1, b2 = [10, 20, 100, 200], [300, 40, 600, 470]
    ids = v.box_to_ids(b1, size) + [55, 56] + v.box_to_ids(b2, size) + [57, 1]
    parsed = v.ids_to_boxes(ids, size, detokenize=lambda t: " ".join(map(str, t)))
    assert parsed.label_ids == [[55, 56], [57]]
    assert parsed.labels == ["55 56", "57"]
    assert parsed.errors == []
    np.testing.assert_allclose(parsed.boxes, [b1, b2], atol=0.64 * 1.01)


def test_malformed_sequences_parse_what_they_can():
    v = Vocabulary()
    size = (100, 100)
    good = v.box_to_ids([10, 10, 50, 50], size)
    loc = v.location_id(5)
    # text where locations belong, an odd count, a good box, then reversed
    ids = (
        [70, 71]
        + [loc, loc, loc]
        + [72]
        + good
        + [73]
        + v.box_to_ids([50, 50, 60, 60], size)[::-1]
        + [74]
    )
    parsed = v.ids_to_boxes(ids, size)
    assert len(parsed.boxes) == 1
    np.testing.assert_allclose(parsed.boxes[0], [10, 10, 50, 50], atol=0.2)
    assert parsed.label_ids == [[73]]
    text = " ".join(parsed.errors)
    assert "where location tokens were expected" in text
    assert "3 location token(s)" in text
    assert "out of order" in text
    # never raises on junk
    v.ids_to_boxes([], size)
    v.ids_to_boxes([loc] * 7, size)
    v.ids_to_boxes(np.arange(0, 49536, 97)[1:], size)


def test_keypoints_round_trip_with_invisible_marker():
    v = Vocabulary()
    rng = np.random.default_rng(0)
    size = (480, 640)
    kp = np.zeros((17, 3))
    kp[:, 0] = rng.uniform(0, 640, 17)
    kp[:, 1] = rng.uniform(0, 480, 17)
    kp[:, 2] = rng.integers(0, 3, 17)
    text = v.keypoints_to_text(kp, size)
    # Tokenise the text with a toy tokenizer: extra ids and digits 1-3.
    digits = {"1": 40, "2": 41, "3": 42}
    ids = []
    for t in text.split():
        ids.append(v.extra_id(int(t[10:-1])) if t.startswith("<") else digits[t])
    inv = {i: k for k, i in digits.items()}
    out = v.ids_to_keypoints(ids + [1], size, lambda t: "".join(inv[i] for i in t))
    assert out.valid, out.errors
    np.testing.assert_array_equal(out.visibility, kp[:, 2])
    vis = kp[:, 2] > 0
    assert np.all(np.isnan(out.points[~vis]))
    assert np.all(np.abs(out.points[vis] - kp[vis, :2]) <= 0.64 * 1.01)
    # Too few points and bad visibility are reported, not raised.
    bad = v.ids_to_keypoints(ids[:7] + [99], size, lambda t: "x")
    assert not bad.valid and bad.points.shape == (17, 2)


def test_keypoints_text_rejects_bad_shape():
    with pytest.raises(ValueError, match="keypoints"):
        Vocabulary().keypoints_to_text(np.zeros((17, 2)), (10, 10))
