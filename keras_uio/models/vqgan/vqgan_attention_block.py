"""The VQ-GAN spatial self-attention block."""

import keras
from keras import ops

from keras_uio.layers.host_initializer import host_conv2d
from keras_uio.layers.host_initializer import host_group_norm


@keras.saving.register_keras_serializable(package="keras_uio")
class VQGANAttentionBlock(keras.layers.Layer):
    """Single-head self-attention over all positions of a feature map.

    `y = x + proj_out(softmax(q k^T * C**-0.5) v)` where `q`, `k`, `v` are
    1x1 convolutions of the group-normalised input (32 groups, epsilon 1e-6,
    statistics in float32) and the softmax runs over the `H * W` positions.
    Logits and softmax are computed in float32.
    Sublayer names (`norm`, `q`, `k`, `v`, `proj_out`) are those of the
    original checkpoint.

    Args:
        groups: int. Groups of the group normalization.
        epsilon: float. Epsilon of the group normalization.
        dtype: string or `keras.DTypePolicy`, passed to every sublayer.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Example:

    ```python
    import numpy as np
    from keras_uio.models.vqgan.vqgan_attention_block import VQGANAttentionBlock

    block = VQGANAttentionBlock()
    y = block(np.random.rand(2, 16, 16, 64).astype("float32"))  # (2,16,16,64)
    ```
    """

    def __init__(self, groups=32, epsilon=1e-6, dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.groups = groups
        self.epsilon = epsilon
        self.norm = host_group_norm(
            groups=groups, epsilon=epsilon, dtype=self.dtype_policy, name="norm"
        )
        self.q = None
        self.k = None
        self.v = None
        self.proj_out = None

    def build(self, input_shape):
        channels = input_shape[-1]
        self.norm.build(input_shape)
        for name in ("q", "k", "v", "proj_out"):
            conv = host_conv2d(channels, 1, name=name, dtype=self.dtype_policy)
            conv.build(input_shape)
            setattr(self, name, conv)
        self.built = True

    def call(self, inputs):
        hidden = self.norm(inputs)
        query, key, value = self.q(hidden), self.k(hidden), self.v(hidden)
        shape = ops.shape(inputs)
        channels = inputs.shape[-1]
        positions = (shape[0], -1, channels)
        query = ops.reshape(query, positions)
        key = ops.reshape(key, positions)
        value = ops.reshape(value, positions)
        logits = ops.einsum(
            "bqc,bkc->bqk", ops.cast(query, "float32"), ops.cast(key, "float32")
        )
        weights = ops.softmax(logits * (channels**-0.5), axis=-1)
        weights = ops.cast(weights, self.compute_dtype)
        attended = ops.einsum("bqk,bkc->bqc", weights, value)
        attended = ops.reshape(attended, shape)
        return inputs + self.proj_out(attended)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"groups": self.groups, "epsilon": self.epsilon})
        return config
