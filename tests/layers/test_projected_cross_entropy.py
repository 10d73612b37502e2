import keras
import numpy as np
import pytest
from keras import ops

from keras_uio.layers import projected_cross_entropy as pce
from keras_uio.layers.projected_cross_entropy import projected_cross_entropy


def _data(rows=300, width=8, ids=40, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(rows, width)).astype("float32"),
        rng.normal(size=(ids, width)).astype("float32"),
        rng.integers(0, ids, size=(rows,)).astype("int32"),
    )


def _reference(rows, table, targets):
    logits = rows.astype("float64") @ table.astype("float64").T
    top = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(-1)) + top[:, 0]
    losses = lse - logits[np.arange(len(targets)), targets]
    hits = (logits.argmax(-1) == targets).astype("float32")
    return losses, hits, logits


def test_values_equal_the_formula_across_chunk_edges(monkeypatch):
    # Classes 10 at a time: the running log-sum-exp and argmax cross chunks.
    monkeypatch.setattr(pce, "CLASS_CHUNK", 16)
    rows, table, targets = _data()
    losses, hits = projected_cross_entropy(rows, table, targets)
    ref_losses, ref_hits, _ = _reference(rows, table, targets)
    np.testing.assert_allclose(
        ops.convert_to_numpy(losses), ref_losses, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(hits), ref_hits)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX custom gradient")
@pytest.mark.parametrize("first_id, num_ids", [(0, None), (8, 30)])
def test_gradient_equals_the_formulas(monkeypatch, first_id, num_ids):
    import jax
    import jax.numpy as jnp

    # Class chunks of 10 of the 40 ids, or of 15 of the 30 in [8, 38).
    monkeypatch.setattr(pce, "CLASS_CHUNK", 16)
    rows, table, targets = _data()
    stop = first_id + (num_ids or len(table))
    targets = targets % (stop - first_id)
    weights = np.random.default_rng(1).uniform(size=len(targets)).astype("float32")

    def fused(rows, table):
        losses, _ = projected_cross_entropy(rows, table, targets, first_id, num_ids)
        return jnp.sum(losses * weights)

    def plain(rows, table):
        logits = rows @ table[first_id:stop].T
        picked = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
        return jnp.sum((jax.nn.logsumexp(logits, axis=-1) - picked) * weights)

    got = jax.jit(jax.grad(fused, argnums=(0, 1)))(rows, table)
    want = jax.grad(plain, argnums=(0, 1))(rows, table)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-6)
    # By hand: d loss / d logits = (softmax - one_hot) * weight; nothing
    # reaches the table rows outside [first_id, stop).
    own = table[first_id:stop]
    _, _, logits = _reference(rows, own, targets)
    softmax = np.exp(logits - logits.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    softmax[np.arange(len(targets)), targets] -= 1
    d_logits = softmax * weights[:, None]
    d_table = np.zeros_like(table)
    d_table[first_id:stop] = d_logits.T @ rows
    np.testing.assert_allclose(np.asarray(got[0]), d_logits @ own, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got[1]), d_table, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX custom gradient")
def test_no_logits_sized_buffer_in_the_compiled_gradient(monkeypatch):
    """The point of the chunking: XLA's gradient holds a chunk of logits at
    a time, where the formula's holds all of them (several times)."""
    import jax
    import jax.numpy as jnp

    monkeypatch.setattr(pce, "CLASS_CHUNK", 256)
    rows, table, targets = _data(rows=1024, width=16, ids=2048)

    def fused(rows, table):
        return jnp.sum(projected_cross_entropy(rows, table, targets)[0])

    def plain(rows, table):
        logits = rows @ table.T
        picked = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
        return jnp.sum(jax.nn.logsumexp(logits, axis=-1) - picked)

    def temp_bytes(fn):
        compiled = jax.jit(jax.grad(fn, argnums=(0, 1))).lower(rows, table).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    logits_bytes = 1024 * 2048 * 4
    assert temp_bytes(plain) >= logits_bytes
    assert temp_bytes(fused) < logits_bytes / 4
