import keras

from keras_uio.layers.attention import UnifiedIOAttention
from keras_uio.layers.gated_gelu_mlp import GatedGeluMLP
from keras_uio.layers.rms_norm import RMSNorm


@keras.saving.register_keras_serializable(package="keras_uio")
class UnifiedIODecoderLayer(keras.layers.Layer):
    """Pre-norm decoder block: self-attention, cross-attention, MLP.

    Cross-attention gets masks only, no position bias (the original's
    `cross_position_{q,k}_linear` weights are never used).

    Call arguments:
        x: `[B, Lq, hidden_dim]` decoder states.
        encoded: `[B, Le, hidden_dim]` encoder output (unused when
            `cross_cache` is given).
        self_attention_bias: float32 `[B or 1, heads or 1, Lq, Lk]`.
        cross_attention_bias: float32 `[B, 1, Lq, Le]` (padding mask).
        self_cache, cross_cache, cache_update_index: for incremental
            decoding; with `self_cache` the call returns
            `(x, new_self_cache)`.

    Example:

    ```python
    import numpy as np
    layer = UnifiedIODecoderLayer(num_heads=2, head_dim=4, intermediate_dim=16)
    x = np.random.rand(1, 3, 8).astype("float32")
    enc = np.random.rand(1, 5, 8).astype("float32")
    out = layer(x, enc, np.zeros((1, 1, 3, 3), "float32"),
                np.zeros((1, 1, 3, 5), "float32"))  # (1, 3, 8)
    ```
    """

    def __init__(self, num_heads, head_dim, intermediate_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.intermediate_dim = intermediate_dim
        policy = self.dtype_policy
        self.self_attention_norm = RMSNorm(dtype=policy, name="self_attention_norm")
        self.self_attention = UnifiedIOAttention(
            num_heads, head_dim, dtype=policy, name="self_attention"
        )
        self.cross_attention_norm = RMSNorm(dtype=policy, name="cross_attention_norm")
        self.cross_attention = UnifiedIOAttention(
            num_heads, head_dim, dtype=policy, name="cross_attention"
        )
        self.mlp_norm = RMSNorm(dtype=policy, name="mlp_norm")
        self.mlp = GatedGeluMLP(intermediate_dim, dtype=policy, name="mlp")

    def build(self, x_shape, *args, **kwargs):
        for layer in (
            self.self_attention_norm,
            self.self_attention,
            self.cross_attention_norm,
            self.cross_attention,
            self.mlp_norm,
            self.mlp,
        ):
            layer.build(x_shape)
        self.built = True

    def call(
        self,
        x,
        encoded,
        self_attention_bias,
        cross_attention_bias,
        self_cache=None,
        cross_cache=None,
        cache_update_index=None,
    ):
        attended = self.self_attention(
            x,
            attention_bias=self_attention_bias,
            cache=self_cache,
            cache_update_index=cache_update_index,
            norm=self.self_attention_norm,
        )
        if self_cache is not None:
            attended, self_cache = attended
        x = x + attended
        if cross_cache is None:
            x = x + self.cross_attention(
                x, encoded, cross_attention_bias, norm=self.cross_attention_norm
            )
        else:
            x = (
                x
                + self.cross_attention(
                    x,
                    attention_bias=cross_attention_bias,
                    cache=cross_cache,
                    norm=self.cross_attention_norm,
                )[0]
            )
        x = x + self.mlp(x, norm=self.mlp_norm)
        if self_cache is not None:
            return x, self_cache
        return x

    def compute_output_spec(self, x, *args, self_cache=None, **kwargs):
        output = keras.KerasTensor(x.shape, self.compute_dtype)
        if self_cache is not None:
            return output, keras.KerasTensor(self_cache.shape, self_cache.dtype)
        return output

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "intermediate_dim": self.intermediate_dim,
            }
        )
        return config
