"""The VQ-GAN residual block."""

import keras
from keras import ops

from keras_uio.layers.host_initializer import host_conv2d
from keras_uio.layers.host_initializer import host_group_norm


def swish(x):
    """`x * sigmoid(x)`, the VQ-GAN non-linearity."""
    return x * ops.sigmoid(x)


@keras.saving.register_keras_serializable(package="keras_uio")
class VQGANResBlock(keras.layers.Layer):
    """Pre-activation residual block of the VQ-GAN encoder and decoder.

    `y = shortcut(x) + conv2(swish(norm2(conv1(swish(norm1(x))))))`, with 3x3
    SAME convolutions, `keras.layers.GroupNormalization` (32 groups, epsilon
    1e-6, statistics in float32 under any policy) and a 1x1 `nin_shortcut`
    convolution only when the channel count changes. Sublayer names
    (`norm1`, `conv1`, `norm2`, `conv2`, `nin_shortcut`) are those of the
    original checkpoint (whose norm `scale`/`bias` are Keras' `gamma`/`beta`).

    Args:
        filters: int. Output channels.
        groups: int. Groups of the two group normalizations.
        epsilon: float. Epsilon of the group normalizations.
        dtype: string or `keras.DTypePolicy`, passed to every sublayer.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Example:

    ```python
    import numpy as np
    from keras_uio.models.vqgan.vqgan_res_block import VQGANResBlock

    block = VQGANResBlock(filters=64)
    y = block(np.random.rand(2, 16, 16, 32).astype("float32"))  # (2,16,16,64)
    ```
    """

    def __init__(self, filters, groups=32, epsilon=1e-6, dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(
                f"`filters` must be a positive int. Received: filters={filters!r}"
            )
        self.filters = filters
        self.groups = groups
        self.epsilon = epsilon
        norm_args = dict(groups=groups, epsilon=epsilon, dtype=self.dtype_policy)
        conv_args = dict(padding="same", dtype=self.dtype_policy)
        self.norm1 = host_group_norm(name="norm1", **norm_args)
        self.conv1 = host_conv2d(filters, 3, name="conv1", **conv_args)
        self.norm2 = host_group_norm(name="norm2", **norm_args)
        self.conv2 = host_conv2d(filters, 3, name="conv2", **conv_args)
        self.nin_shortcut = None

    def build(self, input_shape):
        self.norm1.build(input_shape)
        self.conv1.build(input_shape)
        hidden_shape = tuple(input_shape[:-1]) + (self.filters,)
        self.norm2.build(hidden_shape)
        self.conv2.build(hidden_shape)
        if input_shape[-1] != self.filters:
            self.nin_shortcut = host_conv2d(
                self.filters, 1, name="nin_shortcut", dtype=self.dtype_policy
            )
            self.nin_shortcut.build(input_shape)
        self.built = True

    def call(self, inputs):
        hidden = self.conv1(swish(self.norm1(inputs)))
        hidden = self.conv2(swish(self.norm2(hidden)))
        shortcut = inputs
        if self.nin_shortcut is not None:
            shortcut = self.nin_shortcut(inputs)
        return shortcut + hidden

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "groups": self.groups,
                "epsilon": self.epsilon,
            }
        )
        return config
