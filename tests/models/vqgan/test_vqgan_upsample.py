import numpy as np

from keras_uio.models.vqgan.vqgan_upsample import VQGANUpsample


def test_nearest_doubling_then_conv():
    layer = VQGANUpsample()
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype("float32")
    layer.build(x.shape)
    kernel = np.zeros((3, 3, 4, 4), "float32")
    kernel[1, 1] = np.eye(4)  # identity conv
    layer.conv.kernel.assign(kernel)
    layer.conv.bias.assign(np.arange(4, dtype="float32"))
    y = np.asarray(layer(x))
    expected = x.repeat(2, axis=1).repeat(2, axis=2) + np.arange(4)
    np.testing.assert_allclose(y, expected, atol=1e-6)


def test_conv_is_same_padded_and_config_round_trip():
    layer = VQGANUpsample(filters=6, name="up_0_upsample")
    clone = VQGANUpsample.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    y = clone(np.ones((1, 4, 4, 2), "float32"))
    assert y.shape == (1, 8, 8, 6)
    assert tuple(clone.conv.kernel.shape) == (3, 3, 2, 6)
    assert clone.compute_output_shape((1, 4, 4, 2)) == (1, 8, 8, 6)
