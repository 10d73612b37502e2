"""Built-in Unified-IO architectures and the bundled trained preset.

The four paper sizes (Lu et al., 2023, Table 1) and a tiny one for tests.
No weights ship with them: convert an original checkpoint with
`keras-uio convert small_1000k.bin ./uio_small` and load the folder, or pass
`load_weights=False` for random weights.

`bundled_presets` are trained models inside the package
(`keras_uio/presets/<name>/`), loaded by name.
"""

import os

PRESETS_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "presets")

bundled_presets = {
    "uio_tiny_easyvqa": {
        "description": (
            "A 1.5M-parameter Unified-IO with a 2.8M-parameter VQ-GAN, "
            "trained by keras-uio (scripts/train_easy_vqa.py) on easy-vqa: "
            "VQA, captioning, localization, detection, segmentation, "
            "classification and text-to-image on 64x64 shape images."
        ),
    },
}


def bundled_preset_path(preset):
    """The folder of a bundled preset name; anything else unchanged.

    An existing local folder wins over a bundled name (keras-hub's rule):
    with `./uio_tiny_easyvqa` in the working directory, the name means that
    folder and is returned unchanged.
    """
    if isinstance(preset, str) and os.path.isdir(preset):
        return preset
    if isinstance(preset, str) and preset in bundled_presets:
        path = os.path.join(PRESETS_DIR, preset)
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"The bundled preset {preset!r} is missing from {path}; "
                "reinstall keras-uio, or rebuild it with "
                "`python scripts/train_easy_vqa.py --out " + path + "`."
            )
        return path
    return preset

_COMMON = {
    "vocabulary_size": 33152,
    "image_vocabulary_size": 16384,
    "head_dim": 64,
    "image_size": 384,
    "patch_size": 16,
    "max_encoder_text_length": 256,
    "max_decoder_text_length": 256,
    "max_decoder_image_length": 256,
}


def _preset(description, checkpoint, **config):
    return {
        "metadata": {
            "description": description,
            "checkpoint": checkpoint,
            "vqgan": "vqgan_imagenet_f16_16384",
        },
        "config": {**_COMMON, **config},
    }


backbone_presets = {
    "uio_small": _preset(
        "Unified-IO Small (paper: 71M transformer parameters).",
        "small_1000k.bin",
        hidden_dim=512,
        num_heads=6,
        num_encoder_layers=8,
        num_decoder_layers=8,
        intermediate_dim=1024,
        num_segments=2,
    ),
    "uio_base": _preset(
        "Unified-IO Base (paper: 241M transformer parameters).",
        "base_1000k.bin",
        hidden_dim=768,
        num_heads=12,
        num_encoder_layers=12,
        num_decoder_layers=12,
        intermediate_dim=2048,
        num_segments=2,
    ),
    "uio_large": _preset(
        "Unified-IO Large (paper: 776M transformer parameters).",
        "large_1000k.bin",
        hidden_dim=1024,
        num_heads=16,
        num_encoder_layers=24,
        num_decoder_layers=24,
        intermediate_dim=2816,
        num_segments=2,
    ),
    "uio_xl": _preset(
        "Unified-IO XL (paper: 2.8B transformer parameters).",
        "xl_1000k.bin",
        hidden_dim=2048,
        num_heads=32,
        num_encoder_layers=24,
        num_decoder_layers=24,
        intermediate_dim=5120,
        num_segments=8,
    ),
    "uio_tiny": {
        "metadata": {
            "description": (
                "A tiny random configuration (the one of the reference "
                "outputs in tests/data/reference/uio_tiny) for tests and demos."
            ),
            "checkpoint": None,
            "vqgan": "vqgan_tiny",
        },
        "config": {
            **_COMMON,
            "vocabulary_size": 1152,
            "image_vocabulary_size": 256,
            "hidden_dim": 64,
            "num_heads": 4,
            "head_dim": 8,
            "num_encoder_layers": 2,
            "num_decoder_layers": 2,
            "intermediate_dim": 96,
            "num_segments": 2,
        },
    },
}


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
