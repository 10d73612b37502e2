"""Train the `uio_tiny_easyvqa` preset from scratch on easy-vqa.

Everything is the library's own code: a SentencePiece tokenizer fit on the
tasks' text, a small VQ-GAN trained with `keras_uio.VQGANTrainer` on the
training images and their segmentation targets, then a small
`keras_uio.UnifiedIO` trained with `model.fit` on a `keras_uio.data.Mixture`
of the seven easy-vqa tasks (`keras_uio.data.easy_vqa`). The result is a
preset folder that `keras_uio.UnifiedIO.from_preset` loads.

    KERAS_BACKEND=jax python scripts/train_easy_vqa.py --out ./uio_tiny_easyvqa

The shipped preset (`keras_uio/presets/uio_tiny_easyvqa`) was made by this
command with its defaults; `training.json` in the preset records the
arguments, the time of each stage and the final metrics. `--fast` runs every
stage for a few steps (the test suite does that).
"""

import argparse
import io
import json
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import sentencepiece as spm

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
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus * 4),
        model_writer=model,
        vocab_size=vocab_size,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,
        character_coverage=1.0,
        minloglevel=2,
    )
    return model.getvalue()


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


def train_vqgan(records, steps, batch_size, seed):
    keras.utils.set_random_seed(seed)
    vqgan = keras_uio.VQGAN(**VQGAN_CONFIG)
    images = vqgan_images(records)
    trainer = keras_uio.VQGANTrainer(vqgan, reconstruction_loss="l1")
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
    rng = np.random.default_rng(seed)
    restart = keras_uio.CodebookRestart(
        images[rng.choice(len(images), min(256, len(images)), replace=False)],
        every_n_steps=50,
        stop_after=steps // 2,
        seed=seed,
    )
    steps_per_epoch = min(steps, 50)
    trainer.fit(
        _image_batches(images, batch_size, seed),
        steps_per_epoch=steps_per_epoch,
        epochs=max(1, steps // steps_per_epoch),
        callbacks=[restart],
        verbose=2,
    )
    metrics = trainer.evaluate(images[:512], batch_size=64, verbose=0, return_dict=True)
    return vqgan, {k: float(v) for k, v in metrics.items()}


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


def train_model(model, records, steps, batch_size, learning_rate, seed):
    keras.utils.set_random_seed(seed)
    mix = mixture(records, model.preprocessor.tokenizer, seed)
    dataset = mix.as_tf_dataset(model.preprocessor, batch_size=batch_size)
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
    steps_per_epoch = min(steps, 100)
    history = model.fit(
        dataset,
        steps_per_epoch=steps_per_epoch,
        epochs=max(1, steps // steps_per_epoch),
        verbose=2,
    )
    return {k: float(v[-1]) for k, v in history.history.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="preset folder to write")
    parser.add_argument("--vqgan-steps", type=int, default=800)
    parser.add_argument("--vqgan-batch-size", type=int, default=16)
    parser.add_argument(
        "--vqgan", default=None, help="a trained VQ-GAN preset folder: skip its stage"
    )
    parser.add_argument("--steps", type=int, default=4500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--vocab-size", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fast", action="store_true", help="a few steps of each stage on 64 images"
    )
    args = parser.parse_args(argv)
    if args.fast:
        args.vqgan_steps, args.steps = 4, 4
        args.batch_size = args.vqgan_batch_size = 8
    log = {
        "arguments": vars(args),
        "seconds": {},
        "machine": platform.machine(),
        "backend": keras.backend.backend(),
    }
    start = time.time()
    records = easy_vqa.load_records("train", limit=64 if args.fast else None)
    log["seconds"]["load"] = round(time.time() - start, 1)

    stage = time.time()
    proto = train_tokenizer(records, args.vocab_size)
    if args.vqgan:
        vqgan = keras_uio.VQGAN.from_preset(args.vqgan)
        with open(os.path.join(args.vqgan, "..", "training.json")) as f:
            log["vqgan_metrics"] = json.load(f)["vqgan_metrics"]
    else:
        vqgan, log["vqgan_metrics"] = train_vqgan(
            records, args.vqgan_steps, args.vqgan_batch_size, args.seed
        )
        vqgan.save_to_preset(os.path.join(args.out, "vqgan"))
        with open(os.path.join(args.out, "training.json"), "w") as f:
            json.dump(log, f, indent=2)
    log["seconds"]["vqgan"] = round(time.time() - stage, 1)

    stage = time.time()
    model = build_model(proto, vqgan, args.width, args.layers)
    log["parameters"] = {
        "backbone": model.backbone.count_params(),
        "vqgan": vqgan.count_params(),
    }
    log["model_metrics"] = train_model(
        model, records, args.steps, args.batch_size, args.learning_rate, args.seed
    )
    log["seconds"]["model"] = round(time.time() - stage, 1)
    log["seconds"]["total"] = round(time.time() - start, 1)

    model.save_to_preset(args.out)
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(log, f, indent=2)
    print(json.dumps(log, indent=2))


if __name__ == "__main__":
    main()
