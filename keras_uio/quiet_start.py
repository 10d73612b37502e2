"""Start-up without TensorFlow's and XLA's CUDA probing noise.

Importing TensorFlow (which Keras and keras-hub load) on a machine without
a GPU writes lines such as `cudart_stub.cc: Could not find cuda drivers`,
`failed call to cuInit` and `absl::InitializeLog` to the process's stderr
from C++, before Python's logging settings apply. `keras-uio` imports the
frameworks through `import_quietly`, which captures file descriptor 2
meanwhile and writes back every line that is not one of those known
start-up messages, so real warnings and errors still show.
"""

import importlib
import os
import sys
import tempfile

# Fragments of the start-up lines that say nothing to a user.
NOISE = (
    "cudart_stub.cc",
    "absl::InitializeLog",
    "failed call to cuInit",
    "cuda_platform.cc",
    "cuda_dnn.cc",
    "cuda_fft.cc",
    "cuda_blas.cc",
    "Unable to register cu",
    "computation_placer.cc",
    "rebuild TensorFlow with the appropriate compiler flags",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "oneDNN custom operations are on",
    "TF-TRT Warning",
)


def is_noise(line):
    """Whether `line` is one of the known start-up messages."""
    return any(fragment in line for fragment in NOISE)


def import_quietly(modules=("tensorflow", "keras")):
    """Imports `modules` (missing ones are skipped) with the start-up noise
    filtered out of stderr; on JAX also starts its CPU client, which
    probes for CUDA the same way."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            for name in modules:
                try:
                    importlib.import_module(name)
                except ImportError:
                    pass
            if os.environ.get("KERAS_BACKEND", "jax") == "jax":
                try:
                    importlib.import_module("jax").devices()
                except (ImportError, RuntimeError):
                    pass
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
    for line in text.splitlines(keepends=True):
        if not is_noise(line):
            sys.stderr.write(line)
