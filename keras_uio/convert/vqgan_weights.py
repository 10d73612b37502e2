"""Original Unified-IO VQ-GAN parameters <-> `keras_uio` `VQGAN` variables.

Checkpoint paths are given relative to `discrete_vae`, e.g.
`("encoder", "conv_in", "kernel")`. Every checkpoint array has exactly the
shape of its Keras variable (convolution kernels are HWIO in both), so a
conversion is a plain `variable.assign(array)`; nothing is transposed. The
only translation is of names: the original GroupNorm's `scale`/`bias` are
`keras.layers.GroupNormalization`'s `gamma`/`beta`.

Example:

```python
import keras
import msgpack
import numpy as np
from keras_uio.convert.vqgan_weights import load_vqgan_checkpoint
from keras_uio.convert.vqgan_weights import vqgan_variable_map
from keras_uio.models.vqgan.vqgan import VQGAN

# A small VQ-GAN written in the original layout (`discrete_vae/...`, each
# tensor a msgpack ExtType 1 holding `[shape, dtype, bytes]`) ...
source = VQGAN(
    image_size=32, channels=32, channel_multipliers=(1, 2),
    num_res_blocks=1, attention_resolutions=(), z_channels=8,
    codebook_size=64, embed_dim=8,
)
tree = {}
for path, variable in vqgan_variable_map(source).items():
    node = tree.setdefault("discrete_vae", {})
    for name in path[:-1]:
        node = node.setdefault(name, {})
    array = keras.ops.convert_to_numpy(variable)
    node[path[-1]] = msgpack.ExtType(
        1, msgpack.packb([list(array.shape), array.dtype.name, array.tobytes()])
    )
with open("checkpoint.bin", "wb") as f:
    f.write(msgpack.packb(tree))

# ... and read back: the config comes from the shapes (real checkpoints:
# `small_1000k.bin` ... `xl_1000k.bin`, 256x256 images).
vqgan = load_vqgan_checkpoint("checkpoint.bin")
images = np.zeros((1, 32, 32, 3), "float32")  # in [-1, 1]
codes = vqgan.encode(images)  # (1, 256) int32, as `source.encode(images)`
```
"""

import re

from keras_uio.convert.checkpoint import iterate_checkpoint
from keras_uio.convert.checkpoint import read_checkpoint_shapes
from keras_uio.models.vqgan.vqgan import VQGAN

VAE_SCOPE = "discrete_vae"


def _relative_shapes(shapes):
    """Drops a leading `discrete_vae` and any other top-level scope."""
    if any(path and path[0] == VAE_SCOPE for path in shapes):
        return {
            tuple(path[1:]): tuple(shape)
            for path, shape in shapes.items()
            if path and path[0] == VAE_SCOPE
        }
    return {tuple(path): tuple(shape) for path, shape in shapes.items()}


def _require(shapes, path):
    if path not in shapes:
        raise ValueError(
            f"`shapes` has no VQ-GAN parameter {'/'.join(path)!r}; expected "
            "the parameters of an original `discrete_vae` (paths relative to "
            f"it, e.g. ('encoder', 'conv_in', 'kernel')). Received "
            f"{len(shapes)} paths, e.g. {sorted(shapes)[:3]}"
        )
    return shapes[path]


def vqgan_config_from_shapes(shapes, grid_size=16):
    """Infers the `VQGAN` config from original parameter shapes.

    Args:
        shapes: dict `{path_tuple: shape}`, paths relative to `discrete_vae`
            (full checkpoint paths starting with `discrete_vae` are accepted
            too, e.g. `read_checkpoint_shapes(path)` as is).
        grid_size: int. Side of the code grid; parameter shapes do not fix
            the image size, which is `grid_size * 2**(levels - 1)`.
            Unified-IO uses 16x16 codes.

    Returns:
        A dict of `VQGAN` constructor arguments.
    """
    if not isinstance(grid_size, int) or grid_size < 1:
        raise ValueError(f"`grid_size` must be a positive int. Received: {grid_size!r}")
    shapes = _relative_shapes(shapes)
    conv_in = _require(shapes, ("encoder", "conv_in", "kernel"))
    channels = conv_in[3]
    levels = sorted(
        {
            int(m.group(1))
            for path in shapes
            if len(path) > 1 and path[0] == "encoder"
            for m in [re.fullmatch(r"down_(\d+)_block_0", path[1])]
            if m
        }
    )
    if not levels or levels != list(range(len(levels))):
        raise ValueError(
            "`shapes` must hold encoder levels `down_0_block_0` ... "
            f"`down_<L-1>_block_0`. Received levels {levels}"
        )
    num_res_blocks = len(
        {
            path[1]
            for path in shapes
            if len(path) > 1
            and path[0] == "encoder"
            and re.fullmatch(r"down_0_block_\d+", path[1])
        }
    )
    multipliers = []
    for level in levels:
        kernel = _require(
            shapes, ("encoder", f"down_{level}_block_0", "conv1", "kernel")
        )
        if kernel[3] % channels:
            raise ValueError(
                f"Level {level} has {kernel[3]} channels, not a multiple of "
                f"the base channels {channels}."
            )
        multipliers.append(kernel[3] // channels)
    image_size = grid_size * 2 ** (len(levels) - 1)
    attention = [
        image_size // 2**level
        for level in levels
        if ("encoder", f"down_{level}_attn_0", "q", "kernel") in shapes
    ]
    codebook = _require(shapes, ("quantize", "embedding"))
    return {
        "image_size": image_size,
        "channels": channels,
        "channel_multipliers": multipliers,
        "num_res_blocks": num_res_blocks,
        "attention_resolutions": attention,
        "z_channels": _require(shapes, ("encoder", "conv_out", "kernel"))[3],
        "codebook_size": codebook[0],
        "embed_dim": codebook[1],
        "in_channels": conv_in[2],
        "out_channels": _require(shapes, ("decoder", "conv_out", "kernel"))[3],
    }


# Keras variable names whose checkpoint names differ.
_CHECKPOINT_NAMES = {"gamma": "scale", "beta": "bias"}


def _leaf_variables(layer, prefix):
    """`{path: variable}` below `layer`, named by layer and variable names."""
    children = list(layer._flatten_layers(include_self=False, recursive=False))
    if not children:
        return {
            prefix + (_CHECKPOINT_NAMES.get(v.name, v.name),): v for v in layer.weights
        }
    variables = {}
    for child in children:
        variables.update(_leaf_variables(child, prefix + (child.name,)))
    return variables


def vqgan_variable_map(vqgan):
    """`{checkpoint path relative to discrete_vae: keras.Variable}`.

    Covers every variable of `vqgan` exactly once; each has the shape of
    its checkpoint array, so `variable.assign(array)` converts it.
    """
    if not isinstance(vqgan, VQGAN):
        raise ValueError(f"`vqgan` must be a `VQGAN`. Received: {type(vqgan).__name__}")
    variables = {}
    for layer in (vqgan.quant_conv, vqgan.quantize, vqgan.post_quant_conv):
        variables.update(_leaf_variables(layer, (layer.name,)))
    for model in (vqgan.encoder, vqgan.decoder):
        for layer in model.layers:
            variables.update(_leaf_variables(layer, (model.name, layer.name)))
    mapped = {id(v) for v in variables.values()}
    missing = [v.path for v in vqgan.weights if id(v) not in mapped]
    if missing or len(mapped) != len(variables) or len(mapped) != len(vqgan.weights):
        raise RuntimeError(
            f"Internal error: the variable map does not cover the model's "
            f"{len(vqgan.weights)} variables exactly once (missing: {missing})."
        )
    return variables


def load_vqgan_checkpoint(path, grid_size=16, dtype=None):
    """Builds a `VQGAN` from an original Unified-IO `.bin` checkpoint.

    Reads `discrete_vae` one tensor at a time, infers the config with
    `vqgan_config_from_shapes` and assigns every variable.

    Args:
        path: path of the original checkpoint (`small_1000k.bin`, ...).
        grid_size: int. Side of the code grid (16 in Unified-IO).
        dtype: dtype policy of the returned model.
    """
    config = vqgan_config_from_shapes(read_checkpoint_shapes(path), grid_size)
    vqgan = VQGAN(**config, dtype=dtype)
    variables = vqgan_variable_map(vqgan)
    assigned = set()
    for full_path, array in iterate_checkpoint(path):
        if not full_path or full_path[0] != VAE_SCOPE:
            continue
        key = tuple(full_path[1:])
        if key not in variables:
            raise ValueError(
                f"Checkpoint '{path}' has a VQ-GAN parameter "
                f"{'/'.join(full_path)!r} that the inferred config "
                "does not use."
            )
        variable = variables[key]
        if tuple(variable.shape) != tuple(array.shape):
            raise ValueError(
                f"Checkpoint parameter {'/'.join(full_path)!r} has shape "
                f"{tuple(array.shape)}; expected {tuple(variable.shape)}."
            )
        variable.assign(array)
        assigned.add(key)
    missing = sorted(set(variables) - assigned)
    if missing:
        raise ValueError(
            f"Checkpoint '{path}' lacks VQ-GAN parameters: "
            f"{['/'.join(m) for m in missing[:5]]} ({len(missing)} in all)."
        )
    return vqgan
