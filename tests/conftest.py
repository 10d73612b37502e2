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


@pytest.fixture(scope="session")
def converted_tiny(reference_checkpoint):
    """`(UnifiedIOBackbone, VQGAN)` converted from the reference checkpoint."""
    from keras_uio.convert.convert_checkpoint import load_checkpoint

    return load_checkpoint(str(reference_checkpoint), progress=False)


def backbone_inputs(io, image_decoder_inputs=None):
    """The original's input dict for the backbone, from `io.npz`."""
    targets = io["in/text_decoder_targets"]
    return {
        "text_encoder_inputs": io["in/text_encoder_inputs"],
        "image_encoder_inputs": io["in/image_encoder_inputs"],
        "image_input_masks": io["in/image_input_masks"],
        "text_decoder_inputs": io["in/text_decoder_inputs"],
        "text_decoder_masks": (targets > 0).astype("int32"),
        "image_decoder_inputs": (
            io["in/image_decoder_inputs"]
            if image_decoder_inputs is None
            else image_decoder_inputs
        ),
    }
