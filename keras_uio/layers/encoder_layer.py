import keras

from keras_uio.layers.attention import UnifiedIOAttention
from keras_uio.layers.gated_gelu_mlp import GatedGeluMLP
from keras_uio.layers.rms_norm import RMSNorm


@keras.saving.register_keras_serializable(package="keras_uio")
class UnifiedIOEncoderLayer(keras.layers.Layer):
    """Pre-norm encoder block: `x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x))`.

    Args:
        num_heads: int.
        head_dim: int.
        intermediate_dim: int. Gated-GELU MLP width.

    Call arguments:
        x: `[B, L, hidden_dim]`.
        attention_bias: float32 `[B or 1, heads or 1, L, L]` (masks and
            position biases, shared by every layer of the stack).

    Example:

    ```python
    import numpy as np
    layer = UnifiedIOEncoderLayer(num_heads=2, head_dim=4, intermediate_dim=16)
    x = np.random.rand(1, 5, 8).astype("float32")
    layer(x, np.zeros((1, 1, 5, 5), "float32")).shape  # (1, 5, 8)
    ```
    """

    def __init__(self, num_heads, head_dim, intermediate_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.intermediate_dim = intermediate_dim
        policy = self.dtype_policy
        self.attention_norm = RMSNorm(dtype=policy, name="attention_norm")
        self.attention = UnifiedIOAttention(
            num_heads, head_dim, dtype=policy, name="attention"
        )
        self.mlp_norm = RMSNorm(dtype=policy, name="mlp_norm")
        self.mlp = GatedGeluMLP(intermediate_dim, dtype=policy, name="mlp")

    def build(self, x_shape, *args, **kwargs):
        for layer in (self.attention_norm, self.attention, self.mlp_norm, self.mlp):
            layer.build(x_shape)
        self.built = True

    def call(self, x, attention_bias):
        x = x + self.attention(
            x, attention_bias=attention_bias, norm=self.attention_norm
        )
        return x + self.mlp(x, norm=self.mlp_norm)

    def compute_output_spec(self, x, attention_bias):
        return keras.KerasTensor(x.shape, self.compute_dtype)

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
