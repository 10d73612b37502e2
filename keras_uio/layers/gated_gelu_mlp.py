import keras
from keras import ops

from keras_uio.layers.host_initializer import HostInitializer


@keras.saving.register_keras_serializable(package="keras_uio")
class GatedGeluMLP(keras.layers.Layer):
    """T5.1.1 feed-forward block: `wo(gelu_tanh(x wi_0) * (x wi_1))`.

    Bias-free. GELU is the tanh approximation (flax's default, which the
    original checkpoints were trained with; the exact erf form is off by
    about 1e-3).

    Args:
        intermediate_dim: int. Width of the gated hidden layer.

    Example:

    ```python
    import numpy as np
    mlp = GatedGeluMLP(intermediate_dim=32)
    mlp(np.ones((2, 3, 8), "float32")).shape  # (2, 3, 8)
    ```
    """

    def __init__(self, intermediate_dim, **kwargs):
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim

    def build(self, input_shape):
        hidden_dim = input_shape[-1]

        def dense(units, name):
            layer = keras.layers.Dense(
                units,
                use_bias=False,
                kernel_initializer=HostInitializer("truncated_normal", mode="fan_in"),
                dtype=self.dtype_policy,
                name=name,
            )
            return layer

        self.gate = dense(self.intermediate_dim, "gate")
        self.up = dense(self.intermediate_dim, "up")
        self.down = dense(hidden_dim, "down")
        self.gate.build(input_shape)
        self.up.build(input_shape)
        self.down.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))
        self.built = True

    def call(self, x):
        hidden = keras.activations.gelu(self.gate(x), approximate=True)
        return self.down(hidden * self.up(x))

    def get_config(self):
        config = super().get_config()
        config.update({"intermediate_dim": self.intermediate_dim})
        return config
