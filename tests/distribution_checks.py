"""Sharded training, generation and loading on 8 virtual CPU devices.

Run by `tests/test_distribution.py` in a fresh process (the device count
must be fixed before JAX is imported); prints one JSON object on the last
line of stdout. Can also be run by hand:
`KERAS_BACKEND=jax python tests/distribution_checks.py`.
"""

import os

# 8 virtual CPU devices; LLVM optimisation off cuts compile time by a third
# (every result is compared with an unsharded run under the same flags).
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8"
    + " --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_uio import VQGAN  # noqa: E402
from keras_uio import UnifiedIO  # noqa: E402
from keras_uio import UnifiedIOBackbone  # noqa: E402
from keras_uio import distribution as uio_distribution  # noqa: E402
from keras_uio.models.unified_io.unified_io_decoding import split_batch  # noqa: E402
from keras_uio.models.unified_io.unified_io_presets import unified_io_presets  # noqa: E402
from keras_uio.models.vqgan.vqgan_presets import vqgan_presets as vq  # noqa: E402

# `uio_tiny` (4 heads, hidden 64, MLP 96, vocabulary 1408: all divide the
# (2, 4) mesh) with one layer per stack and a 64x64 encoder image, to keep
# compiles short.
CONFIG = {
    **unified_io_presets["uio_tiny"]["config"],
    "image_size": 64,
    "max_encoder_text_length": 32,
    "max_decoder_text_length": 16,
    "num_encoder_layers": 1,
    "num_decoder_layers": 1,
}
VQGAN_CONFIG = vq["vqgan_tiny"]["config"]
BATCH = 8


def build():
    return UnifiedIO(UnifiedIOBackbone(**CONFIG), VQGAN(**VQGAN_CONFIG))


def make_batch():
    rng = np.random.default_rng(0)
    text = rng.integers(2, CONFIG["vocabulary_size"], (BATCH, 12)).astype("int32")
    text[:, 9:] = 0
    text[::3, 6:] = 0
    patches = (CONFIG["image_size"] // CONFIG["patch_size"]) ** 2
    masks = np.ones((BATCH, patches), "int32")
    masks[1::2, patches // 2 :] = 0
    targets = rng.integers(2, CONFIG["vocabulary_size"], (BATCH, 10)).astype("int32")
    targets[:, 8:] = 0
    targets[::2, 5:] = 0
    decoder_inputs = np.pad(targets[:, :-1], [(0, 0), (1, 0)])
    x = {
        "text_encoder_inputs": text,
        "image_encoder_inputs": rng.normal(
            size=(BATCH, CONFIG["image_size"], CONFIG["image_size"], 3)
        ).astype("float32"),
        "image_input_masks": masks,
        "text_decoder_inputs": decoder_inputs,
        "text_decoder_masks": (decoder_inputs > 0).astype("int32")
        | (np.arange(10) == 0)[None].astype("int32"),
    }
    return x, {"text_decoder_targets": targets}


def spec_of(variable):
    """Mesh axis (or None) per dimension, and one device's shard shape."""
    value = variable.value
    spec = list(getattr(value.sharding, "spec", ()))
    spec += [None] * (len(variable.shape) - len(spec))
    spec = [s if s is None or isinstance(s, str) else list(s) for s in spec]
    shard = value.addressable_shards[0].data.shape
    return spec, [int(d) for d in shard]


def generate(model, x):
    inputs = {
        k: x[k]
        for k in ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")
    }
    out = model.generate(inputs, max_text_length=8, stop_at_eos=False)
    return out["text_tokens"], out["scores"]


def train(model, x, y, evaluate=True):
    """One SGD step (fit), then the loss of the updated model (evaluate)."""
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9))
    history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    if not evaluate:
        return history.history["loss"][0], None
    after = model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    return history.history["loss"][0], after["loss"]


def max_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(u, "float64") - np.asarray(v, "float64"))))
        if np.size(u)
        else 0.0
        for u, v in zip(a, b)
    )


def sharded_run(distribution, weights, x, y, reference, full=True):
    """Builds under `distribution`, generates and trains; compares to `reference`.

    `full=False` skips `evaluate` (to save a compile in the data-parallel
    run).
    """
    result = {}
    with distribution.scope():
        model = build()
        model.set_weights(weights)
        result["variables"] = [
            {
                "path": v.path,
                "shape": list(v.shape),
                "spec": spec_of(v)[0],
                "shard": spec_of(v)[1],
            }
            for v in model.weights
        ]
        split = split_batch(x["text_encoder_inputs"])[0]
        result["generate_input_spec"] = (
            [
                s if s is None or isinstance(s, str) else list(s)
                for s in getattr(split, "sharding", None).spec
            ]
            if hasattr(split, "sharding")
            else None
        )
        tokens, scores = generate(model, x)
        result["generate_equal"] = bool(np.array_equal(tokens, reference["tokens"]))
        result["generate_score_diff"] = float(
            np.max(np.abs(scores - reference["scores"]))
        )
        loss, loss_after = train(model, x, y, evaluate=full)
        result["loss_diff"] = abs(loss - reference["loss"])
        if full:
            result["loss_after_diff"] = abs(loss_after - reference["loss_after"])
        result["loss"] = loss
        result["weight_diff"] = max_diff(
            [np.asarray(w) for w in model.weights], reference["weights"]
        )
        by_path = {v.path: spec_of(v)[0] for v in model.weights}
        slots = [
            (v.path, spec_of(v)[0], by_path.get(r.path))
            for v, r in zip(model.optimizer.momentums, model.trainable_weights)
        ]
        result["slot_spec_mismatches"] = [s for s in slots if s[1] != s[2]]
    return result


def error_checks():
    result = {}
    bad = {**CONFIG, "num_heads": 6}
    distribution = uio_distribution.model_parallel(4)
    try:
        uio_distribution.check_layout(bad, distribution)
        result["check_layout_error"] = None
    except ValueError as error:
        result["check_layout_error"] = str(error)
    try:
        with distribution.scope():
            UnifiedIOBackbone(**bad)
        result["build_error"] = None
    except Exception as error:  # noqa: BLE001 - the type is what is checked
        result["build_error"] = [type(error).__name__, str(error)]
    replicate = uio_distribution.model_parallel(4, on_indivisible="replicate")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with replicate.scope():
            backbone = UnifiedIOBackbone(**bad)
    result["replicate_warnings"] = len(caught)
    result["replicate_specs"] = {
        v.path: spec_of(v)[0]
        for v in backbone.weights
        if v.path
        in ("encoder_layer_0/attention/query/kernel", "encoder_layer_0/mlp/gate/kernel")
    }
    return result


def main():
    timings = {}
    start = time.time()
    keras.utils.set_random_seed(0)
    x, y = make_batch()
    model = build()
    weights = [np.asarray(w) for w in model.weights]
    timings["build"] = time.time() - start
    tokens, scores = generate(model, x)
    timings["generate"] = time.time() - start
    loss, loss_after = train(model, x, y)
    timings["train"] = time.time() - start
    reference = {
        "tokens": tokens,
        "scores": scores,
        "loss": loss,
        "loss_after": loss_after,
        "weights": [np.asarray(w) for w in model.weights],
    }
    preset = os.path.join(tempfile.mkdtemp(), "preset")
    model.save_to_preset(preset)
    timings["reference"] = time.time() - start

    results = {
        "device_count": len(keras.distribution.list_devices()),
        "reference_loss": loss,
        "weights_moved": max_diff(reference["weights"], weights),
    }
    start = time.time()
    results["model_parallel"] = sharded_run(
        uio_distribution.model_parallel(4), weights, x, y, reference
    )
    timings["model_parallel"] = time.time() - start
    start = time.time()
    results["data_parallel"] = sharded_run(
        uio_distribution.data_parallel(), weights, x, y, reference, full=False
    )
    timings["data_parallel"] = time.time() - start

    start = time.time()
    distribution = uio_distribution.model_parallel(4)
    with distribution.scope():
        loaded = UnifiedIO.from_preset(preset)
    results["preset"] = {
        "value_diff": max_diff(
            [np.asarray(w) for w in loaded.weights], reference["weights"]
        ),
        "paths": [v.path for v in loaded.weights],
        "specs": [spec_of(v)[0] for v in loaded.weights],
        # what `check_layout` predicts from the folder, without building
        "predicted": [
            [r["path"], list(r["layout"])]
            for r in uio_distribution.check_layout(preset, distribution)
        ],
    }
    timings["preset"] = time.time() - start
    start = time.time()
    results["errors"] = error_checks()
    timings["errors"] = time.time() - start
    results["timings"] = timings
    print(json.dumps(results))


if __name__ == "__main__":
    main()
