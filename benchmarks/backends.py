"""Generation and training speed of `uio_small` on JAX, TensorFlow and PyTorch.

Each backend runs in its own subprocess (a Keras backend is fixed per
process), one after the other, on the same workloads; the parent prints a
table of the times and their ratios to JAX's.

Workloads (float32, `UnifiedIO.from_preset("uio_small",
load_weights=False)`: random weights, the full VQ-GAN):
- `text b1`, `text b8`: `generate` writing 32 text tokens greedily
  (`stop_at_eos=False`) from a 32-token prompt and a 384x384 image (all 576
  patches);
- `image b1`: `generate(max_text_length=1, image=True)`: one text step, 256
  image codes and the VQ-GAN decode;
- `train step`: one `fit` step (the default Adafactor) on a batch of
  `--train-batch` examples: that prompt and image in, 16 text tokens and 256
  image codes out (codes given, so the VQ-GAN does not run in the step).

Reported per workload: the first call (tracing/compiling, plus one run) and
the median of `--repeats` later calls; ratios are `backend / JAX` of the
medians (above 1: slower than JAX). How each backend runs generation: JAX
jits the whole loop with XLA, TensorFlow runs it as a `tf.function` graph,
PyTorch eagerly step by step; training uses Keras' default for each
backend (`jit_compile="auto"`).

Usage:
    taskset -c 1 python benchmarks/backends.py
    ... --backends jax torch --repeats 3 --train-batch 2
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BACKENDS = ("jax", "tensorflow", "torch")
PRESET = "uio_small"
TEXT_TOKENS = 32
PROMPT_LENGTH = 32
TARGET_TEXT_LENGTH = 16
WORKLOADS = ("text b1", "text b8", "image b1", "train step")
RESULT_PREFIX = "BACKEND_RESULT "


# --- the worker (one backend) ------------------------------------------------
def encoder_inputs(backbone, batch, rng):
    """A random 32-token prompt and a random fully visible image per row."""
    import numpy as np

    size = backbone.image_size
    patches = (size // backbone.patch_size) ** 2
    return {
        "text_encoder_inputs": np.concatenate(
            [
                rng.integers(2, 1000, (batch, PROMPT_LENGTH - 1)),
                np.ones((batch, 1), "int64"),  # EOS
            ],
            axis=1,
        ).astype("int32"),
        "image_encoder_inputs": rng.normal(size=(batch, size, size, 3)).astype(
            "float32"
        ),
        "image_input_masks": np.ones((batch, patches), "int32"),
    }


def training_batch(backbone, batch, rng):
    """`(x, y)` of one fit step with given image codes."""
    import numpy as np

    b = backbone
    text = rng.integers(2, 1000, (batch, TARGET_TEXT_LENGTH)).astype("int32")
    text[:, -1] = 1
    codes = rng.integers(
        0, b.image_vocabulary_size, (batch, b.max_decoder_image_length)
    )
    ids = (codes + b.vocabulary_size).astype("int32")
    x = {
        **encoder_inputs(b, batch, rng),
        "text_decoder_inputs": np.pad(text[:, :-1], [(0, 0), (1, 0)]),
        "text_decoder_masks": np.ones_like(text),
        "image_decoder_inputs": np.concatenate(
            [np.full((batch, 1), b.image_start_id, "int32"), ids[:, :-1]], axis=1
        ),
    }
    return x, {"text_decoder_targets": text, "image_decoder_targets": ids}


def time_calls(fn, repeats):
    """`(first call seconds, median of `repeats` later calls)`."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def time_training(model, x, y, repeats):
    """First `fit` step and the median of `repeats` later ones."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # the step has finished
            self.times.append(time.perf_counter() - self.start)

    model.compile()
    timer = StepTimer()
    batch = len(x["text_encoder_inputs"])
    model.fit(
        x,
        y,
        batch_size=batch,
        epochs=repeats + 1,
        verbose=0,
        callbacks=[timer],
        shuffle=False,
    )
    return timer.times[0], statistics.median(timer.times[1:])


def run_worker(repeats, train_batch):
    """Times every workload on the current backend; prints one JSON line."""
    import keras
    import numpy as np

    import keras_uio

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model = keras_uio.UnifiedIO.from_preset(PRESET, load_weights=False)
    b = model.backbone
    results = {}
    for batch in (1, 8):
        inputs = encoder_inputs(b, batch, rng)
        results[f"text b{batch}"] = time_calls(
            lambda inputs=inputs: model.generate(
                inputs, max_text_length=TEXT_TOKENS, stop_at_eos=False
            ),
            repeats,
        )
        log(f"text b{batch}: {results[f'text b{batch}']}")
    inputs = encoder_inputs(b, 1, rng)
    results["image b1"] = time_calls(
        lambda: model.generate(inputs, max_text_length=1, image=True), repeats
    )
    log(f"image b1: {results['image b1']}")
    x, y = training_batch(b, train_batch, rng)
    results["train step"] = time_training(model, x, y, repeats)
    log(f"train step: {results['train step']}")
    report = {
        "backend": keras.config.backend(),
        "results": results,
        "train_jit_compile": bool(model.jit_compile),
    }
    print(RESULT_PREFIX + json.dumps(report), flush=True)


# --- the parent --------------------------------------------------------------
def log(message):
    print(message, file=sys.stderr, flush=True)


def run_backend(backend, repeats, train_batch):
    """One worker subprocess; its report, or `None` with its error shown."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        "--repeats",
        str(repeats),
        "--train-batch",
        str(train_batch),
    ]
    log(f"== {backend}")
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    log(f"   {time.perf_counter() - start:.0f} s")
    lines = [l for l in done.stdout.splitlines() if l.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        log(f"{backend} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return None
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def format_table(reports, train_batch):
    """Markdown rows: first call and median per backend, ratio to JAX."""
    backends = [b for b in reports if reports[b] is not None]
    header = "| workload | " + " | ".join(
        f"{b} first s | {b} median s" for b in backends
    )
    ratios = [b for b in backends if b != "jax" and "jax" in backends]
    header += "".join(f" | {b} / jax" for b in ratios) + " |"
    rows = [header, "|---" * (1 + 2 * len(backends) + len(ratios)) + "|"]
    for workload in WORKLOADS:
        name = workload + (f" (b{train_batch})" if workload == "train step" else "")
        cells = []
        for b in backends:
            first, median = reports[b]["results"][workload]
            cells += [f"{first:.2f}", f"{median:.2f}"]
        for b in ratios:
            ratio = (
                reports[b]["results"][workload][1]
                / reports["jax"]["results"][workload][1]
            )
            cells.append(f"{ratio:.2f}x")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed calls after the first (default 2)"
    )
    parser.add_argument(
        "--train-batch",
        type=int,
        default=2,
        help="examples per training step (default 2)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 1 or args.train_batch < 1:
        parser.error("`--repeats` and `--train-batch` must be >= 1.")
    if args.worker:
        run_worker(args.repeats, args.train_batch)
        return
    reports = {b: run_backend(b, args.repeats, args.train_batch) for b in args.backends}
    print(
        f"{PRESET}, random weights, float32; seconds "
        f"(first call = trace/compile + one run; median of {args.repeats})"
    )
    print(format_table(reports, args.train_batch))
    for b, report in reports.items():
        if report is not None:
            print(f"{b}: fit jit_compile={report['train_jit_compile']}")
    if any(r is None for r in reports.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
