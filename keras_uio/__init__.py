"""keras-uio: Unified-IO (Lu et al., ICLR 2023) for Keras 3."""

import os
import sys

if os.path.basename(sys.argv[0] if sys.argv else "") == "keras-uio":
    # The command line runs on JAX (the fast backend) unless told otherwise;
    # this must happen before Keras is first imported.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_uio.quiet_start import import_quietly

    import_quietly()

from keras_uio import distribution  # noqa: E402
from keras_uio import preprocessing  # noqa: E402
from keras_uio import tasks  # noqa: E402
from keras_uio.convert.convert_checkpoint import convert_checkpoint  # noqa: E402
from keras_uio.convert.convert_checkpoint import load_checkpoint  # noqa: E402
from keras_uio.models.unified_io.train_sentencepiece import train_sentencepiece  # noqa: E402
from keras_uio.models.unified_io.unified_io import UnifiedIO  # noqa: E402
from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone  # noqa: E402
from keras_uio.models.unified_io.unified_io_image_converter import (  # noqa: E402
    UnifiedIOImageConverter,
)
from keras_uio.models.unified_io.unified_io_preprocessor import UnifiedIOPreprocessor  # noqa: E402
from keras_uio.models.unified_io.unified_io_tokenizer import UnifiedIOTokenizer  # noqa: E402
from keras_uio.models.vqgan.vqgan import VQGAN  # noqa: E402
from keras_uio.models.vqgan.vqgan_trainer import CodebookRestart  # noqa: E402
from keras_uio.models.vqgan.vqgan_trainer import VQGANTrainer  # noqa: E402
from keras_uio.vocab import Vocabulary  # noqa: E402

__version__ = "0.1.0"
