import keras
import numpy as np
import pytest

from keras_uio.models.vqgan.finite_scalar_quantizer import FiniteScalarQuantizer
from keras_uio.models.vqgan.vqgan import VQGAN
from keras_uio.models.vqgan.vqgan_config import count_vqgan_parameters

LEVELS = (8, 5, 3)


def _bins(z, levels):
    """Bins per channel written out by hand: the shifted tanh, rounded."""
    bins = []
    for channel, n in enumerate(levels):
        half_bound = (n - 1) * (1 - 1e-3) / 2
        offset = 0.5 if n % 2 == 0 else 0.0
        bounded = (
            np.tanh(z[..., channel] + np.arctanh(offset / half_bound)) * half_bound
            - offset
        )
        bins.append(np.round(bounded) + n // 2)
    return np.stack(bins, -1)


def test_codes_are_mixed_radix_bins_and_lookup_inverts_them():
    layer = FiniteScalarQuantizer(LEVELS)
    z = np.random.default_rng(0).normal(scale=2.0, size=(2, 3, 5, 3))
    z = z.astype("float32")
    codes, quantized = layer(z)
    bins = _bins(z.astype("float64"), LEVELS)
    expected = bins[..., 0] + 8 * bins[..., 1] + 40 * bins[..., 2]
    np.testing.assert_array_equal(np.asarray(codes), expected)
    assert keras.backend.standardize_dtype(codes.dtype) == "int32"
    half = np.array([4.0, 2.0, 1.0])
    np.testing.assert_allclose(np.asarray(quantized), (bins - half) / half, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(layer.lookup(codes)), np.asarray(quantized), atol=1e-6
    )


def test_every_code_is_reachable_and_round_trips():
    layer = FiniteScalarQuantizer(LEVELS)
    assert layer.codebook_size == 120 and layer.embed_dim == 3
    vectors = np.asarray(layer.lookup(np.arange(120)))
    assert len({tuple(v) for v in vectors.round(6)}) == 120
    # A point just inside each bin's centre quantizes back to that code.
    half_bound = (np.array(LEVELS) - 1) * (1 - 1e-3) / 2
    offset = np.array([0.5, 0.0, 0.0])
    target = (vectors * np.array([4, 2, 1]) + offset) / half_bound
    z = np.arctanh(np.clip(target, -0.9999, 0.9999)) - np.arctanh(offset / half_bound)
    codes, _ = layer(z.astype("float32"))
    np.testing.assert_array_equal(np.asarray(codes), np.arange(120))


def test_straight_through_gradient_and_zero_losses():
    layer = FiniteScalarQuantizer(LEVELS)
    z = keras.Variable(np.full((4, 3), 0.1, "float32"))
    _, _, losses = layer(z, with_losses=True)
    for value in losses.values():
        assert float(value) == 0.0
    if keras.backend.backend() != "jax":
        pytest.skip("the gradient is checked with jax.grad")
    import jax

    def total(values):
        return layer(values)[1].sum()

    grad = np.asarray(jax.grad(total)(np.full((4, 3), 0.1, "float32")))
    assert np.all(grad > 0)  # rounding does not stop the gradient


def test_vqgan_with_fsq_levels_round_trips_and_counts_parameters(tmp_path):
    config = dict(
        image_size=16,
        channels=32,
        channel_multipliers=(1, 2),
        num_res_blocks=1,
        attention_resolutions=(),
        z_channels=16,
        fsq_levels=(8, 5, 5, 5),
        codebook_size=1000,
        embed_dim=4,
    )
    vqgan = VQGAN(**config)
    assert vqgan.count_params() == count_vqgan_parameters(config)
    assert vqgan.quant_conv.kernel.shape == (1, 1, 16, 4)
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3))
    codes = np.asarray(vqgan.encode(images.astype("float32")))
    assert codes.shape == (2, 64) and codes.min() >= 0 and codes.max() < 1000
    vqgan.save_to_preset(str(tmp_path / "fsq"))
    loaded = VQGAN.from_preset(str(tmp_path / "fsq"))
    assert loaded.fsq_levels == (8, 5, 5, 5)
    np.testing.assert_array_equal(
        np.asarray(loaded.encode(images.astype("float32"))), codes
    )


def test_bad_levels_and_inputs_raise():
    with pytest.raises(ValueError, match=r"non-empty sequence of ints >= 2"):
        FiniteScalarQuantizer(())
    with pytest.raises(ValueError, match=r"one channel per level \(3"):
        FiniteScalarQuantizer(LEVELS)(np.zeros((2, 4), "float32"))
