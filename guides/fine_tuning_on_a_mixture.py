"""
Title: Fine-tuning Unified-IO on a mixture of your own tasks
Author: keras-uio team
Date created: 2026/11/28
Last modified: 2026/11/28
Description: Mix your datasets and tasks with the paper's sampling rules, add the denoising objective, fine-tune with LoRA, checkpoint, resume, save and reload.
"""

"""
## What this guide produces

A fine-tuned copy of the bundled `uio_tiny_easyvqa` model that has learnt a
new skill, answering questions about a scene described in words (no
image), while it keeps answering questions about images. On the way:

- a `keras_uio.data.Mixture` of four datasets: easy-vqa questions and
  captions (lists in memory), a text dataset of our own (streamed from a
  generator function) and the T5-style denoising objective, with group
  rates and `size ** (1/T)` weighting as in the paper;
- LoRA adapters (`model.backbone.enable_lora`), per-modality losses in the
  logs, a checkpoint per epoch, an interrupted run resumed with
  `keras.callbacks.BackupAndRestore`;
- a preset folder written with `save_to_preset` and loaded back, and the
  loss curve below.

![loss curve](fine_tuning_on_a_mixture.png)

Set `KERAS_UIO_GUIDE_FAST=1` for a few steps on a few images (the test
suite does; the numbers are then meaningless); the curve and the numbers
quoted here come from the full run, which takes a few minutes on a laptop
CPU.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import collections
import tempfile

import keras
import numpy as np

import keras_uio
from keras_uio.data import PAPER_GROUP_RATES
from keras_uio.data import DenoisingTask
from keras_uio.data import Mixture
from keras_uio.data import MixtureEntry
from keras_uio.data import easy_vqa
from keras_uio.training import InverseSquareRootSchedule
from keras_uio.training import paper_optimizer

FAST = os.environ.get("KERAS_UIO_GUIDE_FAST") == "1"
NUM_TRAIN_IMAGES = 32 if FAST else 1000
NUM_TEST_IMAGES = 2 if FAST else 16
NUM_TEST_SCENES = 8 if FAST else 48
BATCH_SIZE = 8 if FAST else 16
EPOCHS = 2 if FAST else 12
STEPS_PER_EPOCH = 2 if FAST else 30
PRESET = "uio_tiny_easyvqa"
WORK_DIR = tempfile.mkdtemp(prefix="uio_finetune_")
keras.utils.set_random_seed(0)

"""
## The starting point

The bundled model was trained on seven easy-vqa tasks. We load it and
measure what we want to change: questions about a scene described in a
sentence. T5's reading-comprehension format is a built-in task,
`text_qa` (`question: ... context: ...`), so our dataset is just dicts with
its fields. The scenes use the words the model knows (its tokenizer was
fit on easy-vqa's text), and a few colour-shape pairs are kept for testing
only.
"""

model = keras_uio.UnifiedIO.from_preset(PRESET)
tokenizer = model.preprocessor.tokenizer

HELD_OUT = {
    ("teal", "circle"),
    ("brown", "triangle"),
    ("yellow", "rectangle"),
    ("green", "circle"),
}


def scene_question(rng, pairs):
    color, shape = pairs[rng.integers(len(pairs))]
    kind = rng.integers(3)
    if kind == 0:
        question, answer = "what color is the shape?", color
    elif kind == 1:
        question, answer = "what shape is in the image?", shape
    else:
        asked = easy_vqa.COLORS[rng.integers(len(easy_vqa.COLORS))]
        asked = color if rng.random() < 0.5 else asked
        question = f"is there a {asked} shape in the image?"
        answer = "yes" if asked == color else "no"
    return {
        "question": question,
        "context": easy_vqa.caption(color, shape),
        "answer": answer,
    }


ALL_PAIRS = [(c, s) for c in easy_vqa.COLORS for s in easy_vqa.SHAPES]
TRAIN_PAIRS = [p for p in ALL_PAIRS if p not in HELD_OUT]
rng = np.random.default_rng(123)
test_scenes = [scene_question(rng, sorted(HELD_OUT)) for _ in range(NUM_TEST_SCENES)]
test_records = easy_vqa.load_records("test", limit=NUM_TEST_IMAGES)
print(test_scenes[0])

"""
One `predict_tasks` call answers both kinds of question: the easy-vqa
test questions (with their image) and our held-out scenes (text only).
"""


def evaluate(model):
    vqa = [
        ({"task": "vqa", "image": r["image"], "question": q}, a)
        for r in test_records
        for q, a in r["questions"]
    ]
    scenes = [
        (
            {"task": "text_qa", "question": s["question"], "context": s["context"]},
            s["answer"],
        )
        for s in test_scenes
    ]
    results = model.predict_tasks([ex for ex, _ in vqa + scenes])
    hits = [res["answer"] == answer for res, (_, answer) in zip(results, vqa + scenes)]
    return {
        "vqa_accuracy": float(np.mean(hits[: len(vqa)])),
        "scene_qa_accuracy": float(np.mean(hits[len(vqa) :])),
        "scene_answers": [res["answer"] for res in results[len(vqa) :]],
    }


before = evaluate(model)
print({k: v for k, v in before.items() if k != "scene_answers"})
print("answers before:", before["scene_answers"][:6])

"""
## Datasets

A `Mixture` entry pairs a task (a name or a `Task`) with a dataset: a
list, any re-iterable, a `tf.data.Dataset`, or a function that returns a
fresh iterator. Each draw reads one element, encodes it with the task and
tags it; nothing is loaded whole, so a dataset can be larger than memory or
infinite.

From easy-vqa we take the question answering and captioning examples of
the training images (`task_examples` builds them in the tasks' formats):
"""

train_records = easy_vqa.load_records("train", limit=NUM_TRAIN_IMAGES)
easy = easy_vqa.task_examples(train_records, ["vqa", "captioning"])
print({name: len(rows) for name, rows in easy.items()})

"""
Our own text dataset streams from a generator function. Passing the
function itself (not a generator object) lets the mixture restart it.
"""


def scene_questions():
    rng = np.random.default_rng(0)
    while True:
        yield scene_question(rng, TRAIN_PAIRS)


print(next(scene_questions()))

"""
The paper keeps pre-training's objective in the multi-task mixture.
`DenoisingTask` is T5 span corruption on text (15% of the tokens, in spans
of mean length 3, become sentinels the model fills in) and masked image
denoising on images (75% of the patches hidden, the whole image as target).
Here it reads plain text, the captions and questions of our images:
"""

corpus = [{"text": r["caption"]} for r in train_records]
corpus += [{"text": q} for r in train_records for q, _ in r["questions"][:2]]
denoising = DenoisingTask(tokenizer=tokenizer, seed=0)
example = denoising.encode_example({"text": "is there a blue shape in the image?"})
print("input: ", tokenizer.detokenize(example["prompt_ids"]))
print("target:", tokenizer.detokenize(example["target_text_ids"]))

"""
## The mixture

Entries belong to groups, and each group gets a share of every batch.
`PAPER_GROUP_RATES` are the paper's eight groups; ours are renormalised
over the groups present, or given explicitly. Inside a group, entries are
drawn in proportion to `size ** (1 / temperature)` (T = 2), so a dataset
four times larger is drawn twice as often; an explicit `rate` overrides
that. Captioning is moved into the question-answering group here, so it
shares that group's budget with VQA by size.
"""

print({g: round(r, 4) for g, r in PAPER_GROUP_RATES.items()})

mixture = Mixture(
    [
        MixtureEntry("vqa", easy["vqa"]),  # group "vision_language"
        MixtureEntry("captioning", easy["captioning"], group="vision_language"),
        MixtureEntry("text_qa", scene_questions, group="nlp", name="scenes"),
        MixtureEntry(denoising, corpus),  # group "language_modelling"
    ],
    group_rates={"vision_language": 0.5, "nlp": 0.35, "language_modelling": 0.15},
    temperature=2.0,
    seed=0,
    tokenizer=tokenizer,
)
print({name: round(rate, 3) for name, rate in mixture.rates.items()})
print(collections.Counter(mixture.sample_entries(1000)))

"""
With `Mixture(..., num_image_patches=256)` each image contributes a random
256 of its patches, as in the paper's multi-task stage: the batches then
carry `image_input_indices` and the encoder runs on those patches only
(the images here have 64, so we keep them all).

`as_tf_dataset` draws, encodes and preprocesses batches in Python behind a
`tf.data` pipeline, ready for `fit`. No entry here writes an image
(`DenoisingTask` could, from image examples), so the batches leave out
target images and the VQ-GAN stays out of the training step.
"""

dataset = mixture.as_tf_dataset(model.preprocessor, BATCH_SIZE, image_targets=False)
x, y, sample_weight = next(iter(dataset))
print({k: tuple(v.shape) for k, v in x.items()})

"""
## Optimiser, loss and LoRA

`model.compile()` with no arguments sets up the token cross-entropy over
the text and image targets and a fine-tuning default, Adafactor at 1e-3
with global-norm clipping. `keras_uio.training.paper_optimizer()` is the
paper's: Adafactor at 1e-2 for 10k steps, then decaying as `1 / sqrt(step)`
(`InverseSquareRootSchedule`):
"""

paper = paper_optimizer()
schedule = InverseSquareRootSchedule(peak=1e-2, warmup_steps=10_000)
print(
    type(paper).__name__,
    {step: round(float(schedule(step)), 5) for step in (1, 10_000, 40_000, 160_000)},
)

"""
For a larger effective batch than fits in memory,
`model.compile(..., gradient_accumulation_steps=4)` averages the gradients
of 4 batches before each update; building the model with
`dtype="mixed_bfloat16"` runs it in bfloat16 with float32 weights and a
float32 loss.

Adafactor scales each update by the size of the weight it changes, which
suits full training but barely moves LoRA's zero-initialised matrices. For
LoRA we use AdamW. `enable_lora(rank)` freezes the backbone and adds rank-r
adapters to the attention query and value projections (keras-hub's
default; `target_layer_names` picks others):
"""

base_parameters = model.backbone.count_params()
model.backbone.enable_lora(rank=4)
trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
print(
    f"trainable: {trainable:,} LoRA parameters (the backbone has {base_parameters:,})"
)
model.compile(optimizer=keras.optimizers.AdamW(3e-3, weight_decay=0.0, clipnorm=1.0))

"""
## Train, checkpoint, resume

`ModelCheckpoint` keeps the weights of every epoch. `BackupAndRestore`
backs the run up at each epoch end; if training dies, calling `fit` again
with the same callback picks up where it stopped. We simulate a crash
halfway through.

The logs report the loss over all target tokens and, apart, `text_loss` /
`text_accuracy` over text tokens and `image_loss` / `image_accuracy` over
image codes (zero here: no image targets).
"""


class Crash(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError(f"simulated crash at epoch {epoch}")


class EpochLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append((epoch, dict(logs)))


backup = keras.callbacks.BackupAndRestore(os.path.join(WORK_DIR, "backup"))
checkpoints = keras.callbacks.ModelCheckpoint(
    os.path.join(WORK_DIR, "epoch_{epoch:02d}.weights.h5"), save_weights_only=True
)
log = EpochLog()
callbacks = [backup, checkpoints, log]
try:
    model.fit(
        dataset,
        epochs=EPOCHS,
        steps_per_epoch=STEPS_PER_EPOCH,
        callbacks=callbacks + [Crash(EPOCHS // 2)],
        verbose=2,
    )
except RuntimeError as error:
    print(error)
resumed = model.fit(
    dataset,
    epochs=EPOCHS,
    steps_per_epoch=STEPS_PER_EPOCH,
    callbacks=callbacks,
    verbose=2,
)
print("epochs run after the restart:", [epoch for epoch, _ in log.rows[EPOCHS // 2 :]])
print(sorted(f for f in os.listdir(WORK_DIR) if f.endswith(".h5"))[-3:])

"""
The loss curve, across the crash:
"""

epochs = [epoch + 1 for epoch, _ in log.rows]
if not FAST:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(
        epochs, [logs["text_loss"] for _, logs in log.rows], "o-", label="text loss"
    )
    ax.plot(
        epochs,
        [logs["text_accuracy"] for _, logs in log.rows],
        "s-",
        label="text token accuracy",
    )
    ax.axvline(EPOCHS // 2 + 0.5, color="gray", linestyle="--")
    ax.text(EPOCHS // 2 + 0.6, ax.get_ylim()[1] * 0.9, "crash + resume", color="gray")
    ax.set_xlabel(f"epoch ({STEPS_PER_EPOCH} steps of {BATCH_SIZE})")
    ax.legend()
    ax.set_title("LoRA fine-tuning on the mixture")
    fig.tight_layout()
    fig.savefig(
        os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "fine_tuning_on_a_mixture.png"
        ),
        dpi=100,
    )

"""
## Before and after
"""

after = evaluate(model)
for name in ("vqa_accuracy", "scene_qa_accuracy"):
    print(f"{name:18s} before {before[name]:.3f}   after {after[name]:.3f}")
for scene, old, new in list(
    zip(test_scenes, before["scene_answers"], after["scene_answers"])
)[:6]:
    print(f"{scene['question']} ({scene['context']}): {old!r} -> {new!r}")

"""
The test scenes use colour-shape pairs that never occur in the training
stream, so a high score means the model reads the answer from the context
rather than remembering pairs; the VQA accuracy shows what the mixture kept
of the original skill.

## Save, reload, compare

The adapters alone are small: `save_lora_weights` writes them, and
`load_lora_weights` puts them on a fresh copy of the base model.
`save_to_preset` writes a complete preset (LoRA merged into the weights,
with the VQ-GAN and the tokenizer), which loads like any other and answers
like the model in memory.
"""

adapter = os.path.join(WORK_DIR, "scenes.lora.h5")
model.backbone.save_lora_weights(adapter)
preset_dir = os.path.join(WORK_DIR, "uio_tiny_scenes")
model.save_to_preset(preset_dir)
print(
    f"adapter: {os.path.getsize(adapter) / 1e3:.0f} kB; preset:",
    sorted(os.listdir(preset_dir)),
)

fine_tuned = keras_uio.UnifiedIO.from_preset(preset_dir)
reloaded = evaluate(fine_tuned)
same = np.mean(
    [a == b for a, b in zip(after["scene_answers"], reloaded["scene_answers"])]
)
print(
    f"reloaded: scene QA {reloaded['scene_qa_accuracy']:.3f}, "
    f"VQA {reloaded['vqa_accuracy']:.3f}, same scene answers: {same:.0%}"
)

"""
Next: [adding a new task](adding_a_new_task.py) fine-tunes on a task that
does not exist yet, with its own prompt, target encoding, output parser
and metric.
"""
