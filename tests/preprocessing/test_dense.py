"""Dense labels <-> images round trips (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keras_uio.preprocessing import dense


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, (8, 9), elements=st.floats(0.01, 80)))
def test_depth_round_trip(depth):
    image, scale = dense.depth_to_image(depth)
    assert image.shape == (8, 9, 3) and image.min() >= 0 and image.max() <= 1
    back = dense.image_to_depth(image, scale)
    np.testing.assert_allclose(back, depth, rtol=1e-5, atol=1e-5 * scale)
    # Through an 8-bit image: within half a grey level.
    back8 = dense.image_to_depth(np.round(image * 255).astype(np.uint8), scale)
    assert np.abs(back8 - depth).max() <= scale / 255 / 2 + 1e-5


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, (6, 7, 3), elements=st.floats(-1, 1)))
def test_normals_round_trip(n):
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    n = np.where(norm > 0.1, n / np.maximum(norm, 1e-9), [0.0, 0.0, 1.0])
    back = dense.image_to_normals(dense.normals_to_image(n))
    np.testing.assert_allclose(back, n, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(back, axis=-1), 1, atol=1e-5)


@st.composite
def instance_masks(draw):
    """Up to 6 non-overlapping rectangles (>= 3x3) on a 32x32 grid."""
    n = draw(st.integers(1, 6))
    masks = []
    taken = np.zeros((32, 32), bool)
    for _ in range(n):
        y, x = draw(st.integers(0, 28)), draw(st.integers(0, 28))
        h, w = draw(st.integers(3, 32 - y)), draw(st.integers(3, 32 - x))
        m = np.zeros((32, 32), bool)
        m[y : y + h, x : x + w] = True
        m &= ~taken
        from keras_uio.preprocessing.dense import remove_small_components

        m = remove_small_components(m, 8)
        if m.any():
            taken |= m
            masks.append(m)
    return masks


@settings(max_examples=40, deadline=None)
@given(instance_masks(), st.floats(0, 0.15))
def test_segmentation_round_trip(masks, noise):
    labels = [f"thing{i}" for i in range(len(masks))]
    image, text = dense.segmentation_to_image(np.stack(masks), labels)
    assert image.dtype == np.uint8 and text.startswith("thing0 : red")
    noisy = image / 255.0 + noise * np.sign(0.5 - image / 255.0)
    out = dense.image_to_segmentation(noisy, text=text, min_size=8)
    assert [l for l, _ in out] == labels
    for (_, got), want in zip(out, masks):
        np.testing.assert_array_equal(got, want)


def test_segmentation_drops_specks_and_original_palette():
    image = np.zeros((20, 20, 3), np.uint8)
    image[2:10, 2:10] = (0, 0, 255)
    image[15, 15] = (255, 0, 0)  # a 1-pixel speck
    out = dense.image_to_segmentation(image)
    assert [name for name, _ in out] == ["blue"]
    _, text = dense.segmentation_to_image(
        np.ones((1, 4, 4), bool),
        ["Dog"],
        dense.ORIGINAL_SEGMENTATION_COLORS,
        dense.ORIGINAL_SEGMENTATION_COLOR_NAMES,
    )
    assert text == "dog : white"  # the original's quirk


def test_dense_errors():
    with pytest.raises(ValueError, match="max_depth"):
        dense.depth_to_image(np.ones((2, 2)), max_depth=-1)
    with pytest.raises(ValueError, match="normals"):
        dense.normals_to_image(np.ones((2, 2)))
    with pytest.raises(ValueError, match="labels"):
        dense.segmentation_to_image(np.ones((2, 4, 4), bool), ["a"])
