"""
Title: Adding a new task to Unified-IO
Author: keras-uio team
Date created: 2026/11/28
Last modified: 2026/11/28
Description: Write a task (prompt, example encoder, output parser, metric), register it, train it in a mixture with an existing task and run it with `predict_tasks`.
"""

"""
## What this guide produces

A new task, **pointing**: given an image and an object's name, answer
with one point, the centre of the object. Unified-IO has no task heads, so
a task is three small pieces of Python around the same model:

1. a **prompt**: how the request is written for the encoder;
2. an **example encoder**: how a labelled example becomes the target
   tokens (here a point is two location tokens, `y` then `x`, the same
   tokens boxes are written with);
3. an **output parser**: how generated tokens become a result (a point in
   the input's pixels), reporting what does not parse instead of raising.

Then a metric, a mixture with an existing task (localization, which
writes boxes with the same location tokens), a short fine-tuning run of
the bundled `uio_tiny_easyvqa` model, and the points it makes on test
images it never saw (magenta rings; the true centres are black crosses):

![predicted points](adding_a_new_task.png)

Set `KERAS_UIO_GUIDE_FAST=1` for a few training steps (the test suite
does); the picture and numbers come from the full run, a few minutes on a
laptop CPU.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
from PIL import Image
from PIL import ImageDraw

import keras_uio
from keras_uio.data import Mixture
from keras_uio.data import easy_vqa
from keras_uio.demo import box_iou
from keras_uio.tasks import TASKS
from keras_uio.tasks import Task
from keras_uio.tasks import register_task
from keras_uio.tasks.checks import check_text

FAST = os.environ.get("KERAS_UIO_GUIDE_FAST") == "1"
NUM_TRAIN_IMAGES = 32 if FAST else 2000
NUM_TEST_IMAGES = 4 if FAST else 48
BATCH_SIZE = 8 if FAST else 16
EPOCHS = 1 if FAST else 12
STEPS_PER_EPOCH = 3 if FAST else 40
PRESET = "uio_tiny_easyvqa"
keras.utils.set_random_seed(0)

"""
## The task

A `Task` subclass declares its inputs (`required`, `optional`), its
training targets (`targets`), its prompt (`prompt_template`, filled by
`_prompt_args`) and how long its output is (`max_text_length`, a decoding
hint: two location tokens and EOS). `output_mode = "text"` says that it
writes tokens only, no image.

`_targets` turns the labelled point into the target text. The
`Vocabulary` knows the location tokens: a coordinate is quantised into one
of 1000 bins over the longer image side, and `point_to_text` writes the
`(y, x)` bins as `<extra_id_n>` tokens that the tokenizer maps to their ids.

`_decode` receives the generated ids (`raw["parse_ids"]`) and fills the
result. `ids_to_points` (through the base class' `_parse_regions`) reads
location-token pairs back into pixels and lists what it had to skip.
A model can write anything, so every way the output can be wrong becomes a
message in `result["errors"]`, and the point is `None` when there is none.

`register_task` adds the class to `keras_uio.tasks.TASKS`, which is where
`predict_tasks` and `Mixture` find tasks by name.
"""

TASKS.pop("pointing", None)  # lets this cell run twice in a notebook


@register_task
class PointingTask(Task):
    """Point at the centre of a named object.

    Inputs: `image`, `object_name`. Training target: `point` (`(x, y)` in
    the input's pixels). Result: `"point"` (float `[2]` `(x, y)`, or `None`
    when the output holds no point).
    """

    name = "pointing"
    output_mode = "text"
    required = ("image", "object_name")
    targets = ("point",)
    prompt_template = 'Where is the center of the " {} " ?'
    max_text_length = 3

    def _prompt_args(self, inputs, meta):
        return (check_text(inputs["object_name"], "object_name"),)

    def _targets(self, targets, inputs, meta):
        point = np.asarray(targets["point"], dtype=np.float64)
        if point.shape != (2,) or not np.all(np.isfinite(point)):
            raise ValueError(
                "`point` must be one `(x, y)` pair of finite pixel "
                f"coordinates. Received: {targets['point']!r}"
            )
        return {"target_text": self.vocab.point_to_text(point, meta["image_size"])}

    def _decode(self, raw, result, meta):
        size = self._need_image_size(meta)
        parsed = self._parse_regions(raw, size, per_region=2)
        result["errors"].extend(parsed.errors)
        if len(parsed.boxes) == 0:
            result["point"] = None
            result["errors"].append("no point in the output")
            return
        if len(parsed.boxes) > 1:
            result["errors"].append(
                f"{len(parsed.boxes)} points in the output; kept the first"
            )
        if parsed.label_ids[0]:
            result["errors"].append("text after the point; ignored")
        result["point"] = parsed.boxes[0]


"""
Try it without a model. `encode_inputs` gives the prompt (and `meta`, what
the parser needs: the input size), `encode_example` the training target,
and `decode` reads any output, well-formed or not:
"""

task = keras_uio.tasks.get_task("pointing")
image = np.zeros((64, 96, 3), "uint8")
inputs, meta = task.encode_inputs(image=image, object_name="circle")
print(inputs["prompt"])
example = task.encode_example(
    {"image": image, "object_name": "circle", "point": (48.0, 20.0)}
)
print(example["target_text"])
for output in [
    example["target_text"],  # the target itself
    "<extra_id_310>",  # half a point
    "circle",  # words instead of locations
    example["target_text"] + " <extra_id_400> <extra_id_500>",
]:
    result = task.decode(output, meta=meta)
    print(f"{output!r:58} -> {result['point']} {result['errors']}")

"""
The point comes back within one bin (the longer side / 1000 pixels) of
where it was; the parser follows the original's convention of reading a
bin's far edge (`decode_offset=1`).

## Data and metric

easy-vqa images have one shape each; `keras_uio.data.easy_vqa` gives its
mask, so the centre is the mask's centroid (pixel centres are at `+0.5`).
A point counts as a hit when it lands on the shape.
"""


def centre(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])


def pointing_examples(records):
    return [
        {"image": r["image"], "object_name": r["shape"], "point": centre(r["mask"])}
        for r in records
    ]


def pointing_metrics(results, records):
    """Hit rate (the point is on the shape), distance to the centre (px),
    and the share of outputs that did not parse."""
    hits, distances, failures = [], [], 0
    for result, r in zip(results, records):
        point = result["point"]
        if point is None:
            failures += 1
            hits.append(False)
            continue
        x, y = np.clip(point, 0, np.array(r["mask"].shape[::-1]) - 1).astype(int)
        hits.append(bool(r["mask"][y, x]))
        distances.append(float(np.linalg.norm(point - centre(r["mask"]))))
    return {
        "hit_rate": float(np.mean(hits)),
        "mean_distance": float(np.mean(distances)) if distances else None,
        "unparsed": failures / len(records),
    }


train_records = easy_vqa.load_records("train", limit=NUM_TRAIN_IMAGES)
test_records = easy_vqa.load_records("test", limit=NUM_TEST_IMAGES)
print(pointing_examples(train_records[:1])[0]["point"], train_records[0]["caption"])

"""
## Before training

The bundled model has never seen this prompt. `predict_tasks` finds the
task by name, like the built-in ones; the test set also runs localization,
to see what fine-tuning does to the task we mix in.
"""

model = keras_uio.UnifiedIO.from_preset(PRESET)


def evaluate(model):
    examples = [
        {"task": "pointing", "image": r["image"], "object_name": r["shape"]}
        for r in test_records
    ]
    examples += [
        {"task": "localization", "image": r["image"], "object_name": r["shape"]}
        for r in test_records
    ]
    results = model.predict_tasks(examples)
    points, boxes = results[: len(test_records)], results[len(test_records) :]
    metrics = pointing_metrics(points, test_records)
    metrics["localization_iou"] = float(
        np.mean(
            [
                box_iou(b["boxes"][0], r["box"]) if len(b["boxes"]) else 0.0
                for b, r in zip(boxes, test_records)
            ]
        )
    )
    return metrics, points


before, _ = evaluate(model)
print(before)

"""
## A mixture with an existing task

A new task has no default group, so its entry names one. Both entries
share a group with explicit rates: seven pointing examples for every
three localization examples. Localization keeps the model's use of location
tokens sharp while it learns the new prompt.
"""

localization = easy_vqa.task_examples(train_records, ["localization"])["localization"]
mixture = Mixture(
    [
        ("pointing", pointing_examples(train_records), 0.7, None, "locations"),
        ("localization", localization, 0.3, None, "locations"),
    ],
    group_rates={"locations": 1.0},
    seed=0,
    tokenizer=model.preprocessor.tokenizer,
)
print(mixture.rates)
dataset = mixture.as_tf_dataset(model.preprocessor, BATCH_SIZE)

"""
## Fine-tune

All weights train here. `compile()` brings the loss and metrics; the
optimiser is Adam with a cosine decay, to settle in a few hundred steps.
"""

schedule = keras.optimizers.schedules.CosineDecay(
    1e-3, decay_steps=EPOCHS * STEPS_PER_EPOCH, alpha=0.05
)
model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0))
history = model.fit(dataset, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, verbose=2)

after, points = evaluate(model)
for name in before:
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{name:17s} before {fmt(before[name]):>7}   after {fmt(after[name]):>7}")

"""
## Look at the points

Magenta rings: the model's points; black crosses: the true centres.
"""

SCALE, COLUMNS = 3, 6
size = 64 * SCALE
shown = list(zip(points, test_records))[: 2 * COLUMNS]
picture = Image.new(
    "RGB", (COLUMNS * (size + 4), -(-len(shown) // COLUMNS) * (size + 4)), "white"
)
for i, (result, r) in enumerate(shown):
    panel = Image.fromarray(r["image"]).resize((size, size), Image.NEAREST)
    draw = ImageDraw.Draw(panel)
    x, y = centre(r["mask"]) * SCALE
    draw.line([x - 8, y, x + 8, y], fill="black", width=3)
    draw.line([x, y - 8, x, y + 8], fill="black", width=3)
    if result["point"] is not None:
        x, y = np.asarray(result["point"]) * SCALE
        draw.ellipse([x - 9, y - 9, x + 9, y + 9], outline=(255, 0, 255), width=4)
    picture.paste(panel, ((i % COLUMNS) * (size + 4), (i // COLUMNS) * (size + 4)))
if not FAST:
    picture.save(
        os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "adding_a_new_task.png"
        )
    )

"""
## Where to go from here

- Tasks with an image output set `output_mode = "image"` and return a
  `target_image` from `_targets` (see `keras_uio/tasks/segmentation.py`);
  `predict_tasks` then decodes image codes and hands `_decode` the picture.
- A task with answer options keeps them in `meta` (`optional =
  ("answer_options",)`), and `model.score()` ranks them.
- [Fine-tuning on a mixture](fine_tuning_on_a_mixture.py) covers group
  rates, streaming datasets, LoRA and checkpoints.
"""
