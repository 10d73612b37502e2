"""`keras-uio predict`: one task on one input, from the command line."""

import os

from keras_uio.cli_arguments import box
from keras_uio.cli_arguments import int_in_range
from keras_uio.cli_arguments import options
from keras_uio.errors import UserInputError
from keras_uio.errors import check_output_dir

DEFAULT_PRESET = "uio_tiny_easyvqa"


_REGION_FIELDS = ("region", "subject_region", "object_region")
# Task inputs the command line cannot give.
_NOT_ON_COMMAND_LINE = ("masks", "labels", "image_size")
# Required task inputs that `predict_tasks` can do without.
_OPTIONAL_IN_PREDICT = {"keypoints": ("region",)}


_FLAGS = {"image": "--image", "context": "--context", "answer_options": "--options"}


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
    missing = [f for f in task.required if f not in inputs and f not in skip]
    if missing:
        needs = ", ".join(f"{f} ({_flag(f)})" for f in missing)
        raise UserInputError(f"Task {task.name!r} needs {needs}.")


def _task_inputs(task, args):
    """Maps command-line options onto a task's named inputs.

    `--text` values fill the task's text inputs in order, `--region` values
    its regions; `--image` is read with `keras_uio.preprocessing.images.
    read_image` (every PIL mode converted to RGB), and so are the
    `--options` of a task that answers with an image (candidate image
    files). An option the task has no input for, or a required input
    without its option, raises.
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
        if task.output_mode == "image":  # candidate pictures: image files
            inputs["answer_options"] = [read_image(path) for path in args.options]
        else:
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
        chosen = options[result["option_index"]]
        print(f"chosen option: {chosen!r} (lowest loss wins)")
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


def add_predict(commands):
    """Adds the `predict` command to `commands` (argparse subparsers)."""
    predict = commands.add_parser(
        "predict", help="Run one task on one input and save the result."
    )
    predict.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        help=f"preset name or folder (default {DEFAULT_PRESET})",
    )
    predict.add_argument("--task", required=True, help="task name, e.g. vqa")
    predict.add_argument("--image", default=None, help="input image file")
    predict.add_argument(
        "--text",
        action="append",
        help="the task's text input (question, object name, ...); repeatable",
    )
    predict.add_argument(
        "--region",
        action="append",
        type=box,
        help="a box x1,y1,x2,y2 in pixels; repeatable",
    )
    predict.add_argument(
        "--options",
        type=options,
        default=None,
        help="answer options a,b,c: the model scores each and answers the "
        "one with the lowest loss (image files for a task that answers "
        "with an image, e.g. text_to_image)",
    )
    predict.add_argument("--context", default=None, help="context for text_qa")
    predict.add_argument(
        "--truncate",
        action="store_true",
        help="cut a prompt longer than the model's input instead of failing",
    )
    predict.add_argument(
        "--seed",
        type=int_in_range(0, 2**31 - 1),
        default=0,
        help="sampling seed, 0..2**31-1",
    )
    predict.add_argument("--out", default="keras_uio_output", help="output folder")
    predict.add_argument(
        "--output",
        default=None,
        help="the picture to write (default OUT/TASK.png): for text_to_image "
        "the generated image, for tasks with an input image the prediction "
        "drawn on it",
    )
    predict.set_defaults(run=_predict)
