"""The parameter count of a `UnifiedIOBackbone` config, without building it."""


def count_backbone_parameters(config):
    """Parameters of a `UnifiedIOBackbone` config, without building it.

    Equals the original's transformer count minus the two dead
    `decoder/cross_position_{q,k}_linear` kernels (`2 * E * H * D`).
    """
    c = config
    e, h, d, m = c["hidden_dim"], c["num_heads"], c["head_dim"], c["intermediate_dim"]
    joined = h * d
    patches = (c["image_size"] // c["patch_size"]) ** 2
    tokens = (c["vocabulary_size"] + c["image_vocabulary_size"]) * e
    attention = 4 * e * joined
    mlp = 3 * e * m
    position_bias = e + 2 * e * joined + h * (32 + 256)
    encoder = (
        (c["max_encoder_text_length"] + patches) * e  # positions
        + c["num_segments"] * e
        + c["patch_size"] ** 2 * 3 * e  # patch projection
        + 2 * e  # text / image norms
        + position_bias
        + c["num_encoder_layers"] * (attention + mlp + 2 * e)
        + e  # final norm
    )
    decoder = (
        (c["max_decoder_text_length"] + c["max_decoder_image_length"]) * e
        + c["num_segments"] * e
        + e  # embedding norm
        + position_bias
        + c["num_decoder_layers"] * (2 * attention + mlp + 3 * e)
        + e
    )
    return tokens + encoder + decoder
