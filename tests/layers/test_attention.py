import numpy as np
import pytest

from keras_uio.layers import attention
from keras_uio.layers.attention import UnifiedIOAttention
from keras_uio.layers.attention_bias import MASKED


def _causal_bias(length):
    idx = np.arange(length)
    return np.where(idx[:, None] >= idx[None, :], 0.0, MASKED)[None, None].astype(
        "float32"
    )


def test_no_scaling_and_bias_is_added():
    layer = UnifiedIOAttention(num_heads=1, head_dim=2)
    x = np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")
    layer(x, x, np.zeros((1, 1, 2, 2), "float32"))
    eye = np.eye(2, dtype="float32")[:, None, :]
    for dense in (layer.query, layer.key, layer.value):
        dense.kernel.assign(eye * 3.0)
    layer.output_dense.kernel.assign(np.eye(2, dtype="float32")[None])
    bias = np.array([[[[0.0, -2.0], [1.0, 0.0]]]], "float32")
    out = np.asarray(layer(x, x, bias))
    # logits = q.k (9 on the diagonal, unscaled) + bias
    logits = np.array([[9.0, -2.0], [1.0, 9.0]])
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    np.testing.assert_allclose(out[0], weights @ (3 * np.eye(2)), rtol=1e-5)


def test_cached_self_attention_equals_full_causal():
    rng = np.random.default_rng(0)
    layer = UnifiedIOAttention(num_heads=2, head_dim=3)
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    bias = _causal_bias(5) + rng.normal(size=(1, 2, 5, 5)).astype("float32")
    full = np.asarray(layer(x, x, bias))
    cache = np.zeros((2, 2, 2, 5, 3), "float32")  # [B, 2, heads, L, head_dim]
    for t in range(5):
        step, cache = layer(
            x[:, t : t + 1],
            x[:, t : t + 1],
            bias[:, :, t : t + 1],
            cache=cache,
            cache_update_index=t,
        )
        np.testing.assert_allclose(np.asarray(step)[:, 0], full[:, t], atol=1e-5)


def test_static_cross_attention_cache():
    rng = np.random.default_rng(1)
    layer = UnifiedIOAttention(num_heads=2, head_dim=3)
    x = rng.normal(size=(1, 2, 4)).astype("float32")
    memory = rng.normal(size=(1, 6, 4)).astype("float32")
    bias = np.zeros((1, 1, 2, 6), "float32")
    full = np.asarray(layer(x, memory, bias))
    cache = layer.project_key_value(memory)
    cached, _ = layer(x, attention_bias=bias, cache=cache)
    np.testing.assert_allclose(np.asarray(cached), full, atol=1e-6)


def _numpy_attention(layer, x, memory, bias):
    """The layer's attention written out in NumPy (no scaling, as T5)."""

    def project(dense, inputs):  # [B, L, E] x [E, heads, D] -> [B, heads, L, D]
        return np.einsum("ble,ehd->bhld", inputs, np.asarray(dense.kernel))

    q, k, v = (
        project(layer.query, x),
        project(layer.key, memory),
        project(layer.value, memory),
    )
    logits = np.einsum("bhqd,bhkd->bhqk", q, k).astype("float64")
    if bias is not None:
        logits = logits + bias
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attended = np.einsum("bhqk,bhkd->bhqd", weights, v)
    return np.einsum("bhqd,hde->bqe", attended, np.asarray(layer.output_dense.kernel))


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("bias_shape", ["full", "shared", "padding", "none"])
def test_block_by_block_attention_equals_the_whole(monkeypatch, batch, bias_shape):
    # Large attention runs one example (or, for one example, one head) at a
    # time; force that path and the whole-batch one on a small layer.
    rng = np.random.default_rng(2)
    heads, lq, lk = 3, 4, 6
    layer = UnifiedIOAttention(num_heads=heads, head_dim=2)
    x = rng.normal(size=(batch, lq, 5)).astype("float32")
    memory = rng.normal(size=(batch, lk, 5)).astype("float32")
    bias = {
        "full": rng.normal(size=(batch, heads, lq, lk)),
        "shared": rng.normal(size=(1, heads, lq, lk)),
        "padding": np.where(rng.random((batch, 1, 1, lk)) < 0.3, MASKED, 0.0),
        "none": None,
    }[bias_shape]
    bias = None if bias is None else bias.astype("float32")
    layer(x, memory, bias)  # builds
    expected = _numpy_attention(layer, x, memory, bias)
    for threshold in (0, 1 << 40):  # every attention mapped, none mapped
        monkeypatch.setattr(attention, "_MAP_MIN_ELEMENTS", threshold)
        got = np.asarray(layer(x, memory, bias))
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
