"""Test setup: JAX backend unless KERAS_BACKEND says otherwise; quiet TF."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pathlib

import keras
import numpy as np
import pytest


def _full_float32_on_accelerators():
    """The reference numbers are float32 numbers computed on a CPU. On
    NVIDIA GPUs since Ampere, JAX and TensorFlow run float32 matrix products
    and PyTorch its cuDNN convolutions in TF32 by default (10-bit mantissa):
    measured on an H200, the encoder moved 0.02 from the original's output
    and greedy ids changed. Tests compare float32 with float32, so they ask
    each backend for full float32 where a GPU is used (no-op on CPUs)."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        if jax.default_backend() != "cpu":
            jax.config.update("jax_default_matmul_precision", "highest")
    elif backend == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            tf.config.experimental.enable_tensor_float_32_execution(False)


_full_float32_on_accelerators()

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


# A VQ-GAN that builds in a second: two levels, attention at the 16x16
# level, 32x32 pixels to 16x16 = 256 codes out of 64.
SMALL_VQGAN = dict(
    image_size=32,
    channels=32,
    channel_multipliers=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(16,),
    z_channels=8,
    codebook_size=64,
    embed_dim=8,
)


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


SENTENCES = [
    "What does the image describe ?",
    "what color is the shape ?",
    "a blue triangle on a white background",
    'Which region does the text " person " describe ?',
    "What is the depth map of the image ?",
    'Find the human joints in the region " " .',
    "red green blue yellow circle square 1 2 3",
]


@pytest.fixture(scope="session")
def tiny_proto():
    """A small SentencePiece model with T5's special ids, trained on the fly."""
    from keras_uio import train_sentencepiece

    return train_sentencepiece(SENTENCES * 30, vocabulary_size=90)


@pytest.fixture(scope="session")
def tiny_model(tiny_proto):
    """A random `UnifiedIO` (tiny sizes) whose vocabulary fits `tiny_proto`."""
    import keras

    from keras_uio import VQGAN
    from keras_uio import UnifiedIO
    from keras_uio import UnifiedIOBackbone
    from keras_uio import UnifiedIOPreprocessor
    from keras_uio import UnifiedIOTokenizer
    from keras_uio.models.unified_io.unified_io_presets import unified_io_presets
    from keras_uio.models.vqgan.vqgan_presets import vqgan_presets as vq

    keras.utils.set_random_seed(0)
    tokenizer = UnifiedIOTokenizer(proto=tiny_proto, image_vocab_size=256)
    config = {
        **unified_io_presets["uio_tiny"]["config"],
        "vocabulary_size": tokenizer.vocab.text_vocab_size,
    }
    preprocessor = UnifiedIOPreprocessor(
        tokenizer, encoder_sequence_length=48, decoder_sequence_length=16
    )
    return UnifiedIO(
        UnifiedIOBackbone(**config),
        VQGAN(**vq["vqgan_tiny"]["config"]),
        preprocessor=preprocessor,
    )
