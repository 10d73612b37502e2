"""
Title: Converting the original Unified-IO checkpoints
Author: keras-uio developers
Date created: 2026/11/28
Last modified: 2026/11/28
Description: Turn an original `*.bin` checkpoint into a keras-uio preset and check it against the original's numbers.
"""

"""
## What this guide produces

A preset folder converted from an original Unified-IO checkpoint, loaded
back with `from_preset`, and a check that it computes what the original
computes. The released checkpoints (`small_1000k.bin` ... `xl_1000k.bin`,
0.6 to 10.9 GB) are downloaded from the links in the
allenai/unified-io-inference README; this guide runs offline on the small
random checkpoint that ships with keras-uio's tests, which is in exactly the
same format and comes with outputs of the original code.

Set `KERAS_UIO_GUIDE_FAST=1` to run it quickly (the test suite does).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import pathlib
import tempfile

import numpy as np

import keras_uio

REFERENCE = (
    pathlib.Path(keras_uio.__file__).parents[1] / "tests/data/reference/uio_tiny"
)
CHECKPOINT = REFERENCE / "checkpoint.bin"
FAST = os.environ.get("KERAS_UIO_GUIDE_FAST") == "1"

"""
## Look inside a checkpoint without loading it

The files are flax msgpack. keras-uio reads their layout without touching
the tensor bytes, so even XL's layout is read in milliseconds.
"""

from keras_uio.convert.checkpoint import read_checkpoint_shapes
from keras_uio.convert.unified_io_weights import backbone_config_from_shapes

shapes = read_checkpoint_shapes(CHECKPOINT)
print(len(shapes), "parameters, e.g.", shapes[("token_embedder", "embedding")])
print(backbone_config_from_shapes(shapes))

"""
## Convert

`keras-uio convert CHECKPOINT OUT_DIR` does the same from the shell; add
`--vocabulary spiece.model` (T5's SentencePiece model) to bundle the
tokenizer, and `--dtype bfloat16` to halve the memory of large models.
"""

out_dir = os.path.join(tempfile.mkdtemp(), "uio_converted")
backbone, vqgan = keras_uio.convert_checkpoint(str(CHECKPOINT), out_dir)
print(sorted(os.listdir(out_dir)))

"""
## Load it back

The folder is a keras-hub preset: `keras_hub.models.Backbone.from_preset`
returns our class, and `UnifiedIO.from_preset` also picks up the VQ-GAN
from `vqgan/`.
"""

model = keras_uio.UnifiedIO.from_preset(out_dir)
print(type(model.backbone).__name__, model.backbone.count_params(), "parameters")

"""
## Check it against the original

`io.npz` holds inputs and outputs of the original implementation. Compare
the teacher-forced logits and a greedy generation.
"""

io = dict(np.load(REFERENCE / "io.npz"))
inputs = {
    k: io["in/" + k]
    for k in ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")
}
targets = io["in/text_decoder_targets"]
logits = model.backbone(
    {
        **inputs,
        "text_decoder_inputs": io["in/text_decoder_inputs"],
        "text_decoder_masks": (targets > 0).astype("int32"),
        "image_decoder_inputs": io["in/image_decoder_inputs"],
    }
)
difference = np.abs(np.asarray(logits["text_logits"]) - io["out/dec_text_logits"])
print("max |text logits - original|:", difference[targets > 0].max())
assert difference[targets > 0].max() < 1e-4

generated = model.generate(inputs, max_text_length=8, image=not FAST, stop_at_eos=False)
print("generated text ids:", generated["text_tokens"].tolist())
assert (generated["text_tokens"] == io["out/gen_text_tokens"]).all()
if not FAST:
    assert (generated["image_tokens"] == io["out/gen_image_tokens"]).all()

"""
## Memory

Conversion holds the model plus one tensor at a time. See
`benchmarks/memory.py` for measured peaks of every size.
"""
