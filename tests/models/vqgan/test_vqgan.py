import json

import keras
import keras_hub
import numpy as np
import pytest

from keras_uio.convert.checkpoint import read_checkpoint_shapes
from keras_uio.convert.vqgan_weights import load_vqgan_checkpoint
from keras_uio.models.vqgan.vqgan import VQGAN
from keras_uio.models.vqgan.vqgan_config import count_vqgan_parameters
from keras_uio.models.vqgan.vqgan_presets import vqgan_presets
from keras_uio.testing import assert_vqgan_codes_match
from tests.conftest import SMALL_VQGAN


def _jit(function):
    """`jax.jit(function)` on JAX (one compile, faster than eager here)."""
    if keras.config.backend() != "jax":
        return function
    import jax

    return jax.jit(function)


@pytest.fixture(scope="module")
def small():
    keras.utils.set_random_seed(0)
    return VQGAN(**SMALL_VQGAN)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def tiny(reference_checkpoint):
    return load_vqgan_checkpoint(reference_checkpoint)


def test_reference_codes_exact_and_decode_close(tiny, reference_io):
    images = reference_io["in/image_decoder_targets"]
    codes = np.asarray(_jit(tiny.encode)(images))
    # Equal except at a proven float32 tie of two codebook distances (one
    # known: row 0, position 184, flips on some CPUs).
    assert_vqgan_codes_match(tiny, images, codes, reference_io["out/vae_codes"])
    decoded = np.asarray(_jit(tiny.decode)(reference_io["out/vae_codes"]))
    expected = reference_io["out/vae_decoded_from_codes"]
    assert decoded.shape == expected.shape
    assert np.abs(decoded - expected).max() <= 1e-4


def test_parameter_counts(tiny, reference_checkpoint):
    big = vqgan_presets["vqgan_imagenet_f16_16384"]
    assert count_vqgan_parameters(big["config"]) == 76_073_859
    assert big["metadata"]["params"] == 76_073_859
    shapes = read_checkpoint_shapes(reference_checkpoint)
    in_checkpoint = sum(
        int(np.prod(s)) for p, s in shapes.items() if p[0] == "discrete_vae"
    )
    config = vqgan_presets["vqgan_tiny"]["config"]
    assert count_vqgan_parameters(config) == in_checkpoint
    assert tiny.count_params() == in_checkpoint
    assert count_vqgan_parameters(SMALL_VQGAN) == VQGAN(**SMALL_VQGAN).count_params()


@pytest.mark.slow
def test_built_parameter_count_of_the_imagenet_preset():
    config = vqgan_presets["vqgan_imagenet_f16_16384"]["config"]
    assert VQGAN(**config).count_params() == 76_073_859


def test_functional_outputs_match_encode_and_decode(small, images):
    outputs = small(images)
    assert set(outputs) == {"codes", "reconstruction"}
    codes = np.asarray(small.encode(images))
    assert codes.shape == (2, 256) and codes.dtype == np.int32
    assert codes.min() >= 0 and codes.max() < 64
    np.testing.assert_array_equal(np.asarray(outputs["codes"]), codes)
    decoded = np.asarray(small.decode(codes))
    assert decoded.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(
        np.asarray(outputs["reconstruction"]), decoded, atol=1e-4
    )


def test_eager_and_jit_agree(small, images):
    jax = pytest.importorskip("jax")
    if keras.config.backend() != "jax":
        pytest.skip("jit check written for JAX")
    codes = np.asarray(small.encode(images))
    jitted = np.asarray(jax.jit(small.encode)(images))
    np.testing.assert_array_equal(jitted, codes)
    np.testing.assert_allclose(
        np.asarray(jax.jit(small.decode)(codes)),
        np.asarray(small.decode(codes)),
        atol=1e-5,
    )


def test_config_round_trip(small):
    config = small.get_config()
    json.dumps(config)
    clone = VQGAN.from_config(config)
    assert clone.get_config() == config
    for field, value in SMALL_VQGAN.items():
        expected = list(value) if isinstance(value, tuple) else value
        assert config[field] == expected


def test_norm_groups_reach_every_group_normalization():
    vqgan = VQGAN(**{**SMALL_VQGAN, "channels": 24, "norm_groups": 8})
    norms = [
        layer
        for model in (vqgan.encoder, vqgan.decoder)
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.GroupNormalization)
    ]
    assert len(norms) > 10 and {n.groups for n in norms} == {8}
    config = vqgan.get_config()
    assert config["norm_groups"] == 8
    assert VQGAN.from_config(config).get_config() == config
    assert VQGAN(**SMALL_VQGAN).norm_groups == 32  # the original's


def test_save_to_preset_and_from_preset(small, images, tmp_path):
    small.save_to_preset(str(tmp_path))
    restored = keras_hub.models.Backbone.from_preset(str(tmp_path))
    assert isinstance(restored, VQGAN)
    codes = small.encode(images)
    np.testing.assert_array_equal(
        np.asarray(restored.encode(images)), np.asarray(codes)
    )
    np.testing.assert_array_equal(
        np.asarray(restored.decode(codes)), np.asarray(small.decode(codes))
    )


def test_bfloat16_forward_finite_and_close(small, images):
    half = VQGAN(**SMALL_VQGAN, dtype="mixed_bfloat16")
    half.set_weights(small.get_weights())
    codes = np.asarray(small.encode(images))
    expected = np.asarray(small.decode(codes))
    decoded = np.asarray(_jit(half.decode)(codes), dtype="float32")
    assert np.isfinite(decoded).all()
    scale = np.abs(expected).max()
    assert np.abs(decoded - expected).max() <= 0.05 * scale
    half_codes = np.asarray(_jit(half.encode)(images))
    assert half_codes.min() >= 0 and half_codes.max() < 64
    assert (half_codes == codes).mean() > 0.5


@pytest.mark.parametrize(
    "shape, dtype, message",
    [
        ((32, 32, 3), "float32", r"must have shape \[batch, 32, 32, 3\]"),
        ((2, 64, 64, 3), "float32", r"Received: images.shape=\(2, 64, 64, 3\)"),
        ((2, 32, 32, 1), "float32", r"images.shape=\(2, 32, 32, 1\)"),
        ((2, 32, 32, 3), "int32", r"`images` must be a floating.*int32"),
    ],
)
def test_encode_rejects_bad_images(small, shape, dtype, message):
    with pytest.raises(ValueError, match=message):
        small.encode(np.zeros(shape, dtype))


@pytest.mark.parametrize(
    "codes, message",
    [
        (np.zeros((256,), "int32"), r"`codes` must have shape \[batch, 256\]"),
        (np.zeros((2, 255), "int32"), r"Received: codes.shape=\(2, 255\)"),
        (np.zeros((2, 256), "float32"), r"integer.*codes.dtype=float32"),
        (np.full((2, 256), 64, "int32"), r"\[0, 64\).*codes in \[64, 64\]"),
        (np.full((1, 256), -1, "int64"), r"\[0, 64\).*codes in \[-1, -1\]"),
    ],
)
def test_decode_rejects_bad_codes(small, codes, message):
    with pytest.raises(ValueError, match=message):
        small.decode(codes)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            dict(fsq_levels=(8, 5, 5, 5)),
            r"`codebook_size` must be their product.*codebook_size=1000, "
            r"embed_dim=4",
        ),
        (dict(fsq_levels=(8, 1)), r"`fsq_levels` must be a non-empty sequence"),
        (dict(fsq_levels=8), r"`fsq_levels` must be a sequence of ints"),
        (dict(image_size=33), r"`image_size` must be divisible by 2\*\*1"),
        (dict(channels=48), r"divisible by `norm_groups`.*norm_groups=32"),
        (dict(norm_groups=6), r"channel_multipliers\[0\]=1, norm_groups=6"),
        (dict(norm_groups=0), r"`norm_groups` must be an int >= 1"),
        (dict(channel_multipliers=()), r"`channel_multipliers` must not be"),
        (dict(num_res_blocks=0), r"`num_res_blocks` must be an int >= 1"),
        (dict(codebook_size=2.5), r"`codebook_size` must be an int"),
        (dict(attention_resolutions=16), r"`attention_resolutions` must be a"),
    ],
)
def test_bad_config_raises(change, message):
    with pytest.raises(ValueError, match=message):
        VQGAN(**{**SMALL_VQGAN, **change})
