import keras
import numpy as np
import pytest

from keras_uio.models.vqgan.vqgan import VQGAN
from keras_uio.models.vqgan.vqgan_compile import COMPILED_BACKENDS
from keras_uio.models.vqgan.vqgan_compile import CompiledCalls
from keras_uio.testing import assert_vqgan_codes_match
from tests.conftest import SMALL_VQGAN

compiled_only = pytest.mark.skipif(
    keras.config.backend() not in COMPILED_BACKENDS,
    reason="this backend runs encode/decode eagerly",
)


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.fixture(scope="module")
def vqgan():
    keras.utils.set_random_seed(1)
    return VQGAN(**SMALL_VQGAN)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")


def test_direct_calls_equal_the_uncompiled_path(vqgan, images):
    codes = numpy(vqgan.encode(images))
    # Compiled and op-by-op distances may round differently: equal codes
    # except at proven float32 ties.
    assert_vqgan_codes_match(vqgan, images, codes, numpy(vqgan._encode(images)))
    assert codes.dtype == np.int32 and codes.shape == (2, 256)
    decoded = numpy(vqgan.decode(codes))
    np.testing.assert_allclose(decoded, numpy(vqgan._decode(codes)), atol=1e-5)
    assert decoded.shape == (2, 32, 32, 3)


@compiled_only
def test_one_trace_and_one_function_per_shape(images):
    keras.utils.set_random_seed(2)
    vqgan = VQGAN(**SMALL_VQGAN)
    calls = vqgan._compiled_calls
    codes = vqgan.encode(images)
    first = numpy(vqgan.decode(codes))
    assert calls.traces == 2 and len(calls) == 2
    np.testing.assert_array_equal(numpy(vqgan.encode(images)), numpy(codes))
    np.testing.assert_array_equal(numpy(vqgan.decode(codes)), first)
    assert calls.traces == 2 and len(calls) == 2
    vqgan.decode(numpy(codes)[:1])  # a new batch size: its own function
    assert calls.traces == 3
    assert sorted(k[:2] for k in calls.keys()) == [
        ("decode", (1, 256)),
        ("decode", (2, 256)),
        ("encode", (2, 32, 32, 3)),
    ]


@compiled_only
def test_new_weights_are_used_without_recompiling(images):
    keras.utils.set_random_seed(3)
    vqgan = VQGAN(**SMALL_VQGAN)
    codes = numpy(vqgan.encode(images))
    vqgan.decode(codes)
    traces = vqgan._compiled_calls.traces
    vqgan.set_weights([w * 0.5 for w in vqgan.get_weights()])
    np.testing.assert_allclose(
        numpy(vqgan.decode(codes)), numpy(vqgan._decode(codes)), atol=1e-5
    )
    assert vqgan._compiled_calls.traces == traces


@compiled_only
def test_a_new_variable_set_empties_the_cache():
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    calls = CompiledCalls(dense)
    x = np.ones((4, 3), "float32")
    calls.call("dense", dense, x)
    calls.call("dense", dense, x)
    assert calls.traces == 1 and len(calls) == 1
    dense.enable_lora(1)
    dense.lora_kernel_b.assign(np.ones((1, 2), "float32"))
    y = calls.call("dense", dense, x)
    assert calls.traces == 2 and len(calls) == 1
    np.testing.assert_allclose(numpy(y), numpy(dense(x)), atol=1e-6)


def test_calls_inside_a_traced_function_run_plain(vqgan, images):
    codes = numpy(vqgan.encode(images))
    before = len(vqgan._compiled_calls)
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        decode = jax.jit(vqgan.decode)
    elif backend == "tensorflow":
        import tensorflow as tf

        decode = tf.function(vqgan.decode)
    else:
        pytest.skip("no tracing function on this backend")
    np.testing.assert_allclose(
        numpy(decode(codes)), numpy(vqgan.decode(codes)), atol=1e-5
    )
    assert len(vqgan._compiled_calls) == before  # the outer trace compiled it


def test_calls_in_a_stateless_scope_use_the_mapped_values(vqgan, images):
    codes = numpy(vqgan.encode(images))
    halved = [v.value * 0.5 for v in vqgan.variables]
    with keras.StatelessScope(state_mapping=zip(vqgan.variables, halved)):
        inside = numpy(vqgan.decode(codes))
    outside = numpy(vqgan.decode(codes))
    assert np.abs(inside - outside).max() > 1e-3
    copy = VQGAN(**SMALL_VQGAN)
    copy.set_weights([w * 0.5 for w in vqgan.get_weights()])
    np.testing.assert_allclose(inside, numpy(copy._decode(codes)), atol=1e-5)
