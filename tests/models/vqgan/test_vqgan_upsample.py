import keras
import numpy as np
import pytest

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


def _nearest_doubling_then_conv(x, kernel, bias):
    """The block's definition, computed the direct way."""
    upsampled = keras.ops.repeat(keras.ops.repeat(x, 2, axis=1), 2, axis=2)
    return keras.ops.conv(upsampled, kernel, padding="same") + bias


def _random_block(rng, channels=4, filters=6):
    layer = VQGANUpsample(filters=filters)
    layer.build((None, None, None, channels))
    kernel = rng.normal(size=(3, 3, channels, filters)).astype("float32")
    bias = rng.normal(size=(filters,)).astype("float32")
    layer.conv.kernel.assign(kernel)
    layer.conv.bias.assign(bias)
    return layer, kernel, bias


def test_sub_pixel_form_equals_the_upsampled_convolution():
    # Non-square input, other channel counts in and out, every border.
    rng = np.random.default_rng(1)
    layer, kernel, bias = _random_block(rng)
    x = rng.normal(size=(2, 5, 7, 4)).astype("float32")
    expected = keras.ops.convert_to_numpy(_nearest_doubling_then_conv(x, kernel, bias))
    got = keras.ops.convert_to_numpy(layer(x))
    assert got.shape == (2, 10, 14, 6)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)


@pytest.mark.skipif(keras.config.backend() != "jax", reason="uses jax.grad")
def test_sub_pixel_form_has_the_upsampled_convolutions_gradients():
    import jax

    rng = np.random.default_rng(2)
    layer, kernel, bias = _random_block(rng)
    x = rng.normal(size=(1, 4, 6, 4)).astype("float32")
    weights = rng.normal(size=(1, 8, 12, 6)).astype("float32")

    def ours(x, kernel):
        with keras.StatelessScope(
            state_mapping=[(layer.conv.kernel, kernel), (layer.conv.bias, bias)]
        ):
            return (layer(x) * weights).sum()

    def direct(x, kernel):
        return (_nearest_doubling_then_conv(x, kernel, bias) * weights).sum()

    for a, b in zip(
        jax.grad(ours, (0, 1))(x, kernel), jax.grad(direct, (0, 1))(x, kernel)
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-3, rtol=1e-4)
