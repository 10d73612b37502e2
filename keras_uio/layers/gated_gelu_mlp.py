import keras

from keras_uio.layers.host_initializer import HostInitializer
from keras_uio.layers.recompute import recompute_in_backward
from keras_uio.layers.recompute import variables_of


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

    def call(self, x, norm=None):
        """`x`: `[..., hidden_dim]`; `norm`: optional layer applied first.

        Training recomputes the norm and the gated product in the backward
        pass (XLA drops the recomputed projections, which the gradient does
        not need), so neither is stored; pass the block's norm here for that.
        """

        def project(x):
            h = norm(x) if norm is not None else x
            return self.gate(h), self.up(h)

        gate, up = recompute_in_backward(
            project, variables=variables_of(norm, self.gate, self.up)
        )(x)
        return recompute_in_backward(
            lambda gate, up: self.down(
                keras.activations.gelu(gate, approximate=True) * up
            ),
            variables=self.down.variables,
        )(gate, up)

    def get_config(self):
        config = super().get_config()
        config.update({"intermediate_dim": self.intermediate_dim})
        return config
