import keras
from keras import ops

from keras_uio.layers.host_initializer import HostInitializer
from keras_uio.layers.rms_norm import RMSNorm


@keras.saving.register_keras_serializable(package="keras_uio")
class AbsolutePositionBias(keras.layers.Layer):
    """Attention bias from absolute position embeddings.

    `P = RMSNorm(position_rows)`, `Q = P Wq`, `K = P Wk` (bias-free, per
    head), `bias[h, i, j] = Q[i, h] . K[j, h] * (hidden_dim / num_heads)
    ** -0.5`. The scale uses `hidden_dim / num_heads`, not `head_dim`: the
    original's quirk, kept for parity (they differ when
    `num_heads * head_dim != hidden_dim`, as in `uio_small`).

    Args:
        num_heads: int.
        head_dim: int.

    Call arguments:
        position_embeddings: `[1, L, hidden_dim]` raw position rows.

    Returns a float32 `[1, num_heads, L, L]` bias.

    Example:

    ```python
    import numpy as np
    layer = AbsolutePositionBias(num_heads=2, head_dim=4)
    layer(np.random.rand(1, 6, 8).astype("float32")).shape  # (1, 2, 6, 6)
    ```
    """

    def __init__(self, num_heads, head_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.norm = RMSNorm(dtype=self.dtype_policy, name="norm")
        self.query = keras.layers.EinsumDense(
            "ble,ehd->blhd",
            output_shape=(None, num_heads, head_dim),
            kernel_initializer=HostInitializer("truncated_normal", mode="fan_in"),
            dtype=self.dtype_policy,
            name="query",
        )
        self.key = keras.layers.EinsumDense(
            "ble,ehd->blhd",
            output_shape=(None, num_heads, head_dim),
            kernel_initializer=HostInitializer("truncated_normal", mode="fan_in"),
            dtype=self.dtype_policy,
            name="key",
        )

    def build(self, input_shape):
        self.norm.build(input_shape)
        self.query.build(input_shape)
        self.key.build(input_shape)
        self.built = True

    def call(self, position_embeddings):
        hidden_dim = position_embeddings.shape[-1]
        x = self.norm(position_embeddings)
        q = ops.cast(self.query(x), "float32")
        k = ops.cast(self.key(x), "float32")
        scale = float(hidden_dim / self.num_heads) ** -0.5
        return ops.einsum("bqhd,bkhd->bhqk", q, k) * scale

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "head_dim": self.head_dim})
        return config
