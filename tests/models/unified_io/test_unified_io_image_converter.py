"""Tests for `UnifiedIOImageConverter`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_uio.models.unified_io.unified_io_image_converter import (
    UnifiedIOImageConverter,
)


def test_matches_reference_and_batches(preprocess_io):
    conv = UnifiedIOImageConverter()
    images = [preprocess_io["in/img_landscape"], preprocess_io["in/img_portrait"]]
    out = conv.convert(images)
    for i, kind in enumerate(["landscape", "portrait"]):
        ref = preprocess_io[f"out/enc_image_{kind}"]
        assert np.abs(out["images"][i] - ref).mean() < 0.02
        np.testing.assert_array_equal(
            out["patch_masks"][i], preprocess_io[f"out/enc_mask_{kind}"]
        )
    target = UnifiedIOImageConverter(image_size=256, target=True)
    tgt = target(preprocess_io["in/img_portrait"])
    assert np.abs(tgt - preprocess_io["out/tgt_image_portrait"]).mean() < 0.02


def test_tf_data_matches_eager(preprocess_io):
    conv = UnifiedIOImageConverter()
    image = preprocess_io["in/img_landscape"]
    region = np.array([100, 50, 300, 200], np.float64)
    ds = tf.data.Dataset.from_tensors((image, region)).map(
        lambda i, r: conv.convert(i, mask_regions=r)
    )
    got = next(iter(ds))
    want = conv.convert(image, mask_regions=region)
    np.testing.assert_allclose(got["images"].numpy(), want["images"])
    np.testing.assert_array_equal(
        got["patch_masks"].numpy(),
        preprocess_io["out/enc_mask_inpaint_region_100_50_300_200"],
    )


def test_config_round_trip_and_undo():
    conv = UnifiedIOImageConverter(image_size=256, target=True)
    config = keras.saving.serialize_keras_object(conv)
    restored = keras.saving.deserialize_keras_object(config)
    assert restored.get_config() == conv.get_config()
    assert restored.target and restored.image_size == (256, 256)
    out = conv.undo(np.zeros((256, 256, 3), np.float32), (100, 50))
    assert out.shape == (100, 50, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="patch_size"):
        UnifiedIOImageConverter(image_size=100)
    with pytest.raises(ValueError, match="image_size"):
        UnifiedIOImageConverter(image_size=(384, 256))
    with pytest.raises(ValueError, match="mask_regions"):
        UnifiedIOImageConverter().convert(
            [np.zeros((5, 5, 3), np.uint8)] * 2, mask_regions=[[0, 0, 1, 1]]
        )


def test_a_single_palette_pil_image_is_read_in_colour():
    from PIL import Image

    from keras_uio.models.unified_io.unified_io_image_converter import (
        UnifiedIOImageConverter,
    )

    rgb = np.zeros((32, 48, 3), "uint8")
    rgb[8:24, 8:40] = (255, 0, 0)
    converter = UnifiedIOImageConverter(image_size=64, patch_size=8)
    palette = Image.fromarray(rgb).convert("P")
    np.testing.assert_allclose(
        converter.convert(palette)["images"],
        converter.convert(rgb)["images"],
        atol=1e-5,
    )
