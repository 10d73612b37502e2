"""Train the `uio_tiny_easyvqa` preset from scratch on easy-vqa.

Everything is the library's own code: a SentencePiece tokenizer fit on the
tasks' text, a small VQ-GAN trained with `keras_uio.VQGANTrainer` on the
training images and their segmentation targets, then a small
`keras_uio.UnifiedIO` trained with `model.fit` on a `keras_uio.data.Mixture`
of the seven easy-vqa tasks (`keras_uio.data.easy_vqa`). The result is a
preset folder that `keras_uio.UnifiedIO.from_preset` loads.

    KERAS_BACKEND=jax python scripts/train_easy_vqa.py --out ./uio_tiny_easyvqa

The work runs in stages, each under about 75 minutes on a 2-core CPU: the
tokenizers (SentencePiece and the VQ-GAN), then the transformer in chunks
of `--stage-steps` steps of one learning-rate schedule. Each stage leaves a
checkpoint in `--out` and its record in `--out/training.json` (command,
seconds, metrics); `--resume` with the same arguments continues after the
last finished stage, so an interrupted run loses at most one stage (while
only the tokenizers are done, the transformer's arguments may still
change). The last stage writes the preset and removes the checkpoint.

`--init-from PRESET` skips the tokenizer stage: the transformer starts from
that preset's weights and keeps its tokenizers, for another learning-rate
cycle on a finished run; `training.json` then carries the earlier run's
record under "previous" and counts its seconds in "seconds_total".
`--fast` runs every stage for a few steps (the test suite does that).

The shipped preset (`keras_uio/presets/uio_tiny_easyvqa`) is four cycles,
its `training.json` their record:

    python scripts/train_easy_vqa.py --out ./cycle1  # the defaults
    python scripts/train_easy_vqa.py --out ./cycle2 --init-from ./cycle1 \
        --steps 6000 --stage-steps 3000 --learning-rate 1e-3 --seed 1
    python scripts/train_easy_vqa.py --out ./cycle3 --init-from ./cycle2 \
        --steps 4000 --stage-steps 2000 --learning-rate 5e-4 --seed 2
    python scripts/train_easy_vqa.py --out ./uio_tiny_easyvqa \
        --init-from ./cycle3 --steps 1000 --stage-steps 1000 \
        --learning-rate 3e-4 --seed 3

(The first three ran before text answers were given a second EOS target;
see docs/bundled_model.md.)
"""

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import keras_uio
from keras_uio.data import Mixture
from keras_uio.data import easy_vqa
from keras_uio.tasks import get_task

IMAGE_SIZE = 64  # encoder input: 64x64 images in 8x8 patches
PATCH_SIZE = 8
TARGET_SIZE = 32  # generated images and masks: 32x32, an f4 VQ-GAN ...
CODE_GRID = 8  # ... writes them as 8 x 8 = 64 codes

# Share of each task in a batch (one group, explicit rates).
TASK_RATES = {
    "vqa": 0.3,
    "captioning": 0.1,
    "localization": 0.1,
    "object_detection": 0.1,
    "segmentation": 0.15,
    "image_classification": 0.05,
    "text_to_image": 0.2,
}


def train_tokenizer(records, vocab_size):
    """A SentencePiece model with T5's special ids on the tasks' text."""
    corpus = easy_vqa.text_corpus(records)
    return keras_uio.train_sentencepiece(corpus * 4, vocab_size, character_coverage=1.0)


def target_converter():
    return keras_uio.UnifiedIOImageConverter(
        image_size=TARGET_SIZE, patch_size=TARGET_SIZE // CODE_GRID, target=True
    )


def vqgan_images(records):
    """Training images of the tokenizer: the photos and the mask targets,
    as the model's target converter gives them (`TARGET_SIZE`, [-1, 1])."""
    segmentation = get_task("segmentation")
    images = []
    for r in records:
        images.append(r["image"].astype("float32") / 255.0)
        target = segmentation.encode_example(
            {
                "image": r["image"],
                "object_name": r["shape"],
                "masks": r["mask"][None],
            }
        )["target_image"]
        images.append(target)
    converted = target_converter().convert(np.stack(images))["images"]
    return np.asarray(converted, "float32")


VQGAN_CONFIG = {
    "image_size": TARGET_SIZE,
    "channels": 32,
    "channel_multipliers": (1, 2, 4),
    "num_res_blocks": 1,
    "attention_resolutions": (),
    "z_channels": 32,
    "codebook_size": 256,
    "embed_dim": 32,
}


def vqgan_config(fsq_levels):
    """`VQGAN_CONFIG`, or with codes by finite scalar quantization."""
    if not fsq_levels:
        return dict(VQGAN_CONFIG)
    return {
        **VQGAN_CONFIG,
        "fsq_levels": fsq_levels,
        "codebook_size": math.prod(fsq_levels),
        "embed_dim": len(fsq_levels),
    }


def train_vqgan(
    records, steps, batch_size, seed, fsq_levels=None, foreground_weight=0.0
):
    keras.utils.set_random_seed(seed)
    vqgan = keras_uio.VQGAN(**vqgan_config(fsq_levels))
    images = vqgan_images(records)
    trainer = keras_uio.VQGANTrainer(
        vqgan, reconstruction_loss="l1", foreground_weight=foreground_weight
    )
    trainer.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(
                0.0,
                steps,
                alpha=0.05,
                warmup_target=2e-3,
                warmup_steps=min(50, steps // 10),
            )
        )
    )
    callbacks = []
    if not fsq_levels:  # a learned codebook: move unused rows onto data
        rng = np.random.default_rng(seed)
        sample = rng.choice(len(images), min(256, len(images)), replace=False)
        callbacks.append(
            keras_uio.CodebookRestart(
                images[sample], every_n_steps=50, stop_after=steps // 2, seed=seed
            )
        )
    steps_per_epoch = min(steps, 50)
    trainer.fit(
        _image_batches(images, batch_size, seed),
        steps_per_epoch=steps_per_epoch,
        epochs=max(1, steps // steps_per_epoch),
        callbacks=callbacks,
        verbose=2,
    )
    metrics = trainer.evaluate(images[:512], batch_size=64, verbose=0, return_dict=True)
    return vqgan, {k: float(v) for k, v in metrics.items()}


def tokenizer_agreement(vqgan, limit):
    """`easy_vqa.reconstruction_agreement` on the first test images."""
    records = easy_vqa.load_records("test", limit=limit)
    images = np.stack([r["image"] for r in records]).astype("float32") / 255.0
    converted = target_converter().convert(images)["images"]
    return easy_vqa.reconstruction_agreement(vqgan, converted)


def _image_batches(images, batch_size, seed):
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(images))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield (images[order[i : i + batch_size]],)


def build_model(proto, vqgan, width, layers):
    tokenizer = keras_uio.UnifiedIOTokenizer(
        proto=proto, image_vocab_size=vqgan.codebook_size
    )
    backbone = keras_uio.UnifiedIOBackbone(
        vocabulary_size=tokenizer.vocab.text_vocab_size,
        image_vocabulary_size=vqgan.codebook_size,
        hidden_dim=width,
        num_heads=width // 32,
        head_dim=32,
        num_encoder_layers=layers,
        num_decoder_layers=layers,
        intermediate_dim=2 * width,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        max_encoder_text_length=32,
        max_decoder_text_length=32,
        max_decoder_image_length=CODE_GRID**2,
    )
    preprocessor = keras_uio.UnifiedIOPreprocessor(
        tokenizer,
        image_converter=keras_uio.UnifiedIOImageConverter(
            image_size=IMAGE_SIZE, patch_size=PATCH_SIZE
        ),
        target_image_converter=target_converter(),
        encoder_sequence_length=32,
        decoder_sequence_length=16,
    )
    vqgan.trainable = False
    return keras_uio.UnifiedIO(backbone, vqgan, preprocessor=preprocessor)


def mixture(records, tokenizer, seed):
    examples = easy_vqa.task_examples(records)
    entries = [
        (name, examples[name], rate, None, "easy_vqa")
        for name, rate in TASK_RATES.items()
    ]
    return Mixture(
        entries, group_rates={"easy_vqa": 1.0}, seed=seed, tokenizer=tokenizer
    )


def compile_model(model, steps, learning_rate):
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        steps,
        alpha=0.02,
        warmup_target=learning_rate,
        warmup_steps=min(200, steps // 10),
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0)
    )
    model.optimizer.build(model.trainable_variables)


def train_steps(model, records, steps, batch_size, seed):
    """`steps` more steps of `model.fit` on a fresh stream of the mixture."""
    mix = mixture(records, model.preprocessor.tokenizer, seed)
    dataset = mix.as_tf_dataset(model.preprocessor, batch_size=batch_size)
    steps_per_epoch = min(steps, 100)
    history = model.fit(
        dataset,
        steps_per_epoch=steps_per_epoch,
        epochs=max(1, steps // steps_per_epoch),
        verbose=2,
    )
    return {k: float(v[-1]) for k, v in history.history.items()}


def stage_names(args):
    chunks = math.ceil(args.steps / args.stage_steps)
    tokenizer = [] if args.init_from else ["tokenizer"]
    return tokenizer + [f"transformer_{i + 1}" for i in range(chunks)]


def tokenizer_stage(args, records, out):
    """SentencePiece and the VQ-GAN, written under `out`."""
    proto = train_tokenizer(records, args.vocab_size)
    with open(os.path.join(out, "spiece.model"), "wb") as f:
        f.write(proto)
    vqgan, metrics = train_vqgan(
        records,
        args.vqgan_steps,
        args.vqgan_batch_size,
        args.seed,
        args.fsq_levels,
        args.foreground_weight,
    )
    vqgan.save_to_preset(os.path.join(out, "vqgan"))
    agreement = tokenizer_agreement(vqgan, 64 if args.fast else 300)
    metrics.update({f"test_reconstruction_{k}": v for k, v in agreement.items()})
    return metrics


def transformer_stage(args, records, out, index):
    """One chunk of transformer steps, from the last checkpoint or anew."""
    checkpoint = os.path.join(out, "checkpoint")
    if index == 0 and args.init_from:
        keras.utils.set_random_seed(args.seed)
        model = keras_uio.UnifiedIO.from_preset(args.init_from)
        model.vqgan.trainable = False
    elif index == 0:
        keras.utils.set_random_seed(args.seed)
        vqgan = keras_uio.VQGAN.from_preset(os.path.join(out, "vqgan"))
        with open(os.path.join(out, "spiece.model"), "rb") as f:
            model = build_model(f.read(), vqgan, args.width, args.layers)
    else:
        model = keras_uio.UnifiedIO.from_preset(checkpoint)
        model.vqgan.trainable = False
    compile_model(model, args.steps, args.learning_rate)
    if index > 0:
        state = np.load(os.path.join(checkpoint, "optimizer.npz"))
        for i, variable in enumerate(model.optimizer.variables):
            variable.assign(state[f"v{i}"])
    done = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    steps = min(args.stage_steps, args.steps - done)
    metrics = train_steps(model, records, steps, args.batch_size, args.seed + index)
    done = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    if done < args.steps:
        model.save_to_preset(checkpoint)
        np.savez(
            os.path.join(checkpoint, "optimizer.npz"),
            **{
                f"v{i}": keras.ops.convert_to_numpy(v)
                for i, v in enumerate(model.optimizer.variables)
            },
        )
    else:
        model.save_to_preset(out)
        shutil.rmtree(checkpoint, ignore_errors=True)
        if not args.init_from:
            os.remove(os.path.join(out, "spiece.model"))  # now in assets/
    metrics["steps_done"] = done
    return metrics, model


def fsq_levels(text):
    """`--fsq-levels 8,5,5,5` -> [8, 5, 5, 5]; `none` -> None."""
    if text == "none":
        return None
    try:
        return [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated ints such as 8,5,5,5, got {text!r}"
        ) from None


# What only the transformer stages read; see `load_log`.
TRANSFORMER_ARGUMENTS = (
    "steps",
    "stage_steps",
    "batch_size",
    "width",
    "layers",
    "learning_rate",
)


def previous_log(preset):
    """The `training.json` of the preset `--init-from` continues."""
    path = os.path.join(preset, "training.json")
    if not os.path.exists(path):
        raise SystemExit(f"error: --init-from: no training.json in {preset}.")
    with open(path) as f:
        return json.load(f)


def load_log(args, path):
    """The run's record: a new one, or the one `--resume` continues."""
    arguments = {
        k: v for k, v in vars(args).items() if k not in ("resume", "stop_after")
    }
    if os.path.exists(path) and not args.resume:
        raise SystemExit(
            f"error: {path} exists: pass --resume to continue that run "
            "or choose another --out."
        )
    if not args.resume:
        log = {
            "arguments": arguments,
            "machine": platform.machine(),
            "backend": keras.backend.backend(),
            "stages": [],
        }
        if args.init_from:
            log["previous"] = previous_log(args.init_from)
        return log
    if not os.path.exists(path):
        raise SystemExit(f"error: --resume: no {path} to continue.")
    with open(path) as f:
        log = json.load(f)
    changed = sorted(k for k in arguments if log["arguments"].get(k) != arguments[k])
    if [stage["stage"] for stage in log["stages"]] == ["tokenizer"]:
        # Only the tokenizers exist: the transformer may still be chosen.
        changed = [k for k in changed if k not in TRANSFORMER_ARGUMENTS]
        log["arguments"] = arguments
    if changed:
        raise SystemExit(
            f"error: --resume needs the arguments of the run in {path}; "
            f"these differ: {', '.join(changed)}."
        )
    return log


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="preset folder to write")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out"
    )
    parser.add_argument("--vqgan-steps", type=int, default=1500)
    parser.add_argument("--vqgan-batch-size", type=int, default=16)
    parser.add_argument(
        "--fsq-levels",
        type=fsq_levels,
        default=[8, 5, 5, 5],
        help="VQ-GAN codes by finite scalar quantization with these levels "
        "(default 8,5,5,5: 1000 codes); `none`: a learned codebook of 256",
    )
    parser.add_argument(
        "--foreground-weight",
        type=float,
        default=1.0,
        help="VQGANTrainer's foreground_weight: extra loss on the shapes' pixels",
    )
    parser.add_argument("--steps", type=int, default=7000)
    parser.add_argument(
        "--stage-steps", type=int, default=3500, help="transformer steps per stage"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--vocab-size", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init-from",
        default=None,
        help="a preset folder made by this script: start the transformer from "
        "its weights and tokenizers (no tokenizer stage)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="a few steps of each stage on 64 images"
    )
    parser.add_argument(
        "--stop-after",
        default=None,
        help="a stage name (tokenizer, transformer_1, ...): end this run after "
        "it; --resume goes on later",
    )
    args = parser.parse_args(argv)
    if args.fast:
        args.vqgan_steps, args.steps, args.stage_steps = 4, 8, 4
        args.batch_size = args.vqgan_batch_size = 8
    for name in ("steps", "stage_steps"):  # `fit` runs epochs of 100 steps
        value = getattr(args, name)
        if value < 1 or (value > 100 and value % 100):
            parser.error(
                f"--{name.replace('_', '-')} must be at most 100 or a multiple "
                f"of 100. Received: {value}"
            )
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "training.json")
    log = load_log(args, path)
    records = easy_vqa.load_records("train", limit=64 if args.fast else None)
    names = stage_names(args)
    if args.stop_after is not None and args.stop_after not in names:
        parser.error(f"--stop-after must be one of {', '.join(names)}")
    finished = {stage["stage"] for stage in log["stages"]}
    for index, name in enumerate(names):
        if name in finished:
            continue
        start = time.time()
        if name == "tokenizer":
            metrics = tokenizer_stage(args, records, args.out)
        else:
            chunk = index - names.index("transformer_1")
            metrics, model = transformer_stage(args, records, args.out, chunk)
            log["parameters"] = {
                "backbone": model.backbone.count_params(),
                "vqgan": model.vqgan.count_params(),
            }
        log["stages"].append(
            {
                "stage": name,
                "command": " ".join(["python", "scripts/train_easy_vqa.py"] + argv),
                "seconds": round(time.time() - start, 1),
                "metrics": metrics,
            }
        )
        earlier = log.get("previous", {}).get("seconds_total", 0.0)
        log["seconds_total"] = round(
            earlier + sum(s["seconds"] for s in log["stages"]), 1
        )
        with open(path, "w") as f:
            json.dump(log, f, indent=2)
        print(json.dumps(log["stages"][-1], indent=2), flush=True)
        if name == args.stop_after:
            break


if __name__ == "__main__":
    main()
