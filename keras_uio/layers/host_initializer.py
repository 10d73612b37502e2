import math

import keras
import ml_dtypes
import numpy as np


def _to_tensor(values, dtype):
    """Casts on the host (NumPy/ml_dtypes), so no device kernel compiles."""
    host_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype
    return keras.ops.convert_to_tensor(values.astype(host_dtype), dtype=dtype)


@keras.saving.register_keras_serializable(package="keras_uio")
class HostInitializer(keras.initializers.Initializer):
    """Variance-scaling or constant initializer drawn on the host with NumPy.

    Keras' JAX initializers compile one XLA random kernel per variable shape
    (about a second each on a small CPU), which made building a model -
    even one whose weights are loaded right after - take tens of seconds.
    Drawing with NumPy costs no compilation, on every backend. Seeding
    follows `keras.utils.set_random_seed` (it seeds NumPy) unless `seed` is
    given.

    Args:
        distribution: `"normal"`, `"truncated_normal"`, `"uniform"` or
            `"constant"`.
        scale: float. Variance scale, or the value for `"constant"`.
        mode: `None` (variance `scale`), `"fan_in"` or `"fan_avg"`.
        input_axes: int. Leading axes that count as inputs for the fans
            (1 for `[in, out]` or `[in, heads, dim]` kernels, 2 for
            `[heads, dim, out]`, 3 for HWIO convolutions).
        seed: optional int.

    Example:

    ```python
    init = HostInitializer("normal", scale=1.0, mode="fan_in")
    init((64, 4, 8)).shape  # (64, 4, 8)
    ```
    """

    def __init__(
        self,
        distribution="normal",
        scale=1.0,
        mode=None,
        input_axes=1,
        seed=None,
    ):
        if distribution not in ("normal", "truncated_normal", "uniform", "constant"):
            raise ValueError(
                "`distribution` must be 'normal', 'truncated_normal', 'uniform' "
                f"or 'constant'; received {distribution!r}."
            )
        if mode not in (None, "fan_in", "fan_avg"):
            raise ValueError(
                f"`mode` must be None, 'fan_in' or 'fan_avg'; received {mode!r}."
            )
        self.distribution = distribution
        self.scale = scale
        self.mode = mode
        self.input_axes = input_axes
        self.seed = seed

    def _variance(self, shape):
        fan_in = math.prod(shape[: self.input_axes]) or 1
        fan_out = math.prod(shape[self.input_axes :]) or 1
        if self.mode == "fan_in":
            return self.scale / fan_in
        if self.mode == "fan_avg":
            return self.scale / ((fan_in + fan_out) / 2)
        return self.scale

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        dtype = keras.backend.standardize_dtype(dtype or "float32")
        if self.distribution == "constant":
            return _to_tensor(np.full(shape, self.scale), dtype)
        rng = np.random.default_rng(self.seed) if self.seed is not None else np.random
        std = math.sqrt(self._variance(shape))
        if self.distribution == "uniform":
            limit = math.sqrt(3.0) * std
            values = rng.uniform(-limit, limit, size=shape)
        elif self.distribution == "truncated_normal":
            # Resample beyond two standard deviations; 0.8796 restores the
            # variance of the truncated distribution.
            values = rng.standard_normal(size=shape)
            outside = np.abs(values) > 2
            while outside.any():
                values[outside] = rng.standard_normal(size=int(outside.sum()))
                outside = np.abs(values) > 2
            values = values * std / 0.87962566103423978
        else:
            values = rng.standard_normal(size=shape) * std
        return _to_tensor(values, dtype)

    def get_config(self):
        return {
            "distribution": self.distribution,
            "scale": self.scale,
            "mode": self.mode,
            "input_axes": self.input_axes,
            "seed": self.seed,
        }


def host_conv2d(*args, **kwargs):
    """A `Conv2D` (fast kernel gradient on JAX, see `conv2d.py`) whose
    default initializers draw on the host."""
    kwargs.setdefault(
        "kernel_initializer",
        HostInitializer("uniform", 1.0, mode="fan_avg", input_axes=3),
    )
    kwargs.setdefault("bias_initializer", HostInitializer("constant", 0.0))
    from keras_uio.models.vqgan.conv2d import Conv2D

    return Conv2D(*args, **kwargs)


def host_group_norm(*args, **kwargs):
    """`keras.layers.GroupNormalization` whose initializers draw on the host."""
    kwargs.setdefault("gamma_initializer", HostInitializer("constant", 1.0))
    kwargs.setdefault("beta_initializer", HostInitializer("constant", 0.0))
    return keras.layers.GroupNormalization(*args, **kwargs)
