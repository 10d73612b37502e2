"""VQ-GAN configurations.

`vqgan_presets[name]["config"]` holds `VQGAN` constructor arguments;
no weights are attached (convert them with
`keras_uio.convert.vqgan_weights.load_vqgan_checkpoint`).

Example:

```python
from keras_uio.models.vqgan.vqgan import VQGAN
from keras_uio.models.vqgan.vqgan_presets import vqgan_presets

vqgan = VQGAN(**vqgan_presets["vqgan_tiny"]["config"])
```
"""

vqgan_presets = {
    "vqgan_imagenet_f16_16384": {
        "metadata": {
            "description": (
                "taming-transformers' `vqgan_imagenet_f16_16384`, the image "
                "tokenizer of every Unified-IO model: 256x256 images <-> "
                "16x16 codes from a 16384-entry codebook."
            ),
            "params": 76073859,
            "path": "vqgan",
        },
        "config": {
            "image_size": 256,
            "channels": 128,
            "channel_multipliers": [1, 1, 2, 2, 4],
            "num_res_blocks": 2,
            "attention_resolutions": [16],
            "z_channels": 256,
            "codebook_size": 16384,
            "embed_dim": 256,
            "in_channels": 3,
            "out_channels": 3,
        },
    },
    "vqgan_tiny": {
        "metadata": {
            "description": (
                "The small random VQ-GAN of the `uio_tiny` reference "
                "checkpoint (tests only): 256x256 images <-> 16x16 codes "
                "from 256 codes of dimension 16."
            ),
            "params": 1944211,
            "path": "vqgan",
        },
        "config": {
            "image_size": 256,
            "channels": 32,
            "channel_multipliers": [1, 1, 2, 2, 2],
            "num_res_blocks": 2,
            "attention_resolutions": [16],
            "z_channels": 16,
            "codebook_size": 256,
            "embed_dim": 16,
            "in_channels": 3,
            "out_channels": 3,
        },
    },
}
