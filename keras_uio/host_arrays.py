"""Inputs given as tensors of any Keras backend, on any device, as NumPy."""

import numpy as np


def to_numpy(value):
    """`value` (array-like, or a tensor of any backend on any device) as NumPy.

    Tensors of the running backend go through `keras.ops.convert_to_numpy`,
    which copies a GPU tensor to the host (NumPy cannot read a CUDA tensor
    itself); a TensorFlow tensor under another backend through its
    `.numpy()`; anything else through `np.asarray`, whose `TypeError` or
    `ValueError` the caller turns into its own message.

    Example:
    >>> import keras
    >>> to_numpy(keras.ops.ones((2,))).tolist()
    [1.0, 1.0]
    """
    if isinstance(value, np.ndarray):
        return value
    import keras

    if keras.ops.is_tensor(value):
        return np.asarray(keras.ops.convert_to_numpy(value))
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    return np.asarray(value)
