"""Image preprocessing against the original's outputs (`preprocess/io.npz`)."""

import numpy as np
import pytest

from keras_uio.preprocessing import images as ops


@pytest.mark.parametrize("kind", ["landscape", "portrait"])
def test_encoder_and_target_match_reference(preprocess_io, kind):
    image = preprocess_io[f"in/img_{kind}"]
    enc, mask = ops.preprocess_image(image)
    ref = preprocess_io[f"out/enc_image_{kind}"]
    diff = np.abs(enc - ref)
    print(f"{kind} encoder: mean {diff.mean():.2e} max {diff.max():.2e}")
    assert diff.mean() < 0.02
    np.testing.assert_array_equal(mask, preprocess_io[f"out/enc_mask_{kind}"])
    tgt, tmask = ops.preprocess_target_image(image)
    diff = np.abs(tgt - preprocess_io[f"out/tgt_image_{kind}"])
    print(f"{kind} target: mean {diff.mean():.2e} max {diff.max():.2e}")
    assert diff.mean() < 0.02
    np.testing.assert_array_equal(tmask, preprocess_io[f"out/tgt_mask_{kind}"])


def test_inpainting_mask_matches_reference(preprocess_io):
    _, mask = ops.preprocess_image(
        preprocess_io["in/img_landscape"], mask_region=[100, 50, 300, 200]
    )
    np.testing.assert_array_equal(
        mask, preprocess_io["out/enc_mask_inpaint_region_100_50_300_200"]
    )


def test_undo_matches_reference(preprocess_io):
    out = ops.undo_image_preprocessing(preprocess_io["in/gen_256"], (480, 640))
    diff = np.abs(out - preprocess_io["out/undo_landscape"])
    print(f"undo: mean {diff.mean():.2e} max {diff.max():.2e}")
    assert out.shape == (480, 640, 3) and diff.mean() < 0.02


@pytest.mark.parametrize(
    "image",
    [
        np.full((50, 70), 128, np.uint8),
        np.full((50, 70, 1), 0.5, np.float32),
        np.full((70, 50, 4), 128, np.uint8),
        np.full((384, 200, 3), 128, np.uint8),  # no resize needed
        np.full((3, 1000, 3), 1.0),
    ],
)
def test_accepts_any_layout(image):
    enc, mask = ops.preprocess_image(image)
    assert enc.shape == (384, 384, 3) and enc.dtype == np.float32
    assert mask.shape == (576,) and mask.sum() > 0
    assert np.isfinite(enc).all()


def test_no_image_gives_zeros():
    enc, mask = ops.preprocess_image(None)
    assert not enc.any() and not mask.any()
    tgt, tmask = ops.preprocess_target_image(None)
    assert (tgt == -1).all() and not tmask.any()


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
        (np.zeros((10, 10, 3), np.int64), "dtype"),
        (np.full((10, 10, 3), 255.0), r"\[0, 1\]"),
        (np.zeros((0, 10, 3), np.uint8), "positive"),
    ],
)
def test_bad_images_raise(image, match):
    with pytest.raises(ValueError, match=match):
        ops.preprocess_image(image)


def test_region_without_image_raises():
    with pytest.raises(ValueError, match="mask_region"):
        ops.preprocess_image(None, mask_region=[0, 0, 1, 1])
