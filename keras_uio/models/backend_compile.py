"""How every compiled function of keras_uio is compiled, per backend.

`UnifiedIO.generate`, `score` (on JAX only: one pass without a loop
gains nothing from a TensorFlow graph traced per option shape), and the
direct `VQGAN.encode`/`decode` calls compile through
`compile_for_backend`: JAX as one `jax.jit`
with the XLA:CPU options below, the variables passed in as arguments (so
new weights are used without recompiling and XLA does not fold them into
constants); TensorFlow as one `tf.function` graph that reads the variables
when it runs; PyTorch eagerly. Backend-specific speed settings live here
and in `unified_io/unified_io_decoding.py` (the decode loop's layouts).
"""

import keras

# XLA:CPU hands matrix products and convolutions to YNNPACK by default. In
# generation XLA's own kernels are faster for both: the decode loop's
# products (one row per example) and the VQ-GAN decoder's convolutions.
# Measured in one process, calls interleaved (uio_small, greedy, random
# weights): text b8 4.10 -> 3.35 s with only convolutions left to YNNPACK,
# then image b1 6.20 -> 5.62 s with nothing left to it (text unchanged);
# the VQ-GAN decode alone 3.00 -> 2.49 s.
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}

TF_JIT_COMPILE = False
"""Whether TensorFlow graphs are compiled with XLA.

A `tf.function` graph is used either way (eager TensorFlow runs the decode
loop op by op, ~8x slower). Measured on 2 CPU cores, greedy text of
`uio_small` (32 tokens, random weights), first call / later calls: b1
7.3 / 1.3 s as a graph against 19.2 / 3.0 s with XLA; b8 13.5 / 8.7 s
against 18.6 / 6.2 s. XLA wins only large batches, and every new shape or
setting pays its slower compilation again.
"""


def jit_with_cpu_options(fn):
    """`jax.jit(fn)` with `CPU_COMPILER_OPTIONS` on the CPU backend.

    The option is an experimental XLA one: where the installed jax or XLA
    does not accept it, the first call falls back to a plain `jax.jit`.
    """
    import jax

    plain = jax.jit(fn)
    if jax.default_backend() != "cpu":
        return plain
    try:
        tuned = jax.jit(fn, compiler_options=CPU_COMPILER_OPTIONS)
    except TypeError:  # a jax without `compiler_options`
        return plain
    chosen = [tuned]

    def call(*args):
        try:
            return chosen[0](*args)
        except Exception as error:  # XLA's error type differs across versions
            option = next(iter(CPU_COMPILER_OPTIONS))
            if chosen[0] is plain or option not in str(error):
                raise
            chosen[0] = plain
            return plain(*args)

    return call


def tf_graph(fn):
    """`tf.function(fn)`: one graph per input shape and `None` pattern.

    The graph reads the model's variables when it runs, so trained weights
    are used without retracing. Callers keep one function per setting or
    shape, all of one Python code object, which TensorFlow would report as
    "excessive retracing"; tracing once per setting is the design, so that
    warning is turned off.
    """
    import tensorflow as tf

    function = tf.function(fn, jit_compile=TF_JIT_COMPILE)
    if hasattr(function, "_omit_frequent_tracing_warning"):
        function._omit_frequent_tracing_warning = True
    return function


def compile_for_backend(model, run):
    """`run`, a function of tensors reading `model`'s variables, compiled
    for the backend (see the module docstring)."""
    backend = keras.config.backend()
    if backend == "jax":
        variables = model.variables

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=zip(variables, values)):
                return run(*args)

        compiled = jit_with_cpu_options(stateless)

        def function(*args):
            values = [v.value for v in variables]
            return compiled(values, *args)

        return function
    if backend == "tensorflow":
        return tf_graph(run)
    return run  # PyTorch: eager
