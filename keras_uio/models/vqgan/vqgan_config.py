"""VQ-GAN configuration: validation, derived sizes, parameter count.

Everything here works on a plain config dict, without building layers.
"""

import math

import numpy as np

from keras_uio.models.vqgan.finite_scalar_quantizer import check_levels

NORM_GROUPS = 32  # taming-transformers' (and so Unified-IO's) group norms

CONFIG_FIELDS = (
    "image_size",
    "channels",
    "channel_multipliers",
    "num_res_blocks",
    "attention_resolutions",
    "z_channels",
    "codebook_size",
    "embed_dim",
    "in_channels",
    "out_channels",
    "norm_groups",
    "fsq_levels",
)


def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(
            f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}"
        )
    if value < minimum:
        raise ValueError(
            f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def _int_tuple(name, values, allow_empty):
    if isinstance(values, (int, np.integer)) or not hasattr(values, "__iter__"):
        raise ValueError(
            f"`{name}` must be a sequence of positive ints. Received: {name}={values!r}"
        )
    values = tuple(values)
    if not values and not allow_empty:
        raise ValueError(f"`{name}` must not be empty. Received: {name}={values!r}")
    return tuple(_positive_int(f"{name}[{i}]", v) for i, v in enumerate(values))


def validate_vqgan_config(
    image_size,
    channels,
    channel_multipliers,
    num_res_blocks,
    attention_resolutions,
    z_channels,
    codebook_size,
    embed_dim,
    in_channels=3,
    out_channels=3,
    norm_groups=NORM_GROUPS,
    fsq_levels=None,
):
    """Checks a VQ-GAN configuration; returns it as a normalised dict.

    Raises a `ValueError` naming the field, the expectation and the value.
    """
    config = {
        "image_size": _positive_int("image_size", image_size),
        "channels": _positive_int("channels", channels),
        "channel_multipliers": _int_tuple(
            "channel_multipliers", channel_multipliers, allow_empty=False
        ),
        "num_res_blocks": _positive_int("num_res_blocks", num_res_blocks),
        "attention_resolutions": _int_tuple(
            "attention_resolutions", attention_resolutions, allow_empty=True
        ),
        "z_channels": _positive_int("z_channels", z_channels),
        "codebook_size": _positive_int("codebook_size", codebook_size),
        "embed_dim": _positive_int("embed_dim", embed_dim),
        "in_channels": _positive_int("in_channels", in_channels),
        "out_channels": _positive_int("out_channels", out_channels),
        "norm_groups": _positive_int("norm_groups", norm_groups),
        "fsq_levels": None if fsq_levels is None else check_levels(fsq_levels),
    }
    levels = config["fsq_levels"]
    if levels is not None and (
        config["codebook_size"] != math.prod(levels)
        or config["embed_dim"] != len(levels)
    ):
        raise ValueError(
            "With `fsq_levels`, `codebook_size` must be their product and "
            "`embed_dim` their count. Received: "
            f"fsq_levels={levels}, codebook_size={codebook_size}, "
            f"embed_dim={embed_dim} (expected codebook_size="
            f"{math.prod(levels)}, embed_dim={len(levels)})"
        )
    halvings = len(config["channel_multipliers"]) - 1
    if config["image_size"] % (2**halvings) != 0:
        raise ValueError(
            f"`image_size` must be divisible by 2**{halvings} (one halving "
            "per extra entry of `channel_multipliers`). Received: "
            f"image_size={image_size}, channel_multipliers="
            f"{tuple(config['channel_multipliers'])}"
        )
    for i, multiplier in enumerate(config["channel_multipliers"]):
        width = config["channels"] * multiplier
        if width % config["norm_groups"] != 0:
            raise ValueError(
                f"`channels * channel_multipliers[{i}]` must be divisible by "
                f"`norm_groups`. Received: channels={channels}, "
                f"channel_multipliers[{i}]={multiplier}, "
                f"norm_groups={config['norm_groups']}"
            )
    return config


def grid_size(config):
    """Latent grid side: `image_size / 2**(levels - 1)`."""
    levels = len(config["channel_multipliers"])
    return config["image_size"] // 2 ** (levels - 1)


def level_resolutions(config):
    """Feature-map size of each level, from full resolution down."""
    return [
        config["image_size"] // 2**level
        for level in range(len(config["channel_multipliers"]))
    ]


# --- parameter count ---------------------------------------------------------


def _conv_params(kernel_size, in_channels, out_channels):
    return kernel_size * kernel_size * in_channels * out_channels + out_channels


def _res_block_params(in_channels, out_channels):
    params = 2 * in_channels + _conv_params(3, in_channels, out_channels)
    params += 2 * out_channels + _conv_params(3, out_channels, out_channels)
    if in_channels != out_channels:
        params += _conv_params(1, in_channels, out_channels)
    return params


def _attention_params(channels):
    return 2 * channels + 4 * _conv_params(1, channels, channels)


def count_vqgan_parameters(config):
    """Number of parameters of a VQ-GAN config, without building it.

    Args:
        config: dict of `VQGAN` constructor arguments (missing fields take
            the constructor defaults; `name`, `dtype`, ... are ignored).

    Example:

    ```python
    from keras_uio.models.vqgan.vqgan_config import count_vqgan_parameters
    from keras_uio.models.vqgan.vqgan_presets import vqgan_presets

    config = vqgan_presets["vqgan_imagenet_f16_16384"]["config"]
    count_vqgan_parameters(config)  # 76073859
    ```
    """
    defaults = {
        "image_size": 256,
        "channels": 128,
        "channel_multipliers": (1, 1, 2, 2, 4),
        "num_res_blocks": 2,
        "attention_resolutions": (16,),
        "z_channels": 256,
        "codebook_size": 16384,
        "embed_dim": 256,
    }
    defaults.update({k: v for k, v in config.items() if k in CONFIG_FIELDS})
    c = validate_vqgan_config(**defaults)
    widths = [c["channels"] * m for m in c["channel_multipliers"]]
    resolutions = level_resolutions(c)
    attention = c["attention_resolutions"]
    middle = 2 * _res_block_params(widths[-1], widths[-1])
    middle += _attention_params(widths[-1])

    encoder = _conv_params(3, c["in_channels"], c["channels"])
    width = c["channels"]
    for level, out in enumerate(widths):
        for _ in range(c["num_res_blocks"]):
            encoder += _res_block_params(width, out)
            width = out
            if resolutions[level] in attention:
                encoder += _attention_params(width)
        if level != len(widths) - 1:
            encoder += _conv_params(3, width, width)
    encoder += middle + 2 * width + _conv_params(3, width, c["z_channels"])

    decoder = _conv_params(3, c["z_channels"], widths[-1]) + middle
    width = widths[-1]
    for level in reversed(range(len(widths))):
        for _ in range(c["num_res_blocks"] + 1):
            decoder += _res_block_params(width, widths[level])
            width = widths[level]
            if resolutions[level] in attention:
                decoder += _attention_params(width)
        if level != 0:
            decoder += _conv_params(3, width, width)
    decoder += 2 * width + _conv_params(3, width, c["out_channels"])

    quantizer = 0 if c["fsq_levels"] else c["codebook_size"] * c["embed_dim"]
    quant_convs = _conv_params(1, c["z_channels"], c["embed_dim"])
    quant_convs += _conv_params(1, c["embed_dim"], c["z_channels"])
    return encoder + decoder + quantizer + quant_convs
