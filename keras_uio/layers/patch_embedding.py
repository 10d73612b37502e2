import keras
from keras import ops

from keras_uio.layers.host_initializer import HostInitializer
from keras_uio.layers.take_per_example import take_per_example


@keras.saving.register_keras_serializable(package="keras_uio")
class PatchEmbedding(keras.layers.Layer):
    """Space-to-depth patches and a bias-free linear projection.

    An image `[B, H, W, C]` becomes `[B, (H/p) * (W/p), hidden_dim]`: patch
    index `row * (W/p) + col`, feature index `(dy * p + dx) * C + c` before
    the projection (the original's layout, so its kernels load unchanged).

    Args:
        patch_size: int. Side of a square patch (16).
        hidden_dim: int. Output width.

    Example:

    ```python
    import numpy as np
    layer = PatchEmbedding(patch_size=16, hidden_dim=8)
    layer(np.zeros((1, 64, 32, 3), "float32")).shape  # (1, 8, 8)
    ```
    """

    def __init__(self, patch_size, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.projection = keras.layers.Dense(
            hidden_dim,
            use_bias=False,
            kernel_initializer=HostInitializer("truncated_normal", mode="fan_in"),
            dtype=self.dtype_policy,
            name="projection",
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        self.projection.build((None, None, self.patch_size**2 * channels))
        self.built = True

    def call(self, images, indices=None):
        """`indices`: optional int `[B, n]`, the patches to keep per
        example; the rest are dropped before the projection."""
        p = self.patch_size
        _, height, width, channels = ops.shape(images)
        rows, cols = height // p, width // p
        x = ops.reshape(images, (-1, rows, p, cols, p, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        x = ops.reshape(x, (-1, rows * cols, p * p * channels))
        if indices is not None:
            x = take_per_example(x, indices, axis=1)
        return self.projection(x)

    def get_config(self):
        config = super().get_config()
        config.update({"patch_size": self.patch_size, "hidden_dim": self.hidden_dim})
        return config
