"""The `keras-uio` command.

`keras-uio demo` runs the bundled trained model on held-out easy-vqa images
and writes an HTML gallery; `keras-uio info` lists the presets and runs the
tiny one; `keras-uio convert CHECKPOINT.bin OUT_DIR` turns an original
checkpoint into a preset folder; `keras-uio predict` runs one task.

Options are checked before any model loads (numbers by their argparse
types, output folders by `keras_uio.errors.check_output_dir`, input files
and task inputs before `from_preset`). User errors (`keras_uio.errors.
USER_ERRORS`) print `keras-uio: error: ...` and exit with status 2, as
argparse does for bad options; other exceptions are bugs and keep their
traceback.
"""

import argparse
import os
import sys
import time

from keras_uio.cli_arguments import check_file
from keras_uio.cli_arguments import int_in_range
from keras_uio.cli_predict import DEFAULT_PRESET
from keras_uio.cli_predict import add_predict
from keras_uio.errors import USER_ERRORS
from keras_uio.errors import UserInputError
from keras_uio.errors import check_output_dir


def _info(args):
    import keras
    import numpy as np

    from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
    from keras_uio.models.unified_io.unified_io_parameter_count import (
        count_backbone_parameters,
    )
    from keras_uio.models.unified_io.unified_io_presets import unified_io_presets
    from keras_uio.models.vqgan.vqgan import VQGAN
    from keras_uio.models.vqgan.vqgan_config import count_vqgan_parameters
    from keras_uio.models.vqgan.vqgan_presets import vqgan_presets as vq_presets

    print(f"keras-uio on Keras {keras.__version__}, backend {keras.config.backend()}")
    print(f"{'preset':<12}{'transformer':>16}{'VQ-GAN':>14}{'total':>16}  description")
    trained = []
    for name, entry in unified_io_presets.items():
        if "config" not in entry:
            trained.append((name, entry))
            continue
        vq_name = entry["metadata"]["vqgan"]
        transformer = count_backbone_parameters(entry["config"])
        vqgan = count_vqgan_parameters(vq_presets[vq_name]["config"])
        print(
            f"{name:<12}{transformer:>16,}{vqgan:>14,}{transformer + vqgan:>16,}"
            f"  {entry['metadata']['description']}"
        )
    for name, entry in trained:
        print(f"{name:<12}  (trained, bundled)  {entry['metadata']['description']}")
    print(
        "Transformer counts exclude the original's two unused decoder "
        "`cross_position_{q,k}_linear` kernels (2 * emb * heads * head_dim)."
    )
    print("\nForward pass of uio_tiny (random weights):")
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    backbone = UnifiedIOBackbone.from_preset("uio_tiny", load_weights=False)
    vqgan = VQGAN(**vq_presets["vqgan_tiny"]["config"])
    built = time.perf_counter()
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, 256, 256, 3)).astype("float32")
    codes = keras.ops.convert_to_numpy(vqgan.encode(image))
    image_inputs = np.concatenate(
        [[[backbone.image_start_id]], codes[:, :-1] + backbone.vocabulary_size], 1
    )
    outputs = backbone.predict(
        {
            "text_encoder_inputs": np.array([[37, 52, 14, 1]], "int32"),
            "image_encoder_inputs": rng.normal(size=(1, 384, 384, 3)).astype("float32"),
            "image_input_masks": np.ones((1, 576), "int32"),
            "text_decoder_inputs": np.array([[0, 61, 9]], "int32"),
            "text_decoder_masks": np.ones((1, 3), "int32"),
            "image_decoder_inputs": image_inputs.astype("int32"),
        },
        verbose=0,
    )
    done = time.perf_counter()
    for key, value in outputs.items():
        print(f"  {key}: shape {tuple(value.shape)}, finite {np.isfinite(value).any()}")
    print(f"  VQ-GAN codes: {codes.shape}, first {codes[0, :6].tolist()}")
    print(f"  built in {built - start:.1f} s, ran in {done - built:.1f} s")
    return 0


# ----------------------------------------------------------------- convert
def _check_dtype(dtype):
    import keras

    if dtype is None:
        return
    try:
        keras.dtype_policies.get(dtype)
    except (ValueError, TypeError):
        raise UserInputError(
            f"--dtype {dtype!r} is not a Keras dtype policy (e.g. float32, "
            "bfloat16, float16)."
        ) from None


def _convert(args):
    check_file(args.checkpoint, "Checkpoint file")
    if args.vocabulary is not None:
        check_file(args.vocabulary, "Vocabulary file")
    check_output_dir(args.output_dir, "Output folder")
    _check_dtype(args.dtype)
    from keras_uio.convert.convert_checkpoint import convert_checkpoint

    start = time.perf_counter()
    backbone, vqgan = convert_checkpoint(
        args.checkpoint,
        args.output_dir,
        vocabulary=args.vocabulary,
        dtype=args.dtype,
        overwrite=args.overwrite,
    )
    print(
        f"Converted {args.checkpoint} -> {args.output_dir} in "
        f"{time.perf_counter() - start:.1f} s: transformer "
        f"{backbone.count_params():,} parameters, VQ-GAN "
        f"{vqgan.count_params():,}."
    )
    print(
        "Load it with keras_uio.UnifiedIOBackbone.from_preset("
        f"{args.output_dir!r}) and keras_uio.VQGAN.from_preset("
        f"{os.path.join(args.output_dir, 'vqgan')!r})."
    )
    return 0


def _demo(args):
    check_output_dir(args.out, "--out")
    from keras_uio.demo import run_demo

    print(f"Running {args.preset} on {args.num_images} easy-vqa test images ...")
    metrics = run_demo(
        args.out,
        preset=args.preset,
        num_images=args.num_images,
        gallery_images=args.gallery_images,
    )
    for key, value in metrics.items():
        if isinstance(value, float):
            print(f"  {key:<32}{value:.4f}")
    print(
        f"  {'images / questions':<32}{metrics['num_images']} / "
        f"{metrics['num_questions']}  ({metrics['seconds']} s)"
    )
    print(f"Gallery: {metrics['gallery']}")
    print(f"Metrics: {metrics['metrics_file']}")
    return 0


# ---------------------------------------------------------------- evaluate
def _evaluate(args):
    """`keras-uio evaluate`: the logic is `keras_uio.evaluation`'s."""
    check_output_dir(args.out, "--out")
    from keras_uio.evaluation import load_benchmark
    from keras_uio.evaluation import run_evaluation

    benchmark = load_benchmark(
        args.task,
        args.annotations,
        args.images,
        questions=args.questions,
        split=args.split,
    )
    from keras_uio.models.unified_io.unified_io import UnifiedIO

    model = UnifiedIO.from_preset(args.preset)
    count = min(len(benchmark), args.limit or len(benchmark))
    print(f"Evaluating {args.preset} on {count} {args.task} examples ...")
    metrics = run_evaluation(
        model,
        benchmark,
        args.out,
        batch_size=args.batch_size,
        limit=args.limit,
        greedy=args.greedy,
        run_info={"preset": args.preset},
    )
    for key, value in metrics.items():
        if key == "seconds":
            continue
        if isinstance(value, float):
            print(f"  {key:<28}{value:.4f}")
        elif isinstance(value, int) and not isinstance(value, bool):
            print(f"  {key:<28}{value}")
    for note in metrics["notes"]:
        print(f"note: {note}")
    print(f"Metrics: {os.path.join(args.out, 'metrics.json')} ({metrics['seconds']} s)")
    return 0


# ------------------------------------------------------------------ parser
def _add_demo(commands):
    demo = commands.add_parser(
        "demo",
        help="Run the bundled trained model on held-out easy-vqa images "
        "and write an HTML gallery and metrics.",
    )
    demo.add_argument("--out", default="keras_uio_demo", help="output folder")
    demo.add_argument("--preset", default=DEFAULT_PRESET, help="preset name or folder")
    demo.add_argument(
        "--num-images",
        type=int_in_range(1, 1000),
        default=32,
        help="test images to evaluate, 1..1000 (1000 = the whole test split)",
    )
    demo.add_argument(
        "--gallery-images",
        type=int_in_range(0),
        default=8,
        help="images shown in the gallery (0 or more)",
    )
    demo.set_defaults(run=_demo)


def _add_convert(commands):
    convert = commands.add_parser(
        "convert", help="Convert an original Unified-IO .bin checkpoint."
    )
    convert.add_argument("checkpoint", help="e.g. small_1000k.bin")
    convert.add_argument("output_dir", help="preset folder to write")
    convert.add_argument("--vocabulary", default=None, help="T5 spiece.model to bundle")
    convert.add_argument(
        "--dtype",
        default=None,
        help="dtype policy of the saved weights, e.g. bfloat16 (default float32)",
    )
    convert.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a preset already in OUTPUT_DIR",
    )
    convert.set_defaults(run=_convert)


def _add_evaluate(commands):
    from keras_uio.evaluation.benchmarks import BENCHMARKS

    evaluate = commands.add_parser(
        "evaluate",
        help="Score a preset on a benchmark in its standard format (VQA "
        "v2, COCO, RefCOCO, image folders, depth maps).",
    )
    evaluate.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        help=f"preset name or folder (default {DEFAULT_PRESET})",
    )
    evaluate.add_argument("--task", required=True, choices=sorted(BENCHMARKS))
    evaluate.add_argument(
        "--annotations",
        default=None,
        help="annotation file (depth / surface_normals: folder of maps; "
        "image_classification: optional class-name JSON)",
    )
    evaluate.add_argument("--images", required=True, help="image folder")
    evaluate.add_argument(
        "--questions",
        default=None,
        help="vqa: the question file (default: the VQA release's name "
        "beside --annotations)",
    )
    evaluate.add_argument(
        "--split",
        default=None,
        help="referring_expression: keep the refs of this split (e.g. testA)",
    )
    evaluate.add_argument(
        "--limit",
        type=int_in_range(1),
        default=None,
        help="evaluate the first N examples only",
    )
    evaluate.add_argument(
        "--batch-size",
        type=int_in_range(1),
        default=8,
        help="examples per predict_tasks call (default 8)",
    )
    evaluate.add_argument(
        "--out",
        default="keras_uio_eval",
        help="output folder; rerunning into it resumes",
    )
    evaluate.add_argument(
        "--greedy",
        action="store_true",
        help="decode image outputs greedily too (deterministic)",
    )
    evaluate.set_defaults(run=_evaluate)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-uio", description="Unified-IO for Keras 3."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo(commands)
    info = commands.add_parser(
        "info", help="List presets and run a forward pass of the tiny one."
    )
    info.set_defaults(run=_info)
    _add_convert(commands)
    add_predict(commands)
    _add_evaluate(commands)
    return parser


def main(argv=None):
    """Runs `keras-uio`; returns the exit status.

    Bad options exit with status 2 (argparse's usage message); user errors
    met while running (`keras_uio.errors.USER_ERRORS`: bad values, missing
    or unwritable files) print `keras-uio: error: ...` and return 2. Other
    exceptions are bugs and keep their traceback.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a bad option (2)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        return args.run(args)
    except USER_ERRORS as e:
        print(f"keras-uio: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-uio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
