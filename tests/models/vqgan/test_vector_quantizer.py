import keras
import numpy as np
import pytest

from keras_uio.models.vqgan.vector_quantizer import VectorQuantizer


def _setup(dtype=None, seed=0):
    rng = np.random.default_rng(seed)
    layer = VectorQuantizer(codebook_size=32, embed_dim=8, dtype=dtype)
    layer.build((None, 8))
    codebook = rng.normal(size=(32, 8)).astype("float32")
    layer.embedding.assign(codebook)
    z = rng.normal(size=(2, 3, 5, 8)).astype("float32")
    return layer, codebook, z


def test_codes_are_nearest_rows():
    layer, codebook, z = _setup()
    codes, quantized = layer(z)
    distances = ((z[..., None, :] - codebook) ** 2).sum(-1)
    np.testing.assert_array_equal(np.asarray(codes), distances.argmin(-1))
    assert keras.backend.standardize_dtype(codes.dtype) == "int32"
    assert codes.shape == (2, 3, 5)
    np.testing.assert_allclose(
        np.asarray(quantized), codebook[np.asarray(codes)], atol=1e-6
    )
    np.testing.assert_array_equal(
        np.asarray(layer.lookup(codes)), codebook[np.asarray(codes)]
    )


def test_ties_pick_the_first_code():
    layer, codebook, _ = _setup()
    codebook[7] = codebook[3]
    layer.embedding.assign(codebook)
    codes, _ = layer(codebook[3][None])
    assert int(np.asarray(codes)[0]) == 3


def test_losses_and_straight_through_gradient():
    jax = pytest.importorskip("jax")
    if keras.config.backend() != "jax":
        pytest.skip("gradient check written for JAX")
    layer, codebook, z = _setup()
    _, _, losses = layer(z, with_losses=True)
    codes = np.asarray(layer(z)[0])
    mse = ((codebook[codes] - z) ** 2).mean()
    np.testing.assert_allclose(float(losses["commitment_loss"]), mse, 1e-5)
    np.testing.assert_allclose(float(losses["codebook_loss"]), mse, 1e-5)
    np.testing.assert_allclose(float(losses["loss"]), 1.25 * mse, 1e-5)

    grads = jax.grad(
        lambda z: layer.stateless_call([codebook], [], z)[0][1].sum() * 3.0
    )(z)
    np.testing.assert_allclose(np.asarray(grads), 3.0 * np.ones_like(z))

    def loss_terms(embedding, z):
        (_, _, losses), _ = layer.stateless_call([embedding], [], z, with_losses=True)
        return losses["codebook_loss"], losses["commitment_loss"]

    # The codebook term trains only the codebook, the commitment term only
    # the encoder output.
    d_book = jax.grad(lambda e: loss_terms(e, z)[1])(codebook)
    d_z = jax.grad(lambda x: loss_terms(codebook, x)[0])(z)
    assert np.abs(np.asarray(d_book)).max() == 0
    assert np.abs(np.asarray(d_z)).max() == 0
    d_book = jax.grad(lambda e: loss_terms(e, z)[0])(codebook)
    assert np.abs(np.asarray(d_book)).max() > 0


def test_bfloat16_policy_searches_in_float32():
    full, codebook, z = _setup()
    half, _, _ = _setup(dtype="mixed_bfloat16")
    codes_full, _ = full(z)
    codes_half, quantized = half(z)
    np.testing.assert_array_equal(np.asarray(codes_half), np.asarray(codes_full))
    assert keras.backend.standardize_dtype(quantized.dtype) == "bfloat16"


def test_config_round_trip_and_validation():
    layer = VectorQuantizer(16384, 256, beta=0.5, name="quantize")
    clone = VectorQuantizer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="codebook_size"):
        VectorQuantizer(0, 8)
    with pytest.raises(ValueError, match="embed_dim=8"):
        VectorQuantizer(4, 8)(np.zeros((2, 5), "float32"))
