"""The named Unified-IO presets: data only.

Every name that `UnifiedIO.from_preset` / `UnifiedIOBackbone.from_preset`
accept is here. An entry's `metadata` describes it; then either
- `config` (an architecture: the four paper sizes, Lu et al. 2023 Table 1,
  and a tiny one for tests) with the original `checkpoint` file name and
  the `vqgan` preset it pairs with. No weights ship with these: convert
  the original checkpoint with `keras-uio convert small_1000k.bin
  ./uio_small` and load the folder, or pass `load_weights=False`;
- or `metadata["folder"]` (a trained model shipped inside the package in
  `keras_uio/presets/<folder>/`, loaded with its weights).

`keras_uio.models.unified_io.unified_io_backbone.resolve_preset` turns a
name or path into what to load.
"""

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


unified_io_presets = {
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
    "uio_tiny_easyvqa": {
        "metadata": {
            "description": (
                "A 1.6M-parameter Unified-IO with a 2.8M-parameter VQ-GAN, "
                "trained by keras-uio (scripts/train_easy_vqa.py) on easy-vqa: "
                "VQA, captioning, localization, detection, segmentation, "
                "classification and text-to-image on 64x64 shape images."
            ),
            "folder": "uio_tiny_easyvqa",
        },
    },
}
