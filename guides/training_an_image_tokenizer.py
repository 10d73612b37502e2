"""
Title: Training an image tokenizer (VQ-GAN) for your domain
Author: keras-uio developers
Date created: 2026/11/28
Last modified: 2026/11/28
Description: Fit a small VQ-GAN on your own images with `VQGANTrainer`, look at its reconstructions, and plug it into a Unified-IO model.
"""

"""
## What this guide produces

A small VQ-GAN trained on photos, the plot below (originals on top,
reconstructions from the discrete codes underneath), and a `UnifiedIO` model
that writes images with it. Unified-IO's paper notes that a better image
tokenizer would lift dense outputs such as surface normals; with
`VQGANTrainer` you can fit one on your domain.

![originals and reconstructions](training_an_image_tokenizer.png)

The photos are scikit-image's bundled samples (`skimage.data`), so the
guide runs offline. Set `KERAS_UIO_GUIDE_FAST=1` for a short run (the test
suite does); the picture above comes from the full run.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
from PIL import Image
from skimage import data as skimage_data
from skimage import transform

import keras_uio

FAST = os.environ.get("KERAS_UIO_GUIDE_FAST") == "1"
SIZE = 16 if FAST else 32
keras.utils.set_random_seed(0)

"""
## Data: patches of real photos in [-1, 1]

A VQ-GAN reads images in [-1, 1]. Any `tf.data` pipeline or NumPy array of
that form works; here, random crops of four sample photos.
"""


def patches(per_image, size, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        image = getattr(skimage_data, name)().astype("float32") / 255.0
        image = transform.rescale(
            image, 96 / min(image.shape[:2]), channel_axis=-1, anti_aliasing=True
        )
        for _ in range(per_image):
            y = rng.integers(0, image.shape[0] - size + 1)
            x = rng.integers(0, image.shape[1] - size + 1)
            out.append(image[y : y + size, x : x + size])
    return (np.clip(np.stack(out), 0, 1) * 2 - 1).astype("float32")


images = patches(per_image=8 if FAST else 32, size=SIZE)
print(images.shape)

"""
## A small VQ-GAN

The same architecture as taming-transformers' f16 model, shrunk: two
resolution levels, a 64-entry codebook. `keras_uio.VQGAN`'s presets include
the full 16384-code tokenizer of every Unified-IO model.
"""

vqgan = keras_uio.VQGAN(
    image_size=SIZE,
    channels=32,
    channel_multipliers=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(),
    z_channels=8,
    codebook_size=64,
    embed_dim=8,
)
trainer = keras_uio.VQGANTrainer(vqgan, reconstruction_loss="l2")
trainer.compile(optimizer=keras.optimizers.Adam(2e-3))
before = trainer.evaluate(images, batch_size=len(images), verbose=0, return_dict=True)

"""
## Train

The loss is reconstruction + codebook + commitment; `codebook_usage` and
`perplexity` show how much of the codebook the encoder uses.
"""

history = trainer.fit(images, batch_size=8, epochs=4 if FAST else 30, verbose=0)
after = trainer.evaluate(images, batch_size=len(images), verbose=0, return_dict=True)
print(
    "reconstruction loss",
    round(before["reconstruction_loss"], 4),
    "->",
    round(after["reconstruction_loss"], 4),
    "| codebook usage",
    round(after["codebook_usage"], 2),
)
assert after["reconstruction_loss"] < before["reconstruction_loss"]

"""
## Look at the reconstructions

Encode to discrete codes, decode back, and save originals over
reconstructions as one picture.
"""

codes = np.asarray(vqgan.encode(images[:8]))
decoded = np.clip((np.asarray(vqgan.decode(codes)) + 1) / 2, 0, 1)
originals = (images[:8] + 1) / 2
grid = np.concatenate(
    [np.concatenate(list(originals), 1), np.concatenate(list(decoded), 1)], 0
)
picture = Image.fromarray((grid * 255).astype("uint8")).resize(
    (grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST
)
if not FAST:
    picture.save(
        os.path.join(
            os.path.dirname(os.path.abspath(__file__)),
            "training_an_image_tokenizer.png",
        )
    )
print("codes of the first patch:", codes[0].tolist())

"""
## Plug it into Unified-IO

A `UnifiedIO` model takes any `VQGAN` whose codebook size is the backbone's
`image_vocabulary_size` and whose code grid matches `max_decoder_image_length`
(here 16 x 16 = 256 codes of a 64-entry codebook; 8 x 8 in fast mode). Inside `UnifiedIO` the
tokenizer is frozen, so training the transformer never moves its code space.
"""

backbone = keras_uio.UnifiedIOBackbone.from_preset(
    "uio_tiny",
    load_weights=False,
    image_vocabulary_size=vqgan.codebook_size,
    max_decoder_image_length=vqgan.num_codes,
)
model = keras_uio.UnifiedIO(backbone, vqgan)
out = model.generate(
    {
        "text_encoder_inputs": np.array([[5, 6, 1]]),
        "image_encoder_inputs": np.zeros((1, 384, 384, 3), "float32"),
        "image_input_masks": np.ones((1, 576), "int32"),
    },
    max_text_length=2,
    image=True,
)
print("generated image:", out["image"].shape, "from codes", out["image_tokens"].shape)
assert not any(
    id(v) in {id(w) for w in vqgan.weights} for v in model.trainable_variables
)
