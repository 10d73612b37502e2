"""The VQ-GAN's encoder and decoder stacks, as functional Keras models.

`build_encoder(config)` maps images `[B, R, R, in]` to latents
`[B, grid, grid, z_channels]`; `build_decoder(config)` maps latents back to
images `[B, R, R, out]`. `config` is a dict from
`vqgan_config.validate_vqgan_config`. Layer names follow the original
checkpoint (decoder level `up_0` is the lowest resolution).
"""

import keras

from keras_uio.layers.host_initializer import host_conv2d
from keras_uio.layers.host_initializer import host_group_norm
from keras_uio.models.vqgan.vqgan_attention_block import VQGANAttentionBlock
from keras_uio.models.vqgan.vqgan_config import grid_size
from keras_uio.models.vqgan.vqgan_config import level_resolutions
from keras_uio.models.vqgan.vqgan_downsample import VQGANDownsample
from keras_uio.models.vqgan.vqgan_res_block import VQGANResBlock
from keras_uio.models.vqgan.vqgan_upsample import VQGANUpsample


def _conv(filters, kernel_size, name, dtype):
    return host_conv2d(filters, kernel_size, padding="same", dtype=dtype, name=name)


def _swish(name, dtype):
    return keras.layers.Activation("silu", dtype=dtype, name=name)


def _middle(x, groups, dtype):
    def block(name):
        return VQGANResBlock(x.shape[-1], groups=groups, dtype=dtype, name=name)

    x = block("mid_block_1")(x)
    x = VQGANAttentionBlock(groups=groups, dtype=dtype, name="mid_attn_1")(x)
    return block("mid_block_2")(x)


def _output_head(x, filters, groups, dtype):
    x = host_group_norm(groups=groups, epsilon=1e-6, dtype=dtype, name="norm_out")(x)
    x = _swish("swish_out", dtype)(x)
    return _conv(filters, 3, "conv_out", dtype)(x)


def build_encoder(config, dtype=None):
    """image [B, R, R, in] -> latents [B, grid, grid, z_channels]."""
    size = config["image_size"]
    multipliers = config["channel_multipliers"]
    groups = config["norm_groups"]
    images = keras.Input((size, size, config["in_channels"]), name="images")
    x = _conv(config["channels"], 3, "conv_in", dtype)(images)
    resolutions = level_resolutions(config)
    for level, multiplier in enumerate(multipliers):
        for block in range(config["num_res_blocks"]):
            x = VQGANResBlock(
                config["channels"] * multiplier,
                groups=groups,
                dtype=dtype,
                name=f"down_{level}_block_{block}",
            )(x)
            if resolutions[level] in config["attention_resolutions"]:
                x = VQGANAttentionBlock(
                    groups=groups, dtype=dtype, name=f"down_{level}_attn_{block}"
                )(x)
        if level != len(multipliers) - 1:
            x = VQGANDownsample(dtype=dtype, name=f"down_{level}_downsample")(x)
    x = _middle(x, groups, dtype)
    x = _output_head(x, config["z_channels"], groups, dtype)
    return keras.Model(images, x, name="encoder")


def build_decoder(config, dtype=None):
    """latents [B, grid, grid, z_channels] -> images [B, R, R, out]."""
    grid = grid_size(config)
    multipliers = config["channel_multipliers"]
    groups = config["norm_groups"]
    latents = keras.Input((grid, grid, config["z_channels"]), name="latents")
    x = _conv(config["channels"] * multipliers[-1], 3, "conv_in", dtype)(latents)
    x = _middle(x, groups, dtype)
    resolutions = level_resolutions(config)
    # Levels run from the lowest resolution up; `up_0` is the lowest.
    for index, level in enumerate(reversed(range(len(multipliers)))):
        for block in range(config["num_res_blocks"] + 1):
            x = VQGANResBlock(
                config["channels"] * multipliers[level],
                groups=groups,
                dtype=dtype,
                name=f"up_{index}_block_{block}",
            )(x)
            if resolutions[level] in config["attention_resolutions"]:
                x = VQGANAttentionBlock(
                    groups=groups, dtype=dtype, name=f"up_{index}_attn_{block}"
                )(x)
        if level != 0:
            x = VQGANUpsample(dtype=dtype, name=f"up_{index}_upsample")(x)
    x = _output_head(x, config["out_channels"], groups, dtype)
    return keras.Model(latents, x, name="decoder")
