"""
Title: Distributed training and inference with keras.distribution
Author: keras-uio team
Date created: 2026/11/28
Last modified: 2026/11/28
Description: Data parallel and 2-D (batch x model) sharded Unified-IO on JAX: layouts, loading a preset sharded, fit and generate, several hosts.
"""

"""
## What this guide does

Unified-IO XL has 2.9B parameters and was trained with 4-way model and
128-way data parallelism. With keras-uio you get there through
`keras.distribution` on JAX, without changing any model code: a
*distribution*, active while the model is built, decides where each
variable lives, and JAX partitions `fit`, `evaluate` and `generate` to
match. `keras_uio.distribution` packages the common set-ups.

This guide trains and generates with a tiny random model under data
parallelism and under a 2-D `("batch", "model")` mesh, inspects the layout
of every variable, loads a saved preset straight into sharded variables,
and shows how a run over several hosts starts.

It runs on whatever devices JAX sees: GPUs, TPUs, or CPU. With a single
device every mesh is 1 x 1 and everything still runs. To see real sharding
on a CPU-only machine, JAX can split the CPU into 8 virtual devices; that
flag must be set before JAX is first imported, which the cell below does
when you run this file directly. (Virtual devices share the same cores:
that shows the mechanics, not a speed-up.)

Set `KERAS_UIO_GUIDE_FAST=1` for a shorter run (the test suite does).
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
if "jax" not in sys.modules:
    # 8 virtual devices if JAX runs on the CPU (no effect on accelerators,
    # nor once JAX is imported).
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import tempfile

import keras
import numpy as np

import keras_uio
from keras_uio import distribution as uio_distribution

FAST = os.environ.get("KERAS_UIO_GUIDE_FAST") == "1"

"""
## Several hosts: start first

On more than one machine, every process runs the same script and joins the
run before doing anything else with JAX. `initialize_multi_host` wraps
`jax.distributed.initialize` and makes the random seed agree across
processes, so every host builds the same initial weights. On Cloud TPU, and
under SLURM or Open MPI, JAX finds the cluster itself: call it without
arguments. Elsewhere, give the coordinator's address (process 0), the number
of processes and this process's rank:

```shell
# on host 0; on host 1 the same with UIO_PROCESS_ID=1
UIO_COORDINATOR=10.0.0.1:1234 UIO_NUM_PROCESSES=2 UIO_PROCESS_ID=0 \\
    python distributed_training.py
```

Afterwards `keras.distribution.list_devices()` lists the devices of all
hosts and the meshes below span them. With NumPy inputs each process passes
its own share of every global batch (`tf.data` inputs are split per host
automatically). The cell only runs when those variables are set.
"""

if "UIO_COORDINATOR" in os.environ:
    process_index, process_count = uio_distribution.initialize_multi_host(
        coordinator_address=os.environ["UIO_COORDINATOR"],
        num_processes=int(os.environ["UIO_NUM_PROCESSES"]),
        process_id=int(os.environ["UIO_PROCESS_ID"]),
    )
    print(f"process {process_index} of {process_count}")

devices = keras.distribution.list_devices()
print(len(devices), "devices:", devices)

"""
## A small model and a batch

`uio_tiny` (4 heads, width 64) with random weights. In fast mode it gets one
layer per stack and 64x64 input images, to keep compilation short. The batch
has 8 rows, a multiple of every batch axis below.
"""

CONFIG = {
    **keras_uio.UnifiedIOBackbone.presets["uio_tiny"]["config"],
    **(
        {"num_encoder_layers": 1, "num_decoder_layers": 1, "image_size": 64}
        if FAST
        else {}
    ),
}


def build_model():
    keras.utils.set_random_seed(0)
    return keras_uio.UnifiedIO(keras_uio.UnifiedIOBackbone(**CONFIG))


rng = np.random.default_rng(0)
batch, size = 8, CONFIG["image_size"]
patches = (size // CONFIG["patch_size"]) ** 2
targets = rng.integers(2, CONFIG["vocabulary_size"], (batch, 8)).astype("int32")
decoder_inputs = np.pad(targets[:, :-1], [(0, 0), (1, 0)])
x = {
    "text_encoder_inputs": rng.integers(2, 1000, (batch, 16)).astype("int32"),
    "image_encoder_inputs": rng.normal(size=(batch, size, size, 3)).astype("float32"),
    "image_input_masks": np.ones((batch, patches), "int32"),
    "text_decoder_inputs": decoder_inputs,
    "text_decoder_masks": np.ones_like(decoder_inputs),
}
y = {"text_decoder_targets": targets}
encoder_inputs = {
    k: x[k]
    for k in ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")
}

"""
## Data parallel

Every device holds all the weights and gets `batch / devices` rows of each
batch; gradients are averaged across devices. Build (or load) the model and
train inside the distribution's scope (or set it globally with
`keras.distribution.set_distribution(...)`).
"""

data_parallel = uio_distribution.data_parallel()
print("mesh:", data_parallel.device_mesh)
with data_parallel.scope():
    model = build_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
print("data-parallel loss:", history.history["loss"][0])

preset = os.path.join(tempfile.mkdtemp(), "uio_tiny_trained")
model.save_to_preset(preset)

"""
## Model parallel: a 2-D mesh and its layout

`model_parallel(n)` arranges the devices as `devices / n` rows (the
`"batch"` axis: data parallel) by `n` columns (the `"model"` axis: one copy of
the model split over `n` devices). The layout follows keras-hub's convention
for transformers: the model axis splits the vocabulary, the attention heads
and the MLP width; the batch axis splits the hidden dimension of the same
matrices (FSDP-style, gathered where used). The rules come from
`UnifiedIOBackbone.get_layout_map` and `VQGAN.get_layout_map`.

The model axis must divide the head count: 4 here (`uio_small`'s 6 heads
would need 2, 3 or 6).
"""

model_axis = max(n for n in (1, 2, 4) if len(devices) % n == 0)
model_parallel = uio_distribution.model_parallel(model_axis)
print("mesh:", model_parallel.device_mesh)

"""
Which layout would each variable get? `check_layout` answers without
building or loading anything (the model is built abstractly: shapes only),
so it is also how to check an XL layout on a laptop. Variables without a
rule (norms, segment embeddings) are replicated on purpose.
"""

rows = uio_distribution.check_layout(preset, model_parallel)
print(uio_distribution.format_layout([r for r in rows if "layer_0/" in r["path"]]))
print(
    sum(any(r["layout"]) for r in rows),
    "of",
    len(rows),
    "variables have a sharding rule",
)

"""
A dimension that its axis does not divide is reported before anything is
allocated, naming the variable, its shape and the axis size (pass
`on_indivisible="replicate"` to replicate such variables instead):
"""

if model_axis > 1:
    small_heads = {
        **CONFIG,
        "num_heads": 3,
        "num_encoder_layers": 1,
        "num_decoder_layers": 1,
    }
    try:
        uio_distribution.check_layout(small_heads, model_parallel)
    except ValueError as error:
        print("ValueError:", error)

"""
## Load a preset straight into sharded variables

Under the model-parallel scope `from_preset` creates every variable with
its final layout and reads the weights file one variable at a time into the
shards, so no device ever holds the whole model.
"""

with model_parallel.scope():
    sharded = keras_uio.UnifiedIO.from_preset(preset)

for variable in sharded.backbone.get_layer("encoder_layer_0").weights[:3]:
    value = variable.value
    # (on a single device JAX keeps a plain single-device placement)
    spec = getattr(value.sharding, "spec", "one device")
    print(
        f"{variable.path:<40} {str(tuple(variable.shape)):<12} {str(spec):<28} "
        f"shard on one device: {value.addressable_shards[0].data.shape}"
    )

"""
## Generate under sharding

`generate` needs nothing new: the compiled decoding loop is partitioned like
the weights, and each data-parallel replica decodes its own rows. Greedy
decoding gives the same tokens as the data-parallel copy of the model.
"""

with model_parallel.scope():
    sharded_tokens = sharded.generate(encoder_inputs, max_text_length=6)["text_tokens"]
with data_parallel.scope():
    tokens = model.generate(encoder_inputs, max_text_length=6)["text_tokens"]
print(sharded_tokens[:2])
assert (sharded_tokens == tokens).all()

"""
## Train under sharding

The same `fit` call, inside the scope; it continues from the preset's
weights. Optimiser state is sharded like the weights it belongs to. (Fast
mode skips this step to save a compilation; the tests in
`tests/test_distribution.py` check that a sharded step updates the weights
exactly as an unsharded one.)
"""

if not FAST:
    with model_parallel.scope():
        sharded.compile(optimizer=keras.optimizers.SGD(0.1))
        history = sharded.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    print("model-parallel loss:", history.history["loss"][0])

"""
## Going further

- `benchmarks/distributed.py` times a training step and `generate` on 1
  and 8 devices.
- Bigger models: `check_layout("uio_xl", model_parallel)` (or your
  converted preset folder) before loading.
- Your own layout: edit the `LayoutMap` that
  `keras_uio.distribution.get_layout_map(mesh)` returns and pass it as
  `model_parallel(layout_map=...)`.
"""
