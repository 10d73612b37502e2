"""Test setup: JAX backend unless KERAS_BACKEND says otherwise; quiet TF."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pathlib

import numpy as np
import pytest

DATA = pathlib.Path(__file__).parent / "data"
REFERENCE = DATA / "reference"


@pytest.fixture(scope="session")
def reference_io():
    """Inputs and outputs of the original implementation on `uio_tiny`."""
    return dict(np.load(REFERENCE / "uio_tiny" / "io.npz"))


@pytest.fixture(scope="session")
def reference_checkpoint():
    return REFERENCE / "uio_tiny" / "checkpoint.bin"


@pytest.fixture(scope="session")
def preprocess_io():
    """Image/box preprocessing outputs of the original `uio/utils.py`."""
    return dict(np.load(REFERENCE / "preprocess" / "io.npz"))
