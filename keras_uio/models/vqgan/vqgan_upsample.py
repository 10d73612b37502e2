"""The VQ-GAN nearest-neighbour upsampling block."""

import keras
from keras import ops

from keras_uio.layers.host_initializer import host_conv2d


@keras.saving.register_keras_serializable(package="keras_uio")
class VQGANUpsample(keras.layers.Layer):
    """Doubles the resolution: nearest-neighbour x2, then a 3x3 SAME conv.

    The convolution is named `conv`, as in the original checkpoint.

    Args:
        filters: int or None. Output channels; None keeps the input's.
        dtype: string or `keras.DTypePolicy`, passed to the convolution.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Example:

    ```python
    import numpy as np
    from keras_uio.models.vqgan.vqgan_upsample import VQGANUpsample

    up = VQGANUpsample()
    y = up(np.random.rand(2, 16, 16, 64).astype("float32"))  # (2,32,32,64)
    ```
    """

    def __init__(self, filters=None, dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.filters = filters
        self.conv = None

    def build(self, input_shape):
        self.conv = host_conv2d(
            self.filters or input_shape[-1],
            3,
            padding="same",
            name="conv",
            dtype=self.dtype_policy,
        )
        self.conv.build(self._upsampled_shape(input_shape))
        self.built = True

    def call(self, inputs):
        upsampled = ops.repeat(ops.repeat(inputs, 2, axis=1), 2, axis=2)
        return self.conv(upsampled)

    @staticmethod
    def _upsampled_shape(input_shape):
        batch, height, width, channels = input_shape
        double = lambda n: None if n is None else 2 * n  # noqa: E731
        return (batch, double(height), double(width), channels)

    def compute_output_shape(self, input_shape):
        shape = self._upsampled_shape(input_shape)
        return shape[:-1] + (self.filters or input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config
