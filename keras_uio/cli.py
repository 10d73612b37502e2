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
import math
import os
import sys
import time

from keras_uio.errors import USER_ERRORS
from keras_uio.errors import UserInputError
from keras_uio.errors import check_output_dir

DEFAULT_PRESET = "uio_tiny_easyvqa"


def _info(args):
    import keras
    import numpy as np

    from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
    from keras_uio.models.unified_io.unified_io_presets import unified_io_presets
    from keras_uio.models.unified_io.unified_io_parameter_count import (
        count_backbone_parameters,
    )
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
    codes = np.asarray(vqgan.encode(image))
    image_inputs = np.concatenate(
        [[[backbone.image_start_id]], codes[:, :-1] + backbone.vocabulary_size], 1
    )
    outputs = backbone.predict(
        {
            "text_encoder_inputs": np.array([[37, 52, 14, 1]], "int32"),
            "image_encoder_inputs": rng.normal(size=(1, 384, 384, 3)).astype(
                "float32"
            ),
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


# ------------------------------------------------------------ option types
def _int_in_range(minimum, maximum=None):
    """An argparse `type`: an int in `[minimum, maximum]`."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer, got {text!r}"
            ) from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = (
                f">= {minimum}" if maximum is None
                else f"in [{minimum}, {maximum}]"
            )
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def _box(text):
    """An argparse `type`: `x1,y1,x2,y2`, four finite pixel coordinates."""
    parts = text.split(",")
    try:
        box = [float(v) for v in parts]
    except ValueError:
        box = []
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise argparse.ArgumentTypeError(
            f"must be x1,y1,x2,y2 (four numbers), got {text!r}"
        )
    if box[2] < box[0] or box[3] < box[1]:
        raise argparse.ArgumentTypeError(
            f"must have x1 <= x2 and y1 <= y2, got {text!r}"
        )
    return box


def _options(text):
    """An argparse `type`: `a,b,c`, distinct non-empty answer options."""
    options = [o.strip() for o in text.split(",")]
    if not all(options):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated non-empty options, got {text!r}"
        )
    if len(set(options)) != len(options):
        raise argparse.ArgumentTypeError(f"must be distinct, got {text!r}")
    return options


# ----------------------------------------------------------------- convert
def _check_file(path, what):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist.")
    if not os.path.isfile(path):
        raise UserInputError(f"{what} {path!r} is not a file.")


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
    _check_file(args.checkpoint, "Checkpoint file")
    if args.vocabulary is not None:
        _check_file(args.vocabulary, "Vocabulary file")
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


# ----------------------------------------------------------------- predict
_REGION_FIELDS = ("region", "subject_region", "object_region")
# Task inputs the command line cannot give.
_NOT_ON_COMMAND_LINE = ("masks", "labels", "image_size")
# Required task inputs that `predict_tasks` can do without.
_OPTIONAL_IN_PREDICT = {"keypoints": ("region",)}


_FLAGS = {"image": "--image", "context": "--context",
          "answer_options": "--options"}


def _flag(field):
    """The option that gives a task input."""
    if field in _REGION_FIELDS:
        return "--region"
    return _FLAGS.get(field, "--text")


def _check_all_used(task, args, texts, regions):
    """Options the task has no input for raise rather than being dropped."""
    fields = task.required + task.optional
    unused = []
    if texts:
        unused.append(f"--text {texts!r}")
    if regions:
        unused.append(f"--region {regions!r}")
    if args.image is not None and "image" not in fields:
        unused.append(f"--image {args.image!r}")
    if args.context is not None and "context" not in fields:
        unused.append(f"--context {args.context!r}")
    if args.options is not None and "answer_options" not in fields:
        unused.append(f"--options {','.join(args.options)!r}")
    if unused:
        wanted = ", ".join(f"{f} ({_flag(f)})" for f in fields) or "none"
        raise UserInputError(
            f"Task {task.name!r} has no input for {'; '.join(unused)}. Its "
            f"inputs: {wanted}."
        )


def _check_required(task, inputs):
    skip = _OPTIONAL_IN_PREDICT.get(task.name, ())
    missing = [
        f for f in task.required if f not in inputs and f not in skip
    ]
    if missing:
        needs = ", ".join(f"{f} ({_flag(f)})" for f in missing)
        raise UserInputError(f"Task {task.name!r} needs {needs}.")


def _task_inputs(task, args):
    """Maps command-line options onto a task's named inputs.

    `--text` values fill the task's text inputs in order, `--region` values
    its regions; `--image` is read with `keras_uio.preprocessing.images.
    read_image` (every PIL mode converted to RGB). An option the task has
    no input for, or a required input without its option, raises.
    """
    from keras_uio.preprocessing.images import read_image

    blocked = [f for f in task.required if f in _NOT_ON_COMMAND_LINE]
    if blocked:
        raise UserInputError(
            f"Task {task.name!r} needs {', '.join(blocked)}, which the "
            "command line cannot give; use the Python API "
            "(`UnifiedIO.predict_tasks`)."
        )
    inputs = {"task": task.name}
    texts = list(args.text or [])
    regions = list(args.region or [])
    for name in task.required + task.optional:
        if name == "image":
            if args.image is not None:
                inputs["image"] = read_image(args.image)
        elif name in _REGION_FIELDS:
            if regions:
                inputs[name] = regions.pop(0)
        elif name == "context":
            if args.context is not None:
                inputs[name] = args.context
        elif name not in _NOT_ON_COMMAND_LINE + ("answer_options",):
            if texts:
                inputs[name] = texts.pop(0)
    if args.options is not None:
        inputs["answer_options"] = args.options
    _check_all_used(task, args, texts, regions)
    _check_required(task, inputs)
    return inputs


def _print_result(task, result, options=None):
    """The answer, and with answer options every option's loss."""
    if result.get("text") or task.output_mode == "text":
        print(f"{task.name}: {result.get('text', '')!r}")
    losses = result.get("option_losses")
    if options is not None and losses is not None:
        if len(losses) != len(options):
            raise RuntimeError(
                f"`predict_tasks` returned {len(losses)} option losses for "
                f"{len(options)} answer options."
            )
        print(f"chosen option: {result.get('text', '')!r} (lowest loss wins)")
        print("  loss (lower is better), option:")
        for option, loss in zip(options, losses):
            print(f"  {float(loss):12.4f}  {option}")
    for error in result.get("errors") or []:
        print(f"note: {error}")


def _writes_picture(task, example):
    """Whether `predict` saves a picture: for an input image or an image,
    box or dense output."""
    return "image" in example or task.output_mode != "text"


def _picture_path(task, example, args):
    """Where the picture goes (`--output`, default `OUT/TASK.png`), checked
    before the model loads: a file name Pillow can write, in a folder that
    can be created or written."""
    from PIL import Image

    if not _writes_picture(task, example):
        if args.output is not None:
            raise UserInputError(
                f"--output {args.output!r}: task {task.name!r} answers in "
                "text and draws no picture (its answer goes to --out)."
            )
        return None
    path = args.output or os.path.join(args.out, f"{task.name}.png")
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise UserInputError(
            f"--output {path!r} is a folder; give a file name such as "
            f"{os.path.join(path, task.name + '.png')!r}."
        )
    extension = os.path.splitext(path)[1].lower()
    Image.init()
    writable = sorted(
        e for e, f in Image.registered_extensions().items() if f in Image.SAVE
    )
    if extension not in writable:
        raise UserInputError(
            f"--output {path!r} must end in an image extension Pillow can "
            "write (.png, .jpg, .webp, ...), got "
            f"{extension or 'no extension'!r}."
        )
    check_output_dir(os.path.dirname(path), "--output's folder")
    return path


def _save_picture(task, example, result, path):
    """text_to_image (or any image made from text alone): the generated
    image itself; otherwise the prediction drawn on the input."""
    import numpy as np
    from PIL import Image

    from keras_uio.tasks.visualize import draw_result

    generated = result.get("image")
    if "image" not in example and generated is not None:
        generated = np.asarray(generated)
        if generated.dtype != np.uint8:
            generated = (np.clip(generated, 0, 1) * 255).round().astype(np.uint8)
        picture = Image.fromarray(generated[..., :3])
    else:
        picture = draw_result(example.get("image"), result)
    if os.path.splitext(path)[1].lower() in (".jpg", ".jpeg"):
        picture = picture.convert("RGB")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    picture.save(path)
    return picture


def _predict(args):
    import json

    from keras_uio.tasks import get_task

    task = get_task(args.task)
    check_output_dir(args.out, "--out")
    blank = [t for t in args.text or [] if not t.strip()]
    if blank:
        raise UserInputError(f"--text must not be empty, got {blank[0]!r}.")
    example = _task_inputs(task, args)
    picture_path = _picture_path(task, example, args)
    from keras_uio.models.unified_io.unified_io import UnifiedIO
    from keras_uio.tasks.visualize import to_json

    model = UnifiedIO.from_preset(args.preset)
    if model.preprocessor is None:
        raise UserInputError(
            f"Preset '{args.preset}' has no tokenizer: convert it with "
            "`--vocabulary spiece.model`."
        )
    kwargs = {"seed": args.seed}
    if args.truncate:
        kwargs["truncate"] = True
    (result,) = model.predict_tasks([dict(example)], **kwargs)
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, f"{task.name}.json")
    with open(json_path, "w") as f:
        json.dump(to_json(result), f, indent=2)
    _print_result(task, result, args.options)
    print(f"wrote {json_path}")
    if picture_path is not None:
        picture = _save_picture(task, example, result, picture_path)
        print(f"wrote {picture_path} ({picture.width}x{picture.height})")
    return 0


# -------------------------------------------------------------------- demo
def _demo(args):
    check_output_dir(args.out, "--out")
    from keras_uio.demo import run_demo

    print(f"Running {args.preset} on {args.num_images} easy-vqa test images ...")
    metrics = run_demo(
        args.out, preset=args.preset, num_images=args.num_images,
        gallery_images=args.gallery_images,
    )
    for key, value in metrics.items():
        if isinstance(value, float):
            print(f"  {key:<32}{value:.4f}")
    print(f"  {'images / questions':<32}{metrics['num_images']} / "
          f"{metrics['num_questions']}  ({metrics['seconds']} s)")
    print(f"Gallery: {metrics['gallery']}")
    print(f"Metrics: {metrics['metrics_file']}")
    return 0


# ---------------------------------------------------------------- evaluate
def _evaluate(args):
    """`keras-uio evaluate`: the logic is `keras_uio.evaluation`'s."""
    check_output_dir(args.out, "--out")
    from keras_uio.evaluation import load_benchmark
    from keras_uio.evaluation import run_evaluation

    benchmark = load_benchmark(args.task, args.annotations, args.images,
                               questions=args.questions, split=args.split)
    from keras_uio.models.unified_io.unified_io import UnifiedIO

    model = UnifiedIO.from_preset(args.preset)
    count = min(len(benchmark), args.limit or len(benchmark))
    print(f"Evaluating {args.preset} on {count} {args.task} examples ...")
    metrics = run_evaluation(
        model, benchmark, args.out, batch_size=args.batch_size,
        limit=args.limit, greedy=args.greedy,
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
    print(f"Metrics: {os.path.join(args.out, 'metrics.json')} "
          f"({metrics['seconds']} s)")
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
        "--num-images", type=_int_in_range(1, 1000), default=32,
        help="test images to evaluate, 1..1000 (1000 = the whole test split)",
    )
    demo.add_argument(
        "--gallery-images", type=_int_in_range(0), default=8,
        help="images shown in the gallery (0 or more)",
    )
    demo.set_defaults(run=_demo)


def _add_convert(commands):
    convert = commands.add_parser(
        "convert", help="Convert an original Unified-IO .bin checkpoint."
    )
    convert.add_argument("checkpoint", help="e.g. small_1000k.bin")
    convert.add_argument("output_dir", help="preset folder to write")
    convert.add_argument(
        "--vocabulary", default=None, help="T5 spiece.model to bundle"
    )
    convert.add_argument(
        "--dtype",
        default=None,
        help="dtype policy of the saved weights, e.g. bfloat16 (default float32)",
    )
    convert.add_argument(
        "--overwrite", action="store_true",
        help="replace a preset already in OUTPUT_DIR",
    )
    convert.set_defaults(run=_convert)


def _add_predict(commands):
    predict = commands.add_parser(
        "predict", help="Run one task on one input and save the result."
    )
    predict.add_argument(
        "--preset", default=DEFAULT_PRESET,
        help=f"preset name or folder (default {DEFAULT_PRESET})",
    )
    predict.add_argument("--task", required=True, help="task name, e.g. vqa")
    predict.add_argument("--image", default=None, help="input image file")
    predict.add_argument(
        "--text", action="append",
        help="the task's text input (question, object name, ...); repeatable",
    )
    predict.add_argument(
        "--region", action="append", type=_box,
        help="a box x1,y1,x2,y2 in pixels; repeatable",
    )
    predict.add_argument(
        "--options", type=_options, default=None,
        help="answer options a,b,c: the model scores each and answers the "
        "one with the lowest loss",
    )
    predict.add_argument("--context", default=None, help="context for text_qa")
    predict.add_argument(
        "--truncate", action="store_true",
        help="cut a prompt longer than the model's input instead of failing",
    )
    predict.add_argument(
        "--seed", type=_int_in_range(0, 2**31 - 1), default=0,
        help="sampling seed, 0..2**31-1",
    )
    predict.add_argument("--out", default="keras_uio_output", help="output folder")
    predict.add_argument(
        "--output", default=None,
        help="the picture to write (default OUT/TASK.png): for text_to_image "
        "the generated image, for tasks with an input image the prediction "
        "drawn on it",
    )
    predict.set_defaults(run=_predict)


def _add_evaluate(commands):
    from keras_uio.evaluation.benchmarks import BENCHMARKS

    evaluate = commands.add_parser(
        "evaluate",
        help="Score a preset on a benchmark in its standard format (VQA "
        "v2, COCO, RefCOCO, image folders, depth maps).",
    )
    evaluate.add_argument(
        "--preset", default=DEFAULT_PRESET,
        help=f"preset name or folder (default {DEFAULT_PRESET})",
    )
    evaluate.add_argument("--task", required=True, choices=sorted(BENCHMARKS))
    evaluate.add_argument(
        "--annotations", default=None,
        help="annotation file (depth / surface_normals: folder of maps; "
        "image_classification: optional class-name JSON)",
    )
    evaluate.add_argument("--images", required=True, help="image folder")
    evaluate.add_argument(
        "--questions", default=None,
        help="vqa: the question file (default: the VQA release's name "
        "beside --annotations)",
    )
    evaluate.add_argument(
        "--split", default=None,
        help="referring_expression: keep the refs of this split (e.g. testA)",
    )
    evaluate.add_argument(
        "--limit", type=_int_in_range(1), default=None,
        help="evaluate the first N examples only",
    )
    evaluate.add_argument(
        "--batch-size", type=_int_in_range(1), default=8,
        help="examples per predict_tasks call (default 8)",
    )
    evaluate.add_argument(
        "--out", default="keras_uio_eval",
        help="output folder; rerunning into it resumes",
    )
    evaluate.add_argument(
        "--greedy", action="store_true",
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
    _add_predict(commands)
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
