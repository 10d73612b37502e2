"""The VQ-GAN stride-2 downsampling convolution."""

import keras
from keras import ops

from keras_uio.layers.host_initializer import host_conv2d


@keras.saving.register_keras_serializable(package="keras_uio")
class VQGANDownsample(keras.layers.Layer):
    """Halves the resolution with a 3x3 stride-2 convolution.

    The original uses a SAME stride-2 convolution, which on an even input
    pads 0 rows/columns before and 1 after. This layer pads `(0, 1)` zeros
    explicitly and runs a VALID convolution, so every backend agrees. The
    convolution is named `conv`, as in the original checkpoint.

    Args:
        filters: int or None. Output channels; None keeps the input's.
        dtype: string or `keras.DTypePolicy`, passed to the convolution.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Example:

    ```python
    import numpy as np
    from keras_uio.models.vqgan.vqgan_downsample import VQGANDownsample

    down = VQGANDownsample()
    y = down(np.random.rand(2, 32, 32, 64).astype("float32"))  # (2,16,16,64)
    ```
    """

    def __init__(self, filters=None, dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.filters = filters
        self.conv = None

    def build(self, input_shape):
        filters = self.filters or input_shape[-1]
        self.conv = host_conv2d(
            filters,
            3,
            strides=2,
            padding="valid",
            name="conv",
            dtype=self.dtype_policy,
        )
        padded = list(input_shape)
        for axis in (1, 2):
            if padded[axis] is not None:
                padded[axis] += 1
        self.conv.build(tuple(padded))
        self.built = True

    def call(self, inputs):
        padded = ops.pad(inputs, ((0, 0), (0, 1), (0, 1), (0, 0)))
        return self.conv(padded)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        half = lambda n: None if n is None else (n + 1) // 2  # noqa: E731
        return (batch, half(height), half(width), self.filters or channels)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config
