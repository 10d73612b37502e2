import functools

import keras
from keras import ops

from keras_uio.layers.host_initializer import HostInitializer
from keras_uio.layers.quantized_weights import int8_matmul
from keras_uio.layers.quantized_weights import is_int8
from keras_uio.layers.recompute import recompute_in_backward
from keras_uio.layers.recompute import variables_of

# Attention over batches whose `[heads, Lq, Lk]` logits have at least this
# many elements runs one example at a time (see `UnifiedIOAttention.call`).
_MAP_MIN_ELEMENTS = 1 << 18


@keras.saving.register_keras_serializable(package="keras_uio")
class UnifiedIOAttention(keras.layers.Layer):
    """Multi-head attention with additive biases and an optional KV cache.

    Bias-free query/key/value/output projections and no `1/sqrt(head_dim)`
    scaling (T5 folds it into the query initialisation). The caller supplies
    one float32 `attention_bias` holding masks (`-1e10`) and position biases;
    logits and softmax are computed in float32.

    Caches are `[batch, 2, num_heads, length, head_dim]` (keys, values):
    - self-attention decoding passes `cache` and `cache_update_index`; the
      new keys/values are written at that index and the cache is returned;
    - cross-attention passes a cache made once by `project_key_value` and no
      index; it is only read.

    Call arguments:
        query_inputs: `[B, Lq, hidden_dim]`.
        key_value_inputs: `[B, Lk, hidden_dim]`, or `None` for
            self-attention (keys and values from the normalised queries'
            inputs).
        attention_bias: float32, broadcastable to `[B, heads, Lq, Lk]`.
        cache, cache_update_index: see above.
        norm: optional layer (the block's `RMSNorm`) applied to
            `query_inputs` first. Given here rather than applied by the
            caller, training recomputes it in the backward pass instead of
            storing its output.

    Args:
        num_heads: int.
        head_dim: int. Need not equal `hidden_dim / num_heads`.

    Example:

    ```python
    import numpy as np
    attention = UnifiedIOAttention(num_heads=2, head_dim=4)
    x = np.random.rand(1, 5, 8).astype("float32")
    attention(x, x, np.zeros((1, 1, 5, 5), "float32")).shape  # (1, 5, 8)
    ```
    """

    def __init__(self, num_heads, head_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim

    def _projection(self, name, scale=1.0):
        # Time-first output, made heads-first by `_heads_first`: with the
        # heads-first equation ("btd,dnh->bnth") XLA:CPU copied every
        # `[hidden, heads, head_dim]` kernel into a transposed layout at each
        # decode step (measured 2.6x slower projections in a decode loop).
        return keras.layers.EinsumDense(
            "btd,dnh->btnh",
            output_shape=(None, self.num_heads, self.head_dim),
            kernel_initializer=HostInitializer("normal", scale, mode="fan_in"),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_inputs_shape, *args, **kwargs):
        hidden_dim = query_inputs_shape[-1]
        # T5 folds 1/sqrt(head_dim) into the query initialisation.
        self.query = self._projection("query", scale=1.0 / self.head_dim)
        self.key = self._projection("key")
        self.value = self._projection("value")
        self.output_dense = keras.layers.EinsumDense(
            "btnh,nhd->btd",
            output_shape=(None, hidden_dim),
            kernel_initializer=HostInitializer("normal", mode="fan_in", input_axes=2),
            dtype=self.dtype_policy,
            name="output",
        )
        for layer in (self.query, self.key, self.value):
            layer.build(query_inputs_shape)
        self.output_dense.build((None, None, self.num_heads, self.head_dim))
        self.built = True

    def project_key_value(self, inputs):
        """Keys and values of `inputs` as a `[B, 2, heads, L, head_dim]` cache."""
        key, value = _heads_first(self.key(inputs)), _heads_first(self.value(inputs))
        return ops.stack([key, value], axis=1)

    def call(
        self,
        query_inputs,
        key_value_inputs=None,
        attention_bias=None,
        cache=None,
        cache_update_index=None,
        norm=None,
    ):
        if cache is None:
            # Training and full-sequence passes: the backward pass recomputes
            # the norm (not storing its output) and the attention weights.
            query, key, value = recompute_in_backward(
                functools.partial(self._project, norm=norm),
                variables=variables_of(norm, self.query, self.key, self.value),
            )(query_inputs, key_value_inputs)
        else:
            inputs = norm(query_inputs) if norm is not None else query_inputs
            query = _heads_first(self.query(inputs))
            if cache_update_index is None:
                key, value = cache[:, 0], cache[:, 1]
            else:
                # One in-place update of the whole cache with the new step's
                # keys and values (no copy of the cache per step).
                update = self.project_key_value(
                    inputs if key_value_inputs is None else key_value_inputs
                )
                cache = ops.slice_update(
                    cache, (0, 0, 0, cache_update_index, 0), update
                )
                key, value = cache[:, 0], cache[:, 1]
        # Attention runs heads-first, [B, heads, L, head_dim], as the caches
        # keep it (a decode step's `[B, 1, heads, head_dim]` projection
        # becomes that by a reshape).
        batch, heads, query_length = query.shape[:3]
        key_length = key.shape[2]
        sizes = (batch, heads, query_length, key_length)
        if all(isinstance(n, int) for n in sizes) and (
            heads * query_length * key_length >= _MAP_MIN_ELEMENTS
        ):
            # One example at a time (one head at a time for one example):
            # a block stays in cache, where the whole `[B, heads, Lq, Lk]`
            # one would not (measured ~1.7x faster for the attention core
            # at batch 8; text b1 generation 0.463 -> 0.439 s by heads,
            # while at batch 8 heads were 2.5% slower than examples).
            attend = self._attend_each
        else:
            attend = self._attend
        # The backward pass recomputes the `[B, heads, Lq, Lk]` weights and
        # the output projection's input, differentiating the whole-batch
        # form: the gradient of the mapped one stacks every example's
        # residuals (measured 2 GB more at batch 8).
        outputs = recompute_in_backward(
            lambda *args: self._output(attend(*args)),
            variables=self.output_dense.variables,
            differentiate=lambda *args: self._output(self._attend(*args)),
        )(query, key, value, attention_bias)
        if cache is not None:
            return outputs, cache
        return outputs

    def _project(self, query_inputs, key_value_inputs, norm):
        """Queries, keys and values; self-attention without `key_value_inputs`."""
        inputs = norm(query_inputs) if norm is not None else query_inputs
        if key_value_inputs is None:
            key_value_inputs = inputs
        return (
            _heads_first(self.query(inputs)),
            _heads_first(self.key(key_value_inputs)),
            _heads_first(self.value(key_value_inputs)),
        )

    def _output(self, attended):
        """`[B, heads, L, head_dim]` -> `[B, L, hidden_dim]`.

        One matmul with the `[heads, head_dim, hidden_dim]` kernel viewed as
        `[heads * head_dim, hidden_dim]`: XLA:CPU copied the kernel at every
        decode step for the two-axis contraction of the equivalent einsum
        (`output_dense`'s own call; measured 2.8x slower in a decode loop).
        `output_dense.kernel` includes a LoRA update when one is enabled.

        After `model.quantize("int8")` the kernel is int8 values and a
        per-output scale: the same one matmul over the int8 values viewed
        as `[heads * head_dim, hidden_dim]`, scaled afterwards
        (`int8_matmul`, which also quantizes the rows when the layer's
        config does). Other quantization modes go through the layer's own
        call.
        """
        batch, heads, length, head_dim = ops.shape(attended)
        rows = ops.reshape(_heads_first(attended), (batch, length, heads * head_dim))
        dense = self.output_dense
        if dense.quantization_mode is None:
            kernel = ops.cast(dense.kernel, self.compute_dtype)
            return ops.matmul(rows, ops.reshape(kernel, (heads * head_dim, -1)))
        if is_int8(dense):
            return int8_matmul(
                rows,
                ops.reshape(dense._kernel, (heads * head_dim, -1)),
                ops.reshape(dense.kernel_scale, (-1,)),
                dense.inputs_quantizer,
                self.compute_dtype,
            )
        return dense(_heads_first(attended))

    def _attend(self, query, key, value, attention_bias):
        """`[B, h, Lq, D]`, `[B, h, Lk, D]`, `[B, h, Lk, D]` -> `[B, h, Lq, D]`."""
        logits = ops.cast(ops.einsum("bhqd,bhkd->bhqk", query, key), "float32")
        if attention_bias is not None:
            logits = logits + attention_bias
        # Softmax with the normalisation deferred past the value product:
        # dividing the `[B, heads, Lq, head_dim]` result instead of the
        # `[B, heads, Lq, Lk]` weights saves one pass over the largest tensor.
        logits = logits - ops.max(logits, axis=-1, keepdims=True)
        weights = ops.exp(logits)
        denominator = ops.sum(weights, axis=-1, keepdims=True)
        attended = ops.matmul(ops.cast(weights, self.compute_dtype), value)
        return ops.cast(ops.cast(attended, "float32") / denominator, self.compute_dtype)

    def _attend_each(self, query, key, value, attention_bias):
        """`_attend` one example at a time, or one head at a time for a
        single example: the same result, less memory traffic."""
        by_head = query.shape[0] == 1

        def blocks(x):  # the mapped axis first
            return ops.swapaxes(x, 0, 1) if by_head else x

        query, key, value = blocks(query), blocks(key), blocks(value)
        count = query.shape[0]
        bias = None if attention_bias is None else blocks(attention_bias)
        per_block = bias is not None and bias.shape[0] == count
        inputs = (query, key, value, bias) if per_block else (query, key, value)

        def one(xs):
            block_bias = xs[3][None] if per_block else bias
            return self._attend(xs[0][None], xs[1][None], xs[2][None], block_bias)[0]

        return blocks(ops.map(one, inputs))

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "head_dim": self.head_dim})
        return config


def _heads_first(x):
    """`[B, L, heads, head_dim]` <-> `[B, heads, L, head_dim]` (its own
    inverse)."""
    return ops.transpose(x, (0, 2, 1, 3))
