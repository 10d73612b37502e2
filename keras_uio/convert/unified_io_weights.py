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


def _heads(kernel_shape, num_heads):
    """`[E, H*D]` -> `[E, H, D]` (query/key/value kernels)."""
    hidden, joined = kernel_shape
    return hidden, num_heads, joined // num_heads


def _count_layers(shapes, stack):
    pattern = re.compile(rf"layers_(\d+)")
    found = {
        int(m.group(1))
        for path in shapes
        if path[0] == stack and (m := pattern.fullmatch(path[1]))
    }
    return len(found)


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
    joined = _require(
        shapes, ("encoder", "layers_0", "attention", "query", "kernel")
    )[1]
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
        "num_segments": _require(
            shapes, ("encoder", "segment_embedding", "embedding")
        )[0],
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
        mapping[p + ("pre_attention_layer_norm", "scale")] = (
            layer.attention_norm.scale
        )
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
        array_shape[0] == variable_shape[0]
        or array_shape[-1] == variable_shape[-1]
    )
    if not (same_size and same_ends and len(array_shape) <= len(variable_shape)):
        raise ValueError(
            f"Parameter '{'/'.join(path)}' has shape {tuple(array_shape)}; "
            f"the model built from the inferred configuration expects "
            f"{tuple(variable_shape)}."
        )
