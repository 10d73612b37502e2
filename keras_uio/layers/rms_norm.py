import keras
from keras import ops

from keras_uio.layers.host_initializer import HostInitializer


@keras.saving.register_keras_serializable(package="keras_uio")
class RMSNorm(keras.layers.Layer):
    """T5-style root-mean-square normalisation, computed in float32.

    `y = x * rsqrt(mean(x ** 2) + epsilon) * scale`, with no mean subtraction
    and no bias. The statistics and the scaling run in float32 whatever the
    layer's dtype policy; the result is cast back to the compute dtype.

    Args:
        epsilon: float. Added to the mean square. Defaults to `1e-6`.

    Example:

    ```python
    import numpy as np
    norm = RMSNorm()
    y = norm(np.random.rand(2, 5, 8).astype("float32"))  # (2, 5, 8)
    ```
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale",
            shape=(input_shape[-1],),
            initializer=HostInitializer("constant", 1.0),
        )
        self.built = True

    def call(self, x):
        x = ops.cast(x, "float32")
        mean_square = ops.mean(ops.square(x), axis=-1, keepdims=True)
        y = x * ops.rsqrt(mean_square + self.epsilon)
        y = y * ops.cast(self.scale, "float32")
        return ops.cast(y, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config
