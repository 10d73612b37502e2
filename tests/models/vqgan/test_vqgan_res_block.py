import keras
import numpy as np
import pytest

from keras_uio.models.vqgan.vqgan_res_block import VQGANResBlock


def _inputs(channels, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, 8, 8, channels)).astype("float32")


def test_output_shape_and_shortcut_only_when_channels_change():
    same = VQGANResBlock(32)
    wider = VQGANResBlock(64)
    assert same(_inputs(32)).shape == (2, 8, 8, 32)
    assert wider(_inputs(32)).shape == (2, 8, 8, 64)
    assert same.nin_shortcut is None
    assert tuple(wider.nin_shortcut.kernel.shape) == (1, 1, 32, 64)
    names = sorted(w.path.split("/", 1)[1] for w in wider.weights)
    assert "nin_shortcut/kernel" in names and "norm1/gamma" in names


def _norm_swish(x, gamma, beta, groups=32, eps=1e-6):
    b, h, w, c = x.shape
    g = x.reshape(b, h * w, groups, c // groups).astype("float64")
    mean = g.mean(axis=(1, 3), keepdims=True)
    var = (g**2).mean(axis=(1, 3), keepdims=True) - mean**2
    y = ((g - mean) / np.sqrt(var + eps)).reshape(b, h, w, c) * gamma + beta
    return y / (1 + np.exp(-y))


def _conv_same(x, kernel, bias):
    k = kernel.shape[0]
    pad = k // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for dy in range(k):
        for dx in range(k):
            out += xp[:, dy : dy + h, dx : dx + w] @ kernel[dy, dx]
    return out + bias


def test_matches_numpy_reference():
    block = VQGANResBlock(64)
    x = _inputs(32, seed=1)
    block.build(x.shape)
    rng = np.random.default_rng(2)
    for weight in block.weights:  # perturb norms so a swap would show
        weight.assign(
            rng.normal(size=weight.shape).astype("float32") * 0.2
            + (1.0 if "gamma" in weight.path else 0.0)
        )
    get = lambda layer, name: np.asarray(getattr(layer, name))  # noqa: E731
    h = _conv_same(
        _norm_swish(x, get(block.norm1, "gamma"), get(block.norm1, "beta")),
        get(block.conv1, "kernel"),
        get(block.conv1, "bias"),
    )
    h = _conv_same(
        _norm_swish(h, get(block.norm2, "gamma"), get(block.norm2, "beta")),
        get(block.conv2, "kernel"),
        get(block.conv2, "bias"),
    )
    expected = (
        x @ get(block.nin_shortcut, "kernel")[0, 0]
        + get(block.nin_shortcut, "bias")
        + h
    )
    np.testing.assert_allclose(np.asarray(block(x)), expected, atol=2e-4)


def test_config_round_trip():
    block = VQGANResBlock(64, name="down_2_block_0", dtype="mixed_bfloat16")
    clone = VQGANResBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    assert clone.dtype_policy.name == "mixed_bfloat16"
    assert clone.conv1.dtype_policy.name == "mixed_bfloat16"
    x = _inputs(32)
    block(x)
    clone(x)
    clone.set_weights(block.get_weights())
    np.testing.assert_array_equal(np.asarray(block(x)), np.asarray(clone(x)))
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(block)
    )
    assert type(restored) is VQGANResBlock


def test_bfloat16_norm_statistics_in_float32():
    block = VQGANResBlock(32, dtype="mixed_bfloat16")
    x = _inputs(32) * 1000.0 + 3000.0  # large mean: bf16 statistics fail
    y = block(x)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert np.isfinite(np.asarray(y, dtype="float32")).all()


def test_bad_filters():
    with pytest.raises(ValueError, match="filters"):
        VQGANResBlock(0)
