"""`Conv2D` with a fast kernel gradient on JAX CPU.

XLA's CPU backend computes the gradient of a convolution with respect to
its kernel an order of magnitude slower than the forward pass (measured
here: 0.9 s against 0.05 s for a 3x3, 32->32 conv on `[16, 64, 64, 32]`),
which makes VQ-GAN training crawl on CPU. On the JAX backend this layer's
convolution has a custom gradient: the input gradient is XLA's own, the
kernel gradient is one matmul per kernel tap, `dW[i, j] = X_ij^T dY` with
`X_ij` the input window that tap reads (4x faster in the same
measurement). The forward pass is unchanged, so outputs are bit-identical;
other backends run `keras.layers.Conv2D` as is.

Example:
```python
import numpy as np
from keras_uio.models.vqgan.conv2d import Conv2D
layer = Conv2D(8, 3, padding="same")
layer(np.zeros((1, 16, 16, 4), "float32")).shape  # (1, 16, 16, 8)
```
"""

import functools

import keras


@functools.lru_cache(maxsize=None)
def _jax_conv(strides, padding):
    import jax
    import jax.numpy as jnp

    def forward(x, w):
        return jax.lax.conv_general_dilated(
            x,
            w,
            strides,
            padding.upper(),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )

    @jax.custom_vjp
    def conv(x, w):
        return forward(x, w)

    def conv_fwd(x, w):
        return forward(x, w), (x, w)

    def conv_bwd(saved, dy):
        x, w = saved
        _, input_vjp = jax.vjp(lambda x_: forward(x_, w), x)
        (dx,) = input_vjp(dy)
        kh, kw, cin, _ = w.shape
        if padding == "same":
            # XLA's SAME padding for these strides and sizes.
            pads = []
            for size, k, s in zip(x.shape[1:3], (kh, kw), strides):
                out = -(-size // s)
                total = max((out - 1) * s + k - size, 0)
                pads.append((total // 2, total - total // 2))
            x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
        oh, ow = dy.shape[1:3]
        sh, sw = strides
        dy2 = dy.reshape(-1, dy.shape[-1])
        taps = [
            [
                x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
                .reshape(-1, cin)
                .T
                @ dy2
                for j in range(kw)
            ]
            for i in range(kh)
        ]
        dw = jnp.stack([jnp.stack(row) for row in taps]).astype(w.dtype)
        return dx, dw

    conv.defvjp(conv_fwd, conv_bwd)
    return conv


def convolve(inputs, kernel, strides=(1, 1), padding="valid"):
    """A channels-last 2D convolution, `[N, H, W, C]` by `[kh, kw, C, F]`.

    On JAX with the per-tap kernel gradient above, elsewhere
    `keras.ops.conv`. `kernel` is cast to the inputs' dtype.
    """
    inputs = keras.ops.convert_to_tensor(inputs)
    kernel = keras.ops.cast(kernel, inputs.dtype)
    if keras.backend.backend() != "jax":
        return keras.ops.conv(inputs, kernel, strides=strides, padding=padding)
    return _jax_conv(tuple(strides), padding)(inputs, kernel)


@keras.saving.register_keras_serializable(package="keras_uio")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` (channels-last, no dilation, no groups) whose
    kernel gradient on JAX is computed by per-tap matmuls."""

    def convolution_op(self, inputs, kernel):
        if (
            keras.backend.backend() != "jax"
            or self.data_format != "channels_last"
            or tuple(self.dilation_rate) != (1, 1)
            or self.groups != 1
        ):
            return super().convolution_op(inputs, kernel)
        return convolve(inputs, kernel, self.strides, self.padding)
