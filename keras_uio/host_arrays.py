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


def is_traced(tensor):
    """Whether `tensor` is symbolic: a `keras.KerasTensor`, a JAX tracer, or
    a TensorFlow tensor of a graph being built."""
    import keras

    if isinstance(tensor, keras.KerasTensor):
        return True
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        return isinstance(tensor, jax.core.Tracer)
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            return True
        return tf.is_tensor(tensor) and tf.is_symbolic_tensor(tensor)
    return False


def concrete_numpy(value):
    """`value` as NumPy (`to_numpy`), or None while it has no values: `None`,
    or a tensor being traced (`is_traced`).

    Example:
    >>> concrete_numpy([1, 2]).tolist(), concrete_numpy(None)
    ([1, 2], None)
    """
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return value
    if is_traced(value):
        return None
    return to_numpy(value)
