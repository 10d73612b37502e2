"""`recompute_in_backward`: same values and gradients, less stored."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_uio.layers.recompute import recompute_in_backward
from keras_uio.layers.recompute import variables_of

jax_only = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the custom gradient is JAX's"
)


def _block(x, w):
    hidden = ops.tanh(ops.exp(ops.matmul(x, w) * 1e-3))
    return ops.matmul(hidden * 2.0, ops.transpose(w))


@jax_only
def test_values_and_gradients_equal_the_plain_function():
    import jax

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8)).astype("float32")
    w = rng.standard_normal((8, 32)).astype("float32")
    wrapped = recompute_in_backward(_block)

    def loss(block, x, w):
        return ops.sum(ops.square(block(block(x, w), w)))

    np.testing.assert_allclose(wrapped(x, w), _block(x, w), rtol=1e-6)
    plain = jax.grad(lambda x, w: loss(_block, x, w), argnums=(0, 1))(x, w)
    ours = jax.grad(lambda x, w: loss(wrapped, x, w), argnums=(0, 1))(x, w)
    for a, b in zip(plain, ours):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@jax_only
def test_layer_variables_get_their_gradient():
    import jax

    layer = keras.layers.Dense(4, activation="tanh")
    layer.build((None, 3))
    x = np.random.default_rng(1).standard_normal((5, 3)).astype("float32")
    wrapped = recompute_in_backward(layer, variables=variables_of(layer))

    def loss(values, call):
        with keras.StatelessScope(state_mapping=list(zip(layer.variables, values))):
            return ops.sum(ops.square(call(x)))

    values = [v.value for v in layer.variables]
    plain = jax.grad(loss)(values, layer)
    ours = jax.grad(loss)(values, wrapped)
    for a, b in zip(plain, ours):
        assert float(np.abs(a).max()) > 0
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@jax_only
def test_backward_differentiates_the_given_form():
    import jax

    wrapped = recompute_in_backward(lambda x: x * 2.0, differentiate=lambda x: x * 3.0)
    assert float(wrapped(np.float32(1.0))) == 2.0
    assert float(jax.grad(wrapped)(np.float32(1.0))) == 3.0


@jax_only
def test_stores_less_than_the_plain_chain():
    # XLA's own plan for the compiled gradient: the wrapped chain keeps only
    # each block's input, the plain one every [256, 4096] intermediate.
    import jax

    x = np.ones((256, 64), "float32")
    w = np.full((64, 4096), 1e-3, "float32")

    def temp_bytes(block):
        def loss(w):
            h = x
            for _ in range(6):
                h = block(h, w)
            return ops.sum(h)

        compiled = jax.jit(jax.grad(loss)).lower(w).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    assert temp_bytes(recompute_in_backward(_block)) < 0.5 * temp_bytes(_block)


def test_other_backends_run_the_function_unchanged():
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(
        recompute_in_backward(lambda x: ops.softmax(x) * 2)(x),
        ops.softmax(x) * 2,
        rtol=1e-6,
    )
