"""The `keras-uio` command.

`keras-uio demo` runs the bundled trained model on held-out easy-vqa images
and writes an HTML gallery; `keras-uio info` lists the presets and runs the
tiny one; `keras-uio convert CHECKPOINT.bin OUT_DIR` turns an original
checkpoint into a preset folder; `keras-uio predict` runs one task.
"""

import argparse
import os
import sys
import time

DEFAULT_PRESET = "uio_tiny_easyvqa"


def _info(args):
    import keras
    import numpy as np

    from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
    from keras_uio.models.unified_io.unified_io_presets import backbone_presets
    from keras_uio.models.unified_io.unified_io_presets import (
        count_backbone_parameters,
    )
    from keras_uio.models.vqgan.vqgan import VQGAN
    from keras_uio.models.vqgan.vqgan import count_vqgan_parameters
    from keras_uio.models.vqgan.vqgan_presets import backbone_presets as vq_presets

    print(f"keras-uio on Keras {keras.__version__}, backend {keras.config.backend()}")
    print(f"{'preset':<12}{'transformer':>16}{'VQ-GAN':>14}{'total':>16}  description")
    for name, entry in backbone_presets.items():
        vq_name = entry["metadata"]["vqgan"]
        transformer = count_backbone_parameters(entry["config"])
        vqgan = count_vqgan_parameters(vq_presets[vq_name]["config"])
        print(
            f"{name:<12}{transformer:>16,}{vqgan:>14,}{transformer + vqgan:>16,}"
            f"  {entry['metadata']['description']}"
        )
    from keras_uio.models.unified_io.unified_io_presets import bundled_presets

    for name, entry in bundled_presets.items():
        print(f"{name:<12}  (trained, bundled)  {entry['description']}")
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


def _convert(args):
    from keras_uio.convert.convert_checkpoint import convert_checkpoint

    start = time.perf_counter()
    backbone, vqgan = convert_checkpoint(
        args.checkpoint,
        args.output_dir,
        vocabulary=args.vocabulary,
        dtype=args.dtype,
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


def _task_inputs(task, args):
    """Maps command-line options onto a task's named inputs."""
    import numpy as np
    from PIL import Image

    inputs = {"task": task.name}
    texts = list(args.text or [])
    for name in task.required + task.optional:
        if name == "image":
            if args.image is None:
                if name in task.required:
                    raise ValueError(f"Task '{task.name}' needs --image.")
                continue
            inputs["image"] = np.asarray(Image.open(args.image).convert("RGB"))
        elif name in ("region", "subject_region", "object_region"):
            if args.region:
                inputs[name] = [float(v) for v in args.region.pop(0).split(",")]
        elif name == "answer_options":
            if args.options:
                inputs[name] = [o.strip() for o in args.options.split(",")]
        elif name == "context":
            if args.context:
                inputs[name] = args.context
        elif texts and name not in ("masks", "labels", "image_size"):
            inputs[name] = texts.pop(0)
    return inputs


def _predict(args):
    import json

    import numpy as np
    from PIL import Image

    from keras_uio.models.unified_io.unified_io import UnifiedIO
    from keras_uio.tasks import get_task
    from keras_uio.tasks.visualize import draw_result
    from keras_uio.tasks.visualize import to_json

    model = UnifiedIO.from_preset(args.preset)
    if model.preprocessor is None:
        raise ValueError(
            f"Preset '{args.preset}' has no tokenizer: convert it with "
            "`--vocabulary spiece.model`."
        )
    task = get_task(args.task)
    example = _task_inputs(task, args)
    (result,) = model.predict_tasks([example], seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, f"{task.name}.json")
    with open(json_path, "w") as f:
        json.dump(to_json(result), f, indent=2)
    print(f"{task.name}: {result.get('text', '')!r}")
    print(f"wrote {json_path}")
    if "image" in example or task.output_mode != "text":
        picture = draw_result(example.get("image"), result)
        png_path = os.path.join(args.out, f"{task.name}.png")
        picture.save(png_path)
        print(f"wrote {png_path}")
    return 0


def _demo(args):
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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-uio", description="Unified-IO for Keras 3."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="Run the bundled trained model on held-out easy-vqa images "
        "and write an HTML gallery and metrics.",
    )
    demo.add_argument("--out", default="keras_uio_demo", help="output folder")
    demo.add_argument("--preset", default=DEFAULT_PRESET, help="preset name or folder")
    demo.add_argument(
        "--num-images", type=int, default=32,
        help="test images to evaluate (1000 = the whole test split)",
    )
    demo.add_argument(
        "--gallery-images", type=int, default=8, help="images shown in the gallery"
    )
    demo.set_defaults(run=_demo)
    info = commands.add_parser(
        "info", help="List presets and run a forward pass of the tiny one."
    )
    info.set_defaults(run=_info)
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
    convert.set_defaults(run=_convert)
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
        "--region", action="append", help="a box x1,y1,x2,y2 in pixels; repeatable"
    )
    predict.add_argument("--options", default=None, help="answer options a,b,c")
    predict.add_argument("--context", default=None, help="context for text_qa")
    predict.add_argument("--seed", type=int, default=0)
    predict.add_argument("--out", default="keras_uio_output", help="output folder")
    predict.set_defaults(run=_predict)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"keras-uio {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
