"""Original Unified-IO checkpoint (`*.bin`) -> keras_uio preset folder.

Example:

```python
from keras_uio.convert.convert_checkpoint import convert_checkpoint
convert_checkpoint(
    "tests/data/reference/uio_tiny/checkpoint.bin", "/tmp/uio_tiny_converted"
)
```
"""

import os

import keras
import numpy as np

from keras_uio.convert.checkpoint import iterate_checkpoint
from keras_uio.convert.checkpoint import read_checkpoint_shapes
from keras_uio.convert.unified_io_weights import DEAD_PARAMETERS
from keras_uio.convert.unified_io_weights import backbone_config_from_shapes
from keras_uio.convert.unified_io_weights import backbone_variable_map
from keras_uio.convert.unified_io_weights import fit_array
from keras_uio.convert.vqgan_weights import VAE_SCOPE
from keras_uio.convert.vqgan_weights import vqgan_config_from_shapes
from keras_uio.convert.vqgan_weights import vqgan_variable_map
from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
from keras_uio.models.vqgan.vqgan import VQGAN

VQGAN_SUBDIR = "vqgan"


def _name(path):
    return "/".join(path)


def build_models(shapes, dtype=None):
    """Builds the backbone and VQ-GAN that an original checkpoint describes."""
    backbone = UnifiedIOBackbone(**backbone_config_from_shapes(shapes), dtype=dtype)
    vqgan = VQGAN(**vqgan_config_from_shapes(shapes), dtype=dtype)
    return backbone, vqgan


def variable_map(backbone, vqgan):
    """`{original path: keras.Variable}` over both models."""
    mapping = backbone_variable_map(backbone)
    for path, variable in vqgan_variable_map(vqgan).items():
        mapping[(VAE_SCOPE,) + tuple(path)] = variable
    return mapping


def check_layout(shapes, mapping):
    """Checks every parameter against the models before any data is read.

    Raises a `ValueError` naming the first parameter that does not fit (in
    the file's order), or the first variable the file does not provide.
    """
    for path, shape in shapes.items():
        if path in DEAD_PARAMETERS:
            continue
        if path not in mapping:
            raise ValueError(
                f"Parameter '{_name(path)}' of shape {tuple(shape)} is not "
                "part of a Unified-IO model of the inferred configuration."
            )
        fit_array(path, shape, tuple(mapping[path].shape))
    missing = [p for p in mapping if p not in shapes]
    if missing:
        raise ValueError(
            f"The checkpoint lacks parameter '{_name(missing[0])}' (expected "
            f"shape {tuple(mapping[missing[0]].shape)}); {len(missing)} "
            "missing in all."
        )


def load_checkpoint(checkpoint, dtype=None, progress=True):
    """Reads an original checkpoint into `(UnifiedIOBackbone, VQGAN)`.

    One tensor is in memory at a time besides the models themselves.

    Args:
        checkpoint: path of `small_1000k.bin` ... `xl_1000k.bin` (or any
            checkpoint in that format).
        dtype: dtype policy for both models (e.g. `"bfloat16"` halves the
            memory; the released weights are float32).
        progress: show a progress bar.
    """
    shapes = read_checkpoint_shapes(checkpoint)
    backbone, vqgan = build_models(shapes, dtype=dtype)
    mapping = variable_map(backbone, vqgan)
    check_layout(shapes, mapping)
    total = sum(int(np.prod(s)) for s in shapes.values())
    bar = keras.utils.Progbar(total, unit_name="param") if progress else None
    done = 0
    for path, array in iterate_checkpoint(checkpoint):
        done += array.size
        if path not in DEAD_PARAMETERS:
            variable = mapping[path]
            variable.assign(np.reshape(array, variable.shape))
        if bar is not None:
            bar.update(done)
    return backbone, vqgan


def convert_checkpoint(
    checkpoint, output_dir, vocabulary=None, dtype=None, progress=True
):
    """Converts an original checkpoint into a keras_uio preset folder.

    Writes the backbone preset in `output_dir`, the VQ-GAN preset in
    `output_dir/vqgan/` and, when `vocabulary` (the T5 `spiece.model`) is
    given, the tokenizer asset.

    Returns `(backbone, vqgan)`.
    """
    preprocessor = None
    if vocabulary is not None:
        preprocessor = _preprocessor(vocabulary, read_checkpoint_shapes(checkpoint))
    backbone, vqgan = load_checkpoint(checkpoint, dtype=dtype, progress=progress)
    os.makedirs(output_dir, exist_ok=True)
    backbone.save_to_preset(output_dir)
    vqgan.save_to_preset(os.path.join(output_dir, VQGAN_SUBDIR))
    if preprocessor is not None:
        preprocessor.save_to_preset(output_dir)
    return backbone, vqgan


def _preprocessor(vocabulary, shapes):
    """A preprocessor for `vocabulary`, checked against the checkpoint's ids."""
    from keras_uio.models.unified_io.unified_io_preprocessor import (
        UnifiedIOPreprocessor,
    )
    from keras_uio.models.unified_io.unified_io_tokenizer import (
        UnifiedIOTokenizer,
    )

    if not os.path.isfile(vocabulary):
        raise FileNotFoundError(
            f"No SentencePiece model at '{vocabulary}'. Pass the T5 "
            "`spiece.model` (32000 pieces) or leave `vocabulary` out."
        )
    config = backbone_config_from_shapes(shapes)
    tokenizer = UnifiedIOTokenizer(
        proto=vocabulary, image_vocab_size=config["image_vocabulary_size"]
    )
    if tokenizer.vocab.text_vocab_size != config["vocabulary_size"]:
        raise ValueError(
            f"The vocabulary '{vocabulary}' gives "
            f"{tokenizer.vocab.text_vocab_size} text ids "
            f"({tokenizer.vocab.sentencepiece_size} pieces + 1152 extra), but "
            f"the checkpoint has {config['vocabulary_size']}: it is not the "
            "vocabulary this model was trained with (T5's 32000-piece "
            "spiece.model for the released checkpoints)."
        )
    return UnifiedIOPreprocessor(tokenizer)
