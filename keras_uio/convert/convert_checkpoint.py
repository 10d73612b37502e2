"""Original Unified-IO checkpoint (`*.bin`) -> keras_uio preset folder.

The released files (`small_1000k.bin` ... `xl_1000k.bin`, with T5's
`spiece.model`) convert with
`convert_checkpoint("small_1000k.bin", "uio_small", vocabulary="spiece.model")`
or `keras-uio convert`. Here, a file in their format is first written from
an untrained `uio_tiny` (`variable_map` names each original parameter).

Example:

```python
import keras
import msgpack
import keras_uio
from keras_uio.convert.convert_checkpoint import convert_checkpoint
from keras_uio.convert.convert_checkpoint import variable_map

backbone = keras_uio.UnifiedIOBackbone.from_preset("uio_tiny", load_weights=False)
vqgan = keras_uio.VQGAN(  # 16x16 codes from a 256-entry codebook, as uio_tiny
    image_size=32, channels=32, channel_multipliers=(1, 2), num_res_blocks=1,
    attention_resolutions=(), z_channels=8, codebook_size=256, embed_dim=8,
)
tree = {}
for path, variable in variable_map(backbone, vqgan).items():
    array = keras.ops.convert_to_numpy(variable)
    if array.ndim == 3:  # attention: [E, H, D] -> [E, H*D], [H, D, E] -> [H*D, E]
        out = path[-2] == "out"
        array = array.reshape((-1, array.shape[-1]) if out else (len(array), -1))
    node = tree
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = msgpack.ExtType(
        1, msgpack.packb([list(array.shape), array.dtype.name, array.tobytes()])
    )
with open("checkpoint.bin", "wb") as f:
    f.write(msgpack.packb(tree))

backbone, vqgan = convert_checkpoint(
    "checkpoint.bin", "uio_tiny_converted", progress=False
)
# `UnifiedIOBackbone.from_preset("uio_tiny_converted")` loads the folder,
# `VQGAN.from_preset("uio_tiny_converted/vqgan")` its VQ-GAN.
```
"""

import glob
import os
import shutil

import keras
import numpy as np

from keras_uio.convert.checkpoint import iterate_checkpoint
from keras_uio.convert.checkpoint import read_checkpoint_shapes
from keras_uio.convert.unified_io_weights import DEAD_PARAMETERS
from keras_uio.convert.unified_io_weights import backbone_config_from_shapes
from keras_uio.convert.unified_io_weights import backbone_variable_map
from keras_uio.convert.unified_io_weights import check_layers
from keras_uio.convert.unified_io_weights import fit_array
from keras_uio.convert.vqgan_weights import VAE_SCOPE
from keras_uio.convert.vqgan_weights import vqgan_config_from_shapes
from keras_uio.convert.vqgan_weights import vqgan_variable_map
from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
from keras_uio.models.unified_io.unified_io_parameter_count import (
    count_backbone_parameters,
)
from keras_uio.models.vqgan.vqgan import VQGAN
from keras_uio.models.vqgan.vqgan_config import count_vqgan_parameters
from keras_uio.preset_checks import CHECKSUM_FILE
from keras_uio.preset_checks import check_sentencepiece

VQGAN_SUBDIR = "vqgan"

# What a preset folder written here (or by `UnifiedIO.save_to_preset`) may
# hold, besides `*.weights.h5` files: found in an output folder, it means
# "a preset is already there"; when overwriting, all of it is removed first
# so that nothing stale (a tokenizer, a weights shard, a checksum record)
# stays beside the new weights.
PRESET_ENTRIES = (
    "config.json",
    "metadata.json",
    "model.weights.json",
    CHECKSUM_FILE,
    "tokenizer.json",
    "preprocessor.json",
    "image_converter.json",
    "task.json",
    "assets",
    VQGAN_SUBDIR,
)

# A model may be at most this many times the checkpoint's parameter count
# (plus a little): the inferred configuration must not allocate far more
# memory than the file holds.
_MAX_GROWTH = 2
_GROWTH_SLACK = 1_000_000


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


def check_model_size(shapes, source="The checkpoint"):
    """Refuses a configuration far larger than the checkpoint's parameters.

    Called before any model is built: every configuration field is read off
    some parameter's shape, so a corrupt file could otherwise make the
    converter allocate far more than it holds.
    """
    held = sum(
        int(np.prod(shape, dtype=np.float64))
        for path, shape in shapes.items()
        if path not in DEAD_PARAMETERS
    )
    needed = count_backbone_parameters(backbone_config_from_shapes(shapes))
    needed += count_vqgan_parameters(vqgan_config_from_shapes(shapes))
    if needed > _MAX_GROWTH * held + _GROWTH_SLACK:
        raise ValueError(
            f"{source} holds {held:,} parameters, but the configuration "
            f"inferred from its shapes needs {needed:,}: refusing to build "
            "it. The file is incomplete or its shapes are corrupt."
        )


def load_checkpoint(checkpoint, dtype=None, progress=True, allow_unequal_layers=False):
    """Reads an original checkpoint into `(UnifiedIOBackbone, VQGAN)`.

    One tensor is in memory at a time besides the models themselves. The
    file's layout is checked before any model is built: every tensor's
    declared size against the bytes in the file, whole encoder and decoder
    layers (`unified_io_weights.check_layers`) and a model size in line
    with the parameters present.

    Args:
        checkpoint: path of `small_1000k.bin` ... `xl_1000k.bin` (or any
            checkpoint in that format).
        dtype: dtype policy for both models (e.g. `"bfloat16"` halves the
            memory; the released weights are float32).
        progress: show a progress bar.
        allow_unequal_layers: bool. Accept a checkpoint whose encoder and
            decoder have different layer counts (no released model does).
    """
    shapes = read_checkpoint_shapes(checkpoint)
    source = f"Checkpoint '{checkpoint}'"
    check_layers(shapes, source, allow_unequal_layers=allow_unequal_layers)
    check_model_size(shapes, source)
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
    checkpoint,
    output_dir,
    vocabulary=None,
    dtype=None,
    progress=True,
    overwrite=False,
    allow_unequal_layers=False,
):
    """Converts an original checkpoint into a keras_uio preset folder.

    Writes the backbone preset in `output_dir`, the VQ-GAN preset in
    `output_dir/vqgan/` and, when `vocabulary` (the T5 `spiece.model`) is
    given, the tokenizer asset. Everything is checked (the output folder,
    the vocabulary, the checkpoint's layout) before anything is written.

    Args:
        checkpoint: path of an original `.bin` checkpoint.
        output_dir: the preset folder to write (created if needed).
        vocabulary: path of the SentencePiece model to bundle, or `None`.
        dtype: dtype policy of the saved weights (default float32).
        progress: show a progress bar.
        overwrite: bool. Replace a preset already in `output_dir`; its
            files (weights, configs, tokenizer assets, `vqgan/`) are removed
            first, so no stale tokenizer stays beside the new weights.
            Without it an existing preset there is an error.
        allow_unequal_layers: bool. See `load_checkpoint`.

    Returns:
        `(backbone, vqgan)`.

    Raises:
        FileExistsError: `output_dir` holds a preset and `overwrite` is
            False.
        ValueError: a bad vocabulary or checkpoint (the message names the
            file).
    """
    existing = preset_entries(output_dir)
    if existing and not overwrite:
        raise FileExistsError(
            f"Output folder '{output_dir}' already holds a preset "
            f"({', '.join(existing)}). Pass `overwrite=True` (command line: "
            "`--overwrite`) to replace it, or choose another folder."
        )
    preprocessor = None
    if vocabulary is not None:
        preprocessor = _preprocessor(vocabulary, read_checkpoint_shapes(checkpoint))
    backbone, vqgan = load_checkpoint(
        checkpoint,
        dtype=dtype,
        progress=progress,
        allow_unequal_layers=allow_unequal_layers,
    )
    for name in preset_entries(output_dir):
        _remove(os.path.join(output_dir, name))
    os.makedirs(output_dir, exist_ok=True)
    backbone.save_to_preset(output_dir)
    vqgan.save_to_preset(os.path.join(output_dir, VQGAN_SUBDIR))
    if preprocessor is not None:
        preprocessor.save_to_preset(output_dir)
    return backbone, vqgan


def preset_entries(folder):
    """The names of the preset files and folders in `folder` (sorted)."""
    if not os.path.isdir(folder):
        return []
    names = {n for n in PRESET_ENTRIES if os.path.lexists(os.path.join(folder, n))}
    names.update(
        os.path.basename(p)
        for p in glob.glob(os.path.join(glob.escape(folder), "*.weights.h5"))
    )
    return sorted(names)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _preprocessor(vocabulary, shapes):
    """A preprocessor for `vocabulary`, checked against the checkpoint's ids."""
    from keras_uio.models.unified_io.unified_io_preprocessor import (
        UnifiedIOPreprocessor,
    )
    from keras_uio.models.unified_io.unified_io_tokenizer import UnifiedIOTokenizer

    if not os.path.isfile(vocabulary):
        raise FileNotFoundError(
            f"No SentencePiece model at '{vocabulary}'. Pass the T5 "
            "`spiece.model` (32000 pieces) or leave `vocabulary` out."
        )
    check_sentencepiece(
        vocabulary, "The vocabulary", "Pass T5's `spiece.model` (32000 pieces)."
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
