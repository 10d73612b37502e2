"""float32 vs bfloat16 vs int8 weights: the bundled model's demo metrics.

Loads `uio_tiny_easyvqa` three ways: float32; `dtype="bfloat16"` (weights,
activations and caches in bfloat16); int8 weight-only
(`model.quantize("int8", config=Int8QuantizationConfig(
activation_quantizer=None), type_check=False)`). Each runs every demo task
(`keras_uio.demo.evaluate_easy_vqa`: text greedy, masks and drawings by
top-p 0.9 sampling with seed 0, as the demo) on the first `--num-images`
easy-vqa test images. Printed: each metric per model, its change from
float32, and whether every change is at most `--bound` (0.02, the
project's target for low-precision weights). The text-to-image rows are
printed twice: judged by the model that drew (as the demo does) and by
the float32 model, so that a change in the drawings is told apart from a
change in the reading.

Usage:
    KERAS_BACKEND=jax python benchmarks/low_precision_demo.py --num-images 200
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from low_precision import quantize_int8  # noqa: E402


def load_models(preset):
    import keras_uio

    return {
        "float32": keras_uio.UnifiedIO.from_preset(preset),
        "bfloat16": keras_uio.UnifiedIO.from_preset(preset, dtype="bfloat16"),
        "int8": quantize_int8(keras_uio.UnifiedIO.from_preset(preset)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="uio_tiny_easyvqa")
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--bound", type=float, default=0.02)
    args = parser.parse_args(argv)

    from keras_uio import demo
    from keras_uio.data import easy_vqa

    records = easy_vqa.load_records("test", limit=args.num_images)
    models = load_models(args.preset)
    metrics = {}
    for name, model in models.items():
        start = time.perf_counter()
        metrics[name], results = demo.evaluate_easy_vqa(model, records, 100)
        seconds = time.perf_counter() - start
        demo.read_back(models["float32"], results, 100)
        read = demo.drawing_agreement(records, results)
        metrics[name].update({k + " (float32 reads)": v for k, v in read.items()})
        print(f"{name}: {seconds:.1f} s", flush=True)
    reference = metrics["float32"]
    names = sorted(k for k, v in reference.items() if isinstance(v, float))
    print()
    print(f"{args.preset}, first {args.num_images} easy-vqa test images:")
    print("| metric | " + " | ".join(metrics) + " | largest change |")
    print("|---|" + "---|" * (len(metrics) + 1))
    worst = 0.0
    for key in names:
        change = max(abs(m[key] - reference[key]) for m in metrics.values())
        worst = max(worst, change)
        cells = " | ".join(f"{m[key]:.3f}" for m in metrics.values())
        print(f"| {key} | {cells} | {change:.3f} |")
    verdict = "PASS" if worst <= args.bound else "FAIL"
    print(f"{verdict}: largest change {worst:.3f} (bound {args.bound})")
    return 0 if worst <= args.bound else 1


if __name__ == "__main__":
    sys.exit(main())
