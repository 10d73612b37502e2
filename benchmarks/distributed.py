"""Training step and generation time on 1 vs 8 (virtual) devices.

Each setup runs in a fresh process, because JAX fixes the device count
when it is first imported (`XLA_FLAGS=--xla_force_host_platform_device_count=N`
on CPU):

- `single`: 1 device, no distribution.
- `data`: 8 devices, `keras_uio.distribution.data_parallel()`.
- `model`: 8 devices, `keras_uio.distribution.model_parallel(4)`, a
  (2, 4) `("batch", "model")` mesh with the backbone's layout map.

Workload: `UnifiedIO` with random weights of `--preset` (default
`uio_tiny`; the VQ-GAN is left out, it plays no part in a text training
step), float32, a fixed batch of `--batch-size` examples (32 text tokens, a
384x384 image with all patches, 16 decoder tokens), Adafactor (the
`compile()` default). Reported per setup: compile time of the training
step (first step minus the steady state), the steady-state step (median of
`--steps` steps, each synchronised on its loss), the same for greedy
`generate` of 16 tokens, and a jitted 1024x1024 matmul timed in the same
process (the machine is shared: compare ratios within one run).

On a CPU the 8 "devices" share the same cores, so more devices means the
same arithmetic plus partitioning and collective overhead: this measures
the cost of the distribution machinery, not a speed-up. On real
accelerators run it with `--devices-from-hardware` (no virtual devices).

Usage:
    KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 python benchmarks/distributed.py
    ... --preset uio_tiny --batch-size 8 --steps 5 --setups single data model
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SETUPS = {
    "single": ("1 device", 1),
    "data": ("8 devices, data parallel", 8),
    "model": ("8 devices, model parallel (2, 4)", 8),
}


def _batch(backbone, batch_size):
    import numpy as np

    rng = np.random.default_rng(0)
    size = backbone.image_size
    patches = (size // backbone.patch_size) ** 2
    text = rng.integers(2, backbone.vocabulary_size, (batch_size, 32)).astype("int32")
    targets = rng.integers(2, backbone.vocabulary_size, (batch_size, 16)).astype(
        "int32"
    )
    decoder_inputs = np.pad(targets[:, :-1], [(0, 0), (1, 0)])
    x = {
        "text_encoder_inputs": text,
        "image_encoder_inputs": rng.normal(size=(batch_size, size, size, 3)).astype(
            "float32"
        ),
        "image_input_masks": np.ones((batch_size, patches), "int32"),
        "text_decoder_inputs": decoder_inputs,
        "text_decoder_masks": np.ones_like(decoder_inputs),
    }
    return x, {"text_decoder_targets": targets}


def _matmul_ms():
    import jax
    import jax.numpy as jnp

    a = jnp.ones((1024, 1024), "float32")
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def worker(setup, preset, batch_size, steps):
    import keras
    import numpy as np

    import keras_uio
    from keras_uio import distribution as uio_distribution

    if setup == "single":
        distribution = None
    elif setup == "data":
        distribution = uio_distribution.data_parallel()
    else:
        distribution = uio_distribution.model_parallel(4)
    if distribution is not None:
        keras.distribution.set_distribution(distribution)
    keras.utils.set_random_seed(0)
    backbone = keras_uio.UnifiedIOBackbone.from_preset(preset, load_weights=False)
    model = keras_uio.UnifiedIO(backbone)
    model.compile()
    x, y = _batch(backbone, batch_size)

    step_times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(np.asarray(logs["loss"]))  # wait for the step
            step_times.append(time.perf_counter() - self.start)

    repeated_x = {k: np.concatenate([v] * (steps + 1)) for k, v in x.items()}
    repeated_y = {k: np.concatenate([v] * (steps + 1)) for k, v in y.items()}
    model.fit(
        repeated_x,
        repeated_y,
        batch_size=batch_size,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[Timer()],
    )
    step = statistics.median(step_times[1:])
    inputs = {
        k: x[k]
        for k in ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")
    }
    generate_times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        model.generate(inputs, max_text_length=16, stop_at_eos=False)
        generate_times.append(time.perf_counter() - start)
    generate = statistics.median(generate_times[1:])
    return {
        "devices": len(keras.distribution.list_devices()),
        "step_s": step,
        "step_compile_s": step_times[0] - step,
        "generate_s": generate,
        "generate_compile_s": generate_times[0] - generate,
        "matmul_ms": _matmul_ms(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="uio_tiny")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    parser.add_argument(
        "--devices-from-hardware",
        action="store_true",
        help="use the real devices instead of virtual CPU ones",
    )
    parser.add_argument("--worker", choices=SETUPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.worker, args.preset, args.batch_size, args.steps)
        print(json.dumps(result))
        return

    print(
        f"{args.preset}, batch {args.batch_size}, float32, median of "
        f"{args.steps} steps\n"
    )
    print(
        "| setup | devices | step compile s | step s | generate compile s "
        "| generate s (16 tokens) | 1024^2 matmul ms |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = {}
    for setup in args.setups:
        label, count = SETUPS[setup]
        env = dict(os.environ)
        if not args.devices_from_hardware:
            env["XLA_FLAGS"] = (
                env.get("XLA_FLAGS", "")
                + f" --xla_force_host_platform_device_count={count}"
            ).strip()
        run = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                setup,
                "--preset",
                args.preset,
                "--batch-size",
                str(args.batch_size),
                "--steps",
                str(args.steps),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if run.returncode:
            print(f"| {label} | failed: {run.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])
        rows[setup] = r
        print(
            f"| {label} | {r['devices']} | {r['step_compile_s']:.1f} | "
            f"{r['step_s']:.3f} | {r['generate_compile_s']:.1f} | "
            f"{r['generate_s']:.3f} | {r['matmul_ms']:.1f} |",
            flush=True,
        )
    if "single" in rows:
        base = rows["single"]
        for setup, r in rows.items():
            if setup != "single":
                print(
                    f"\n{SETUPS[setup][0]}: step {r['step_s'] / base['step_s']:.2f}x, "
                    f"generate {r['generate_s'] / base['generate_s']:.2f}x "
                    "the single-device time",
                    end="",
                )
        print()


if __name__ == "__main__":
    main()
