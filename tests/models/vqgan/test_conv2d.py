"""`keras_uio.models.vqgan.conv2d.Conv2D`: same outputs and gradients as Keras'."""

import keras
import numpy as np
import pytest

from keras_uio.models.vqgan.conv2d import Conv2D


@pytest.mark.parametrize(
    "kernel,strides,padding",
    [
        (3, 1, "same"),
        (3, 2, "valid"),
        (1, 1, "valid"),
        (3, 1, "valid"),
        (3, 2, "same"),
        (4, 2, "same"),
    ],
)
def test_outputs_and_gradients_equal_keras_conv2d(kernel, strides, padding):
    import jax

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 10, 5)).astype("float32")
    ours = Conv2D(6, kernel, strides=strides, padding=padding)
    reference = keras.layers.Conv2D(6, kernel, strides=strides, padding=padding)
    ours.build(x.shape)
    reference.build(x.shape)
    reference.set_weights(ours.get_weights())
    target = rng.normal(size=ours.compute_output_shape(x.shape)).astype("float32")

    def loss(layer):
        def f(kernel, inputs):
            return ((layer.convolution_op(inputs, kernel) - target) ** 2).sum()

        return jax.grad(f, argnums=(0, 1))(ours.kernel.value, x)

    np.testing.assert_array_equal(ours(x), reference(x))
    (dw, dx), (dw_ref, dx_ref) = loss(ours), loss(reference)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-5)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-4, atol=1e-4)


def test_config_round_trip():
    layer = Conv2D(4, 3, strides=2, padding="same", name="c")
    clone = Conv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert isinstance(
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer)
        ),
        Conv2D,
    )
