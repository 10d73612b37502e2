import keras
import numpy as np

from keras_uio.models.vqgan.vqgan_downsample import VQGANDownsample


def test_shape_and_same_padding_of_the_original():
    layer = VQGANDownsample()
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    y = np.asarray(layer(x))
    assert y.shape == (2, 4, 4, 4)
    # A SAME stride-2 3x3 conv on an even input pads 0 before, 1 after.
    padded = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    kernel = np.asarray(layer.conv.kernel)
    expected = np.zeros_like(y) + np.asarray(layer.conv.bias)
    for dy in range(3):
        for dx in range(3):
            expected += padded[:, dy : dy + 8 : 2, dx : dx + 8 : 2] @ kernel[dy, dx]
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_config_round_trip():
    layer = VQGANDownsample(filters=8, name="down_0_downsample", dtype="mixed_bfloat16")
    clone = VQGANDownsample.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone.build((1, 6, 6, 4))
    assert clone.conv.dtype_policy.name == "mixed_bfloat16"
    assert clone.compute_output_shape((1, 6, 6, 4)) == (1, 3, 3, 8)
    assert isinstance(
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer)
        ),
        VQGANDownsample,
    )
