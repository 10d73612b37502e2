"""Finite scalar quantization (Mentzer et al., 2023): a codebook-free code."""

import math

import keras
import numpy as np
from keras import ops

from keras_uio.models.vqgan.vector_quantizer import quantizer_output_spec


@keras.saving.register_keras_serializable(package="keras_uio")
class FiniteScalarQuantizer(keras.layers.Layer):
    """Rounds each channel of a low-dimensional vector to a few levels.

    Channel `i` of the input is squashed into `levels[i]` bins by a shifted
    `tanh` and rounded (straight-through gradient), then scaled to about
    `[-1, 1]`. The code of a vector is its bin per channel read as a
    mixed-radix number, so there are `prod(levels)` codes, every one of them
    reachable, and nothing is learned: there is no codebook to collapse or
    restart and no codebook or commitment loss. With a few channels the
    codes form a grid the decoder can read like a colour space, which is
    what a small tokenizer of flat coloured shapes needs (a learned
    codebook of 256 rows spends itself on the background's tints).

    The interface equals `VectorQuantizer`'s: calling the layer on
    `[..., len(levels)]` returns `(codes, quantized)` and, with
    `with_losses=True`, a dict of zero losses; `lookup(codes)` returns the
    quantized vectors of codes.

    Args:
        levels: sequence of ints >= 2. Bins per channel; the paper's
            choices include `(8, 5, 5, 5)` (1000 codes) and `(8, 6, 5)`
            (240).
        dtype: string or `keras.DTypePolicy`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Example:

    ```python
    import numpy as np
    from keras_uio.models.vqgan.finite_scalar_quantizer import (
        FiniteScalarQuantizer,
    )

    quantizer = FiniteScalarQuantizer(levels=(8, 5, 5, 5))  # 1000 codes
    z = np.random.normal(size=(2, 4, 4, 4)).astype("float32")
    codes, quantized = quantizer(z)  # (2, 4, 4) int32 in [0, 1000)
    rows = quantizer.lookup(codes)  # == quantized
    ```
    """

    def __init__(self, levels, dtype=None, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(dtype=dtype, **kwargs)
        self.levels = check_levels(levels)
        self.codebook_size = math.prod(self.levels)
        self.embed_dim = len(self.levels)
        levels = np.array(self.levels, "float32")
        # Digit weights of the mixed-radix code (first channel varies fastest).
        self._basis = np.cumprod([1] + list(self.levels[:-1])).astype("int32")
        self._half_width = np.floor(levels / 2).astype("float32")
        # tanh squashes to (-half_bound, half_bound); even level counts are
        # shifted by half a bin so that rounding yields `levels` integers.
        eps = 1e-3
        self._half_bound = ((levels - 1) * (1 - eps) / 2).astype("float32")
        self._offset = np.where(levels % 2 == 0, 0.5, 0.0).astype("float32")
        self._shift = np.arctanh(self._offset / self._half_bound).astype("float32")

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] != self.embed_dim:
            raise ValueError(
                f"`{self.name}` expects inputs whose last axis has one channel "
                f"per level ({self.embed_dim} for levels={self.levels}). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.built = True

    def _rounded(self, inputs):
        """Integer bins centred on 0, `[-(levels // 2), levels - levels // 2)`,
        rounded with a straight-through gradient."""
        z = ops.cast(inputs, "float32")
        shift, half_bound, offset = (
            ops.convert_to_tensor(a)
            for a in (self._shift, self._half_bound, self._offset)
        )
        bounded = ops.tanh(z + shift) * half_bound - offset
        return bounded + ops.stop_gradient(ops.round(bounded) - bounded)

    def lookup(self, codes):
        """The quantized vectors `[..., len(levels)]` of int `codes` `[...]`."""
        codes = ops.expand_dims(ops.cast(codes, "int32"), -1)
        basis = ops.convert_to_tensor(self._basis)
        levels = ops.convert_to_tensor(np.array(self.levels, "int32"))
        digits = ops.mod(ops.floor_divide(codes, basis), levels)
        half_width = ops.convert_to_tensor(self._half_width)
        values = (ops.cast(digits, "float32") - half_width) / half_width
        return ops.cast(values, self.compute_dtype)

    def call(self, inputs, with_losses=False):
        rounded = self._rounded(inputs)
        half_width = ops.convert_to_tensor(self._half_width)
        digits = ops.cast(ops.round(rounded + half_width), "int32")
        codes = ops.sum(digits * ops.convert_to_tensor(self._basis), axis=-1)
        quantized = rounded / half_width
        quantized = ops.cast(quantized, self.compute_dtype)
        if not with_losses:
            return codes, quantized
        zero = ops.zeros((), "float32")
        losses = {"codebook_loss": zero, "commitment_loss": zero, "loss": zero}
        return codes, quantized, losses

    def compute_output_spec(self, inputs, with_losses=False):
        return quantizer_output_spec(inputs, self.compute_dtype, with_losses)

    def get_config(self):
        config = super().get_config()
        config.update({"levels": list(self.levels)})
        return config


def check_levels(levels):
    """`levels` as a tuple of ints >= 2, or a `ValueError` naming it."""
    if isinstance(levels, (int, np.integer)) or not hasattr(levels, "__iter__"):
        raise ValueError(
            "`fsq_levels` must be a sequence of ints >= 2 (bins per code "
            f"channel). Received: fsq_levels={levels!r}"
        )
    levels = tuple(levels)
    if not levels or any(
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2
        for n in levels
    ):
        raise ValueError(
            "`fsq_levels` must be a non-empty sequence of ints >= 2 (bins per "
            f"code channel). Received: fsq_levels={levels!r}"
        )
    return tuple(int(n) for n in levels)
