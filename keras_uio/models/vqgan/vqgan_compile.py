"""Compiled direct calls of `VQGAN.encode` and `VQGAN.decode`.

Called eagerly, a VQ-GAN runs its ~60 layers op by op (JAX dispatches each
convolution on its own; TensorFlow too). `CompiledCalls` compiles the call
on its first use instead and keeps one compiled function per input shape
and dtype:

- JAX: `jax.jit` of a stateless function that receives the variable values
  as arguments, so new values (after training or `set_weights`) are used
  without recompiling, with the XLA:CPU options `generate` uses (XLA's own
  convolution kernels); see `models/backend_compile.py`.
- TensorFlow: a `tf.function` graph; it reads the variables when it runs.
- PyTorch (and any other backend): the plain eager call.

A call from inside a trace (a `jax.jit`, a `tf.function`, Keras' symbolic
shape inference), or under a `keras.StatelessScope` (where the variables
stand for other values, e.g. in a gradient computation), runs the plain
code: the enclosing trace compiles it anyway.
"""

import keras

from keras_uio.host_arrays import is_traced
from keras_uio.models.backend_compile import compile_for_backend

try:  # not public API; where it moves, the input checks below still apply
    from keras.src.backend.common.stateless_scope import in_stateless_scope
    from keras.src.backend.common.symbolic_scope import in_symbolic_scope
except ImportError:  # pragma: no cover

    def in_stateless_scope():
        return False

    def in_symbolic_scope():
        return False


COMPILED_BACKENDS = ("jax", "tensorflow")


def runs_plain(tensor):
    """Whether a direct call with `tensor` must run the layers uncompiled."""
    return (
        keras.config.backend() not in COMPILED_BACKENDS
        or in_stateless_scope()
        or in_symbolic_scope()
        or is_traced(tensor)
    )


class CompiledCalls:
    """A model's compiled functions, one per (name, input shape, dtype).

    The cache is emptied when the model's variable set changes (new or
    replaced variables, e.g. after enabling LoRA): a compiled function
    reads the variables it was built with. `traces` counts how often a
    compiled function's Python body ran (once per compilation).

    Args:
        model: the `keras.Model` whose variables the functions read.

    Example:

    ```python
    import keras
    import numpy as np

    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    calls = CompiledCalls(dense)
    x = np.ones((4, 3), "float32")
    y = calls.call("dense", dense, x)  # compiled on JAX and TensorFlow
    y = calls.call("dense", dense, x)  # the same function, no new trace
    ```
    """

    def __init__(self, model):
        self._model = model
        self._functions = {}
        self._variable_ids = ()
        self.traces = 0

    def __len__(self):
        return len(self._functions)

    def keys(self):
        """The `(name, shape, dtype)` keys of the cached functions."""
        return list(self._functions)

    def call(self, name, fn, tensor):
        """`fn(tensor)`, compiled per shape and dtype where it can be."""
        if runs_plain(tensor):
            return fn(tensor)
        variable_ids = tuple(id(v) for v in self._model.variables)
        if variable_ids != self._variable_ids:
            self._functions.clear()
            self._variable_ids = variable_ids
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        key = (name, tuple(tensor.shape), dtype)
        function = self._functions.get(key)
        if function is None:
            function = self._compile(fn)
            self._functions[key] = function
        return function(tensor)

    def _compile(self, fn):
        def counted(*args):
            self.traces += 1
            return fn(*args)

        return compile_for_backend(self._model, counted)
