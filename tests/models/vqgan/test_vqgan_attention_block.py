import keras
import numpy as np

from keras_uio.models.vqgan.vqgan_attention_block import VQGANAttentionBlock


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, 4, 4, 32)).astype("float32")


def _reference(x, layer):
    w = lambda lay, name: np.asarray(getattr(lay, name), "float64")  # noqa
    b, h, wd, c = x.shape
    g = x.reshape(b, h * wd, 32, c // 32).astype("float64")
    mean = g.mean(axis=(1, 3), keepdims=True)
    var = (g**2).mean(axis=(1, 3), keepdims=True) - mean**2
    n = ((g - mean) / np.sqrt(var + 1e-6)).reshape(b, h * wd, c)
    n = n * w(layer.norm, "gamma") + w(layer.norm, "beta")
    proj = lambda conv, v: v @ w(conv, "kernel")[0, 0] + w(conv, "bias")  # noqa
    q, k, v = proj(layer.q, n), proj(layer.k, n), proj(layer.v, n)
    logits = np.einsum("bqc,bkc->bqk", q, k) * c**-0.5
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = proj(layer.proj_out, weights @ v)
    return x + out.reshape(x.shape)


def test_matches_numpy_reference():
    layer = VQGANAttentionBlock()
    x = _inputs()
    layer.build(x.shape)
    rng = np.random.default_rng(3)
    for weight in layer.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.5)
    y = np.asarray(layer(x))
    assert y.shape == x.shape
    np.testing.assert_allclose(y, _reference(x, layer), atol=1e-4)


def test_attention_mixes_positions():
    layer = VQGANAttentionBlock()
    x = _inputs()
    y = np.asarray(layer(x))
    x2 = x.copy()
    x2[:, 0, 0] += 5.0  # one position changes -> every position changes
    y2 = np.asarray(layer(x2))
    assert (np.abs(y2 - y)[:, 3, 3] > 0).any()
    # samples do not mix
    np.testing.assert_allclose(np.asarray(layer(x[1:])), y[1:], rtol=1e-5, atol=1e-5)


def test_config_round_trip_and_names():
    layer = VQGANAttentionBlock(name="mid_attn_1", dtype="mixed_bfloat16")
    clone = VQGANAttentionBlock.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone.build((None, 4, 4, 32))
    assert clone.q.dtype_policy.name == "mixed_bfloat16"
    names = sorted(w.path.split("/", 1)[1] for w in clone.weights)
    assert names == sorted(
        [f"{n}/{v}" for n in ("q", "k", "v", "proj_out") for v in ("kernel", "bias")]
        + ["norm/gamma", "norm/beta"]
    )
    y = clone(_inputs())
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert np.isfinite(np.asarray(y, "float32")).all()
