"""Output projection and token cross-entropy in chunks of classes."""

import keras
from keras import ops

# Classes per chunk, about: `[2048, 1024]` float32 logits are 8 MB.
CLASS_CHUNK = 1024


def _class_chunk(num_ids):
    """The largest divisor of `num_ids` up to `CLASS_CHUNK`; all of them
    when that divisor would be `CLASS_CHUNK / 4` or less."""
    for width in range(min(CLASS_CHUNK, num_ids), CLASS_CHUNK // 4, -1):
        if num_ids % width == 0:
            return width
    return num_ids


def _logits(rows, table):
    """`rows @ table^T` in the rows' dtype, float32 result."""
    return ops.cast(ops.matmul(rows, ops.transpose(table)), "float32")


def _terms(logits, targets):
    picked = ops.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    normaliser = ops.logsumexp(logits, axis=-1)
    hits = ops.cast(ops.argmax(logits, axis=-1) == targets, "float32")
    return normaliser - picked, hits, normaliser


def projected_cross_entropy(rows, table, targets, first_id=0, num_ids=None):
    """Cross-entropy of `targets` under the logits `rows @ table^T`.

    Args:
        rows: `[M, E]` output states (already scaled, in the compute dtype).
        table: `[V, E]` output embeddings, same dtype as `rows`.
        targets: int `[M]`, indices into the `num_ids` rows of `table` from
            `first_id` on (in range).
        first_id, num_ids: static ints, the rows of `table` that are the
            classes (default: all). Sliced inside, so that no copy of the
            slice is kept from the forward pass to the backward.

    Returns:
        `(losses, hits)`, float32 `[M]`: `logsumexp(logits) - logits[target]`
        and whether the target is the argmax, with the logits computed in
        float32 from the `rows.dtype` product.

    On JAX the `[M, N]` logits never exist whole: the forward pass computes
    them about `CLASS_CHUNK` classes at a time (a running log-sum-exp and
    argmax), the backward pass recomputes them (one more product of the
    forward's size) the same way, writing the gradient as `(softmax -
    one_hot) * g` in one pass. Class rows are read straight from `table`,
    each class's gradient is written once. The training step's memory peak
    is at the start of the backward pass, with every stored activation
    live; materialised, the image logits (8 x 256 positions x 16384 codes),
    their gradient and XLA's transposed copy of it were 128 MB each there.
    Only `rows`, `table` and the `[M]` log-normalisers are kept for the
    backward pass; no copy of the class rows is. Other backends compute the
    logits whole and differentiate the formula.

    Example:

    ```python
    import numpy as np
    rows = np.eye(2, 3, dtype="float32")
    table = np.log(np.array([[0.5, 0, 0], [0.25, 0, 0], [0.25, 0, 0]]) + 1e-30)
    losses, hits = projected_cross_entropy(rows, table.astype("float32"), np.array([0, 1]))
    # losses[0] = -log(0.5); row 1 has equal logits, losses[1] = log(3)
    ```
    """
    num_ids = num_ids or ops.shape(table)[0] - first_id
    if keras.backend.backend() != "jax":
        own = table[first_id : first_id + num_ids]
        losses, hits, _ = _terms(_logits(rows, own), targets)
        return losses, hits
    return _chunked(first_id, num_ids)(rows, table, ops.cast(targets, "int32"))


def _chunked(first_id, num_ids):
    import jax
    import jax.numpy as jnp

    width = _class_chunk(num_ids)

    def classes_at(table, index):
        start = first_id + index * width
        return jax.lax.dynamic_slice_in_dim(table, start, width)

    def forward(rows, table, targets):
        def chunk(carry, index):
            top, total, picked, best_id = carry
            logits = _logits(rows, classes_at(table, index))
            chunk_top = jnp.max(logits, axis=1)
            new_top = jnp.maximum(top, chunk_top)
            total = total * jnp.exp(top - new_top) + jnp.sum(
                jnp.exp(logits - new_top[:, None]), axis=1
            )
            local = targets - index * width
            inside = (local >= 0) & (local < width)
            value = jnp.take_along_axis(
                logits, jnp.clip(local, 0, width - 1)[:, None], axis=1
            )[:, 0]
            picked = jnp.where(inside, value, picked)
            # Strictly greater: ties keep the first id, as `argmax` does.
            best_id = jnp.where(
                chunk_top > top,
                index * width + jnp.argmax(logits, axis=1).astype(targets.dtype),
                best_id,
            )
            return (new_top, total, picked, best_id), None

        size = rows.shape[0]
        start = (
            jnp.full((size,), -jnp.inf, "float32"),
            jnp.zeros((size,), "float32"),
            jnp.zeros((size,), "float32"),
            jnp.zeros((size,), targets.dtype),
        )
        (top, total, picked, best_id), _ = jax.lax.scan(
            chunk, start, jnp.arange(num_ids // width)
        )
        normaliser = top + jnp.log(total)
        hits = (best_id == targets).astype("float32")
        return (normaliser - picked, hits), (rows, table, targets, normaliser)

    def backward(saved, cotangents):
        rows, table, targets, normaliser = saved
        g = cotangents[0]
        # Depending on the cotangent, the recomputed logits cannot be merged
        # with the forward's (XLA's CSE does that when a loop runs once).
        rows = rows + (g[0] * 0).astype(rows.dtype)

        def chunk(rows_grad, index):
            classes = classes_at(table, index)
            logits = _logits(rows, classes)
            ids = index * width + jax.lax.broadcasted_iota(
                targets.dtype, logits.shape, 1
            )
            hit = (ids == targets[:, None]).astype("float32")
            grad = (jnp.exp(logits - normaliser[:, None]) - hit) * g[:, None]
            grad = grad.astype(rows.dtype)
            rows_grad = rows_grad + jnp.matmul(
                grad, classes, preferred_element_type="float32"
            )
            return rows_grad, jnp.matmul(grad.T, rows, preferred_element_type="float32")

        rows_grad, classes_grad = jax.lax.scan(
            chunk, jnp.zeros(rows.shape, "float32"), jnp.arange(num_ids // width)
        )
        classes_grad = classes_grad.reshape(num_ids, -1).astype(table.dtype)
        table_grad = jnp.pad(
            classes_grad, [(first_id, table.shape[0] - first_id - num_ids), (0, 0)]
        )
        return rows_grad.astype(rows.dtype), table_grad, None

    @jax.custom_vjp
    def fused(rows, table, targets):
        return forward(rows, table, targets)[0]

    fused.defvjp(forward, backward)
    return fused
