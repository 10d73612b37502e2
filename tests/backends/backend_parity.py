"""Runs the reference parity checks on the backend in KERAS_BACKEND.

Used by test_backends.py in a subprocess (a backend is fixed per process);
prints one JSON line of maximum absolute differences.
"""

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_uio.convert.convert_checkpoint import load_checkpoint  # noqa: E402
from keras_uio.testing import assert_vqgan_codes_match  # noqa: E402

reference = pathlib.Path(sys.argv[1])
io = dict(np.load(reference / "io.npz"))
backbone, vqgan = load_checkpoint(str(reference / "checkpoint.bin"), progress=False)


def numpy(x):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x), "float64")


encoded, mask = backbone.encode(
    io["in/text_encoder_inputs"], io["in/image_encoder_inputs"], io["in/image_input_masks"]
)
valid = io["out/enc_mask"].astype(bool)
targets = io["in/text_decoder_targets"]
outputs = backbone(
    {
        "text_encoder_inputs": io["in/text_encoder_inputs"],
        "image_encoder_inputs": io["in/image_encoder_inputs"],
        "image_input_masks": io["in/image_input_masks"],
        "text_decoder_inputs": io["in/text_decoder_inputs"],
        "text_decoder_masks": (targets > 0).astype("int32"),
        "image_decoder_inputs": io["in/image_decoder_inputs"],
    }
)
images = io["in/image_decoder_targets"]
codes = numpy(vqgan.encode(images)).astype(int)
# Codes must equal the reference's except at proven float32 ties (on some
# backends and CPUs, row 0 position 184, at distances 33.396885 vs 33.39689,
# flips): keras_uio.testing decides from the distances.
try:
    ties = assert_vqgan_codes_match(vqgan, images, codes, io["out/vae_codes"])
    codes_error = None
except AssertionError as error:
    ties, codes_error = [], str(error)
decoded = numpy(vqgan.decode(io["out/vae_codes"]))
report = {
    "encoder": float(np.abs(numpy(encoded) - io["out/enc_encoded"])[valid].max()),
    "text_logits": float(
        np.abs(numpy(outputs["text_logits"]) - io["out/dec_text_logits"])[targets > 0].max()
    ),
    "image_logits": float(
        np.abs(numpy(outputs["image_logits"]) - io["out/dec_image_logits"]).max()
    ),
    "codes_error": codes_error,
    "codes_tied": len(ties),
    "vqgan_decoded": float(np.abs(decoded - io["out/vae_decoded_from_codes"]).max()),
}
print("PARITY " + json.dumps(report))
