"""Names and shapes of the original transformer parameters in keras_uio.

`backbone_variable_map(backbone)` says, for every parameter of an original
checkpoint (`token_embedder/...`, `encoder/...`, `decoder/...`), which
variable of a `UnifiedIOBackbone` receives it and how the array is reshaped.
`backbone_config_from_shapes(shapes)` infers the backbone configuration from
the parameter shapes alone (the released files carry no config).
"""

import math
import re

import numpy as np

# The decoder's cross-attention position projections exist in the original
# checkpoints but are never used by the original computation: dropped.
DEAD_PARAMETERS = (
    ("decoder", "cross_position_q_linear", "kernel"),
    ("decoder", "cross_position_k_linear", "kernel"),
)

_DECODER_IMAGE_LENGTH = 256  # 16 x 16 VQ-GAN codes in every released model.

_ATTENTION = tuple((name, "kernel") for name in ("query", "key", "value", "out"))
_MLP = tuple(("mlp", name, "kernel") for name in ("wi_0", "wi_1", "wo"))

# The parameters of one `layers_<i>` of each stack, relative to the layer.
ENCODER_LAYER_PARAMETERS = (
    ("pre_attention_layer_norm", "scale"),
    ("pre_mlp_layer_norm", "scale"),
    *(("attention",) + p for p in _ATTENTION),
    *_MLP,
)
DECODER_LAYER_PARAMETERS = (
    ("pre_self_attention_layer_norm", "scale"),
    ("pre_cross_attention_layer_norm", "scale"),
    ("pre_mlp_layer_norm", "scale"),
    *(("self_attention",) + p for p in _ATTENTION),
    *(("encoder_decoder_attention",) + p for p in _ATTENTION),
    *_MLP,
)
_LAYER_PARAMETERS = {
    "encoder": ENCODER_LAYER_PARAMETERS,
    "decoder": DECODER_LAYER_PARAMETERS,
}
_LAYER_NAME = re.compile(r"layers_(\d+)")


def _name(path):
    return "/".join(path)


def layer_indices(shapes, stack):
    """The sorted `i` of every `<stack>/layers_<i>/...` parameter."""
    return sorted(
        {
            int(m.group(1))
            for path in shapes
            if len(path) > 1
            and path[0] == stack
            and (m := _LAYER_NAME.fullmatch(path[1]))
        }
    )


def _count_layers(shapes, stack, source="The checkpoint"):
    """Number of `<stack>/layers_<i>`, which must be numbered 0 .. n-1."""
    indices = layer_indices(shapes, stack)
    numbered = range(indices[-1] + 1) if indices else range(0)
    gaps = sorted(set(numbered) - set(indices))
    if gaps:
        named = ", ".join(f"'{stack}/layers_{i}'" for i in gaps[:5])
        more = f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
        raise ValueError(
            f"{source} lacks {stack} layer(s) {named}{more}: its {stack} "
            f"layers are numbered {indices[:10]}{'...' if len(indices) > 10 else ''}"
            ", which must be 0 .. n-1 without gaps. The file is incomplete."
        )
    return len(indices)


def _check_layer(shapes, stack, index, first, source):
    """Checks one layer's parameter names, and shapes against layer 0's."""
    prefix = (stack, f"layers_{index}")
    expected = _LAYER_PARAMETERS[stack]
    present = {
        path[2:]: tuple(shape)
        for path, shape in shapes.items()
        if tuple(path[:2]) == prefix
    }
    missing = [p for p in expected if p not in present]
    if missing:
        raise ValueError(
            f"{source} lacks parameter '{_name(prefix + missing[0])}': "
            f"{len(missing)} of the {len(expected)} parameters of "
            f"{stack} layer {index} are missing "
            f"({', '.join(_name(p) for p in missing[:4])}"
            f"{', ...' if len(missing) > 4 else ''})."
        )
    unexpected = sorted(set(present) - set(expected))
    if unexpected:
        raise ValueError(
            f"Parameter '{_name(prefix + unexpected[0])}' of {source} is "
            f"not part of a Unified-IO {stack} layer (expected only "
            f"{', '.join(_name(p) for p in expected)})."
        )
    for path in expected if first is not None else ():
        if present[path] != first[path]:
            raise ValueError(
                f"Parameter '{_name(prefix + path)}' has shape "
                f"{present[path]}; '{stack}/layers_0' has {first[path]}, and "
                f"every {stack} layer must have the same shapes ({source})."
            )
    return present


def check_layers(shapes, source="The checkpoint", allow_unequal_layers=False):
    """Checks that the encoder and decoder layers of a checkpoint are whole.

    Before any model is built from `shapes`: each stack's layers are
    numbered `layers_0` .. `layers_<n-1>` without gaps, every layer has all
    its parameters (and no others) with the shapes of `layers_0`, and the
    encoder and decoder have as many layers (as in every released
    Unified-IO model; a missing last decoder layer is otherwise invisible).

    Args:
        shapes: `{path_tuple: shape}` of the whole checkpoint.
        source: how messages name the checkpoint, e.g. `"Checkpoint 'x.bin'"`.
        allow_unequal_layers: bool. Accept different encoder and decoder
            layer counts (for a checkpoint that really is built that way).

    Returns:
        `(num_encoder_layers, num_decoder_layers)`.

    Raises:
        ValueError: naming the first missing, unexpected or misshapen
            parameter or layer.
    """
    counts = {}
    for stack in ("encoder", "decoder"):
        counts[stack] = _count_layers(shapes, stack, source)
        if not counts[stack]:
            raise ValueError(
                f"{source} has no {stack} layers (no '{stack}/layers_0/...' "
                "parameters): it is not an original Unified-IO checkpoint."
            )
        first = None
        for index in range(counts[stack]):
            present = _check_layer(shapes, stack, index, first, source)
            first = present if first is None else first
    encoder, decoder = counts["encoder"], counts["decoder"]
    if encoder != decoder and not allow_unequal_layers:
        fewer = "decoder" if decoder < encoder else "encoder"
        absent = range(min(encoder, decoder), max(encoder, decoder))
        missing = ", ".join(f"'{fewer}/layers_{i}'" for i in absent[:5])
        missing += f" and {len(absent) - 5} more" if len(absent) > 5 else ""
        raise ValueError(
            f"{source} has {encoder} encoder layers but {decoder} decoder "
            f"layers: are {missing} missing? Every released Unified-IO model "
            "has as many of each. Pass `allow_unequal_layers=True` if this "
            "checkpoint really is built that way."
        )
    return encoder, decoder


def _require(shapes, path):
    if path not in shapes:
        raise ValueError(
            f"The checkpoint has no parameter '{'/'.join(path)}': it is not an "
            "original Unified-IO checkpoint (or it is incomplete)."
        )
    return shapes[path]


def backbone_config_from_shapes(shapes, image_vocabulary_size=None):
    """Infers `UnifiedIOBackbone` arguments from `{path_tuple: shape}`.

    The image vocabulary comes from the VQ-GAN codebook
    (`discrete_vae/quantize/embedding`) unless given. The decoder's image
    length is 256 (16 x 16 codes) and the encoder's text length equals the
    decoder's, as in every released model; the encoder image size follows.
    """
    total_vocab, hidden_dim = _require(shapes, ("token_embedder", "embedding"))
    if image_vocabulary_size is None:
        image_vocabulary_size = _require(
            shapes, ("discrete_vae", "quantize", "embedding")
        )[0]
    num_heads = _require(shapes, ("encoder", "relpos_bias", "rel_embedding"))[0]
    joined = _require(shapes, ("encoder", "layers_0", "attention", "query", "kernel"))[
        1
    ]
    intermediate_dim = _require(
        shapes, ("encoder", "layers_0", "mlp", "wi_0", "kernel")
    )[1]
    patch_features = _require(shapes, ("encoder", "image_projection", "kernel"))[0]
    patch_size = math.isqrt(patch_features // 3)
    decoder_positions = _require(
        shapes, ("decoder", "position_embedding", "embedding")
    )[0]
    encoder_positions = _require(
        shapes, ("encoder", "position_embedding", "embedding")
    )[0]
    text_length = decoder_positions - _DECODER_IMAGE_LENGTH
    grid = math.isqrt(encoder_positions - text_length)
    if text_length <= 0 or grid**2 != encoder_positions - text_length:
        raise ValueError(
            "Cannot infer the text/image split of the position tables "
            f"(encoder {encoder_positions} rows, decoder {decoder_positions}); "
            "expected 256 text rows plus a square number of image rows."
        )
    return {
        "vocabulary_size": total_vocab - image_vocabulary_size,
        "image_vocabulary_size": image_vocabulary_size,
        "hidden_dim": hidden_dim,
        "num_heads": num_heads,
        "head_dim": joined // num_heads,
        "num_encoder_layers": _count_layers(shapes, "encoder"),
        "num_decoder_layers": _count_layers(shapes, "decoder"),
        "intermediate_dim": intermediate_dim,
        "image_size": grid * patch_size,
        "patch_size": patch_size,
        "max_encoder_text_length": text_length,
        "max_decoder_text_length": text_length,
        "max_decoder_image_length": _DECODER_IMAGE_LENGTH,
        "num_segments": _require(shapes, ("encoder", "segment_embedding", "embedding"))[
            0
        ],
    }


def _attention(prefix, layer):
    return {
        prefix + ("query", "kernel"): layer.query.kernel,
        prefix + ("key", "kernel"): layer.key.kernel,
        prefix + ("value", "kernel"): layer.value.kernel,
        prefix + ("out", "kernel"): layer.output_dense.kernel,
    }


def _mlp(prefix, mlp):
    return {
        prefix + ("wi_0", "kernel"): mlp.gate.kernel,
        prefix + ("wi_1", "kernel"): mlp.up.kernel,
        prefix + ("wo", "kernel"): mlp.down.kernel,
    }


def _position_bias(stack, bias, q_name, k_name):
    return {
        (stack, "pe_pre_ln", "scale"): bias.absolute.norm.scale,
        (stack, q_name, "kernel"): bias.absolute.query.kernel,
        (stack, k_name, "kernel"): bias.absolute.key.kernel,
        (stack, "relpos_bias", "rel_embedding"): bias.relative.text_bias,
        (stack, "relpos_bias", "image_rel_embedding"): bias.relative.image_bias,
    }


def backbone_variable_map(backbone):
    """`{original path tuple: keras.Variable}` for every backbone variable.

    Arrays are loaded with `np.reshape(array, variable.shape)`: the only
    differences are the split (`[E, H*D]` -> `[E, H, D]`) and joined
    (`[H*D, E]` -> `[H, D, E]`) head axes of the attention kernels.
    """
    b = backbone
    enc, dec = b.encoder_embedding, b.decoder_embedding
    mapping = {
        ("token_embedder", "embedding"): b.token_embedding.embeddings,
        ("encoder", "position_embedding", "embedding"): enc.position_embeddings,
        ("encoder", "segment_embedding", "embedding"): enc.segment_embeddings,
        ("encoder", "image_projection", "kernel"): (
            enc.patch_embedding.projection.kernel
        ),
        ("encoder", "txt_emb_pre_ln", "scale"): enc.text_norm.scale,
        ("encoder", "img_emb_pre_ln", "scale"): enc.image_norm.scale,
        ("encoder", "encoder_norm", "scale"): b.encoder_norm.scale,
        ("decoder", "position_embedding", "embedding"): dec.position_embeddings,
        ("decoder", "segments_embedding", "embedding"): dec.segment_embeddings,
        ("decoder", "pre_ln", "scale"): dec.norm.scale,
        ("decoder", "decoder_norm", "scale"): b.decoder_norm.scale,
    }
    mapping.update(
        _position_bias(
            "encoder",
            b.encoder_attention_bias,
            "position_q_linear",
            "position_k_linear",
        )
    )
    mapping.update(
        _position_bias(
            "decoder",
            b.decoder_attention_bias,
            "self_position_q_linear",
            "self_position_k_linear",
        )
    )
    for i, layer in enumerate(b.encoder_layers):
        p = ("encoder", f"layers_{i}")
        mapping[p + ("pre_attention_layer_norm", "scale")] = layer.attention_norm.scale
        mapping[p + ("pre_mlp_layer_norm", "scale")] = layer.mlp_norm.scale
        mapping.update(_attention(p + ("attention",), layer.attention))
        mapping.update(_mlp(p + ("mlp",), layer.mlp))
    for i, layer in enumerate(b.decoder_layers):
        p = ("decoder", f"layers_{i}")
        mapping[p + ("pre_self_attention_layer_norm", "scale")] = (
            layer.self_attention_norm.scale
        )
        mapping[p + ("pre_cross_attention_layer_norm", "scale")] = (
            layer.cross_attention_norm.scale
        )
        mapping[p + ("pre_mlp_layer_norm", "scale")] = layer.mlp_norm.scale
        mapping.update(_attention(p + ("self_attention",), layer.self_attention))
        mapping.update(
            _attention(p + ("encoder_decoder_attention",), layer.cross_attention)
        )
        mapping.update(_mlp(p + ("mlp",), layer.mlp))
    return mapping


def fit_array(path, array_shape, variable_shape):
    """Checks that an original array of `array_shape` fits a variable.

    Returns nothing; raises a `ValueError` naming the parameter otherwise.
    """
    same_size = int(np.prod(array_shape)) == int(np.prod(variable_shape))
    same_ends = (
        array_shape[0] == variable_shape[0] or array_shape[-1] == variable_shape[-1]
    )
    if not (same_size and same_ends and len(array_shape) <= len(variable_shape)):
        raise ValueError(
            f"Parameter '{'/'.join(path)}' has shape {tuple(array_shape)}; "
            f"the model built from the inferred configuration expects "
            f"{tuple(variable_shape)}."
        )
