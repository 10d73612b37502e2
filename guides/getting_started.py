"""
Title: Getting started with keras-uio
Author: keras-uio team
Date created: 2026/11/28
Last modified: 2026/11/28
Description: Load a trained Unified-IO, run seven tasks in one call, read and draw the structured results, then use `generate()` and `score()` directly.
"""

"""
## What this guide produces

Unified-IO is one encoder-decoder for many tasks: text and an image go in,
text tokens (words, or location tokens for boxes) and image tokens come
out, and each task is only a prompt on the way in and a parser on the way
out. This guide loads a small trained model that ships with keras-uio, asks
it seven different things about held-out images in a single call, reads
the answers as Python structures (boxes in pixels, boolean masks, images,
strings) and draws them:

![every task on easy-vqa test images](getting_started.png)

Each row is one test image; the columns are the input (with the truth),
a question and its answer, the caption, the shape class chosen among three
options, the box of the named shape (localization), every object found
(detection), the segmentation mask (with the image the model wrote for it)
and an image generated from the row's caption.

The model is `uio_tiny_easyvqa`: a 1.6M-parameter Unified-IO with its own
small VQ-GAN, trained by keras-uio on
[easy-vqa](https://github.com/vzhou842/easy-VQA) (64x64 pictures of one
coloured circle, rectangle or triangle). It is tiny so that everything here
runs in seconds on a laptop CPU, offline; the paper's checkpoints are used
the same way (last section). Set `KERAS_UIO_GUIDE_FAST=1` for a quicker run
on fewer images (the test suite does); the picture comes from the full run.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

import keras_uio
from keras_uio.data import easy_vqa
from keras_uio.demo import box_iou
from keras_uio.demo import mask_iou
from keras_uio.tasks import get_task
from keras_uio.tasks.visualize import draw_result

FAST = os.environ.get("KERAS_UIO_GUIDE_FAST") == "1"
NUM_IMAGES = 2 if FAST else 4
PRESET = "uio_tiny_easyvqa"

"""
## Load the model

`UnifiedIO.from_preset` returns the whole model: the transformer
(`model.backbone`), the image tokenizer (`model.vqgan`, frozen) and the
preprocessor that turns prompts and images into tokens and patches
(`model.preprocessor`).
"""

model = keras_uio.UnifiedIO.from_preset(PRESET)
backbone = model.backbone
vocab = model.preprocessor.tokenizer.vocab
print(
    f"transformer: {backbone.count_params():,} parameters, "
    f"{backbone.num_encoder_layers}+{backbone.num_decoder_layers} layers"
)
print(
    f"image tokenizer: {model.vqgan.count_params():,} parameters, "
    f"{model.vqgan.codebook_size} codes"
)
print(
    f"input images: {backbone.image_size}x{backbone.image_size}, "
    f"output images: {backbone.max_decoder_image_length} codes"
)
print(vocab)

"""
The vocabulary has the Unified-IO layout: SentencePiece text ids, then
1100 `<extra_id_n>` tokens (100 T5 sentinels and 1000 location bins, which
is how boxes and points are written), then the image codes.

## Test images

`keras_uio.data.easy_vqa` reads the images and questions from the
`easy-vqa` package and derives each image's colour, shape, box and mask.
The model never saw the test split.
"""

records = easy_vqa.load_records("test", limit=NUM_IMAGES)
for r in records:
    print(r["image_id"], r["caption"], "box", r["box"].tolist(), "|", r["questions"][0])

"""
## Every task in one call

An example is a dict with a `"task"` and that task's inputs; the task
names are those of `keras_uio.tasks.TASKS`. `predict_tasks` builds each
prompt, preprocesses the inputs, generates and parses. Tasks that write
text (answers, captions, boxes) share one compiled `generate`, tasks that
write images (segmentation, text-to-image) another, so a mixed list costs
two generation calls whatever its length. Decoding is the original
runner's: text greedy, images by top-p 0.9 sampling with `seed=0` (the
same samples on every backend; `greedy=True` decodes images greedily).

A `"task"` may also be a task object with non-default options. The
default segmentation reader is the original's: it keeps runs of at least
10 pixels of one colour along the picture's rows, made for the
original's 256x256 pictures. This model paints 32x32 ones, where a small
shape's rows are shorter than that and its mask is dropped, so we read
masks as 2-D regions of one colour instead (`mode="coarse_color"`, as
`keras-uio demo` does).
"""

segmentation_task = get_task(
    "segmentation", tokenizer=model.preprocessor.tokenizer, mode="coarse_color"
)


def examples_for(record):
    image, shape = record["image"], record["shape"]
    return [
        {"task": "vqa", "image": image, "question": record["questions"][0][0]},
        {"task": "captioning", "image": image},
        {
            "task": "image_classification",
            "image": image,
            "answer_options": list(easy_vqa.SHAPES),
        },
        {"task": "localization", "image": image, "object_name": shape},
        {"task": "object_detection", "image": image},
        {"task": segmentation_task, "image": image, "object_name": shape},
        {"task": "text_to_image", "description": record["caption"]},
    ]


examples = [ex for r in records for ex in examples_for(r)]
results = model.predict_tasks(examples)
# One dict per image: task name -> result.
per_image = len(examples_for(records[0]))
rows = [
    {res["task"]: res for res in results[i : i + per_image]}
    for i in range(0, len(results), per_image)
]
print(len(results), "results")

"""
## Reading the results

Every result has the task name, the generated `text`, the raw
`token_ids` and an `errors` list: whatever did not parse (an odd number of
location tokens, an answer that is not among the options, ...) is
reported there instead of raising, so one malformed output never stops a
batch. On top of those, each task adds its own fields:
"""

row, truth = rows[0], records[0]
vqa, caption = row["vqa"], row["captioning"]
classification, localization = row["image_classification"], row["localization"]
detection, segmentation, t2i = (
    row["object_detection"],
    row["segmentation"],
    row["text_to_image"],
)
print("question:", examples[0]["question"])
print("  answer:", repr(vqa["answer"]), "| truth:", repr(truth["questions"][0][1]))
print("caption:", repr(caption["caption"]), "| truth:", repr(truth["caption"]))
print(
    "classification:",
    classification["label"],
    "option",
    classification["option_index"],
    classification["errors"],
)
print(
    "localization boxes (x1, y1, x2, y2 in pixels):",
    np.round(localization["boxes"], 1).tolist(),
    "| truth:",
    truth["box"].tolist(),
)
print(
    "  raw tokens:",
    localization["token_ids"],
    [vocab.token_string(i) for i in localization["token_ids"]][:4],
)
print("detection:", np.round(detection["boxes"], 1).tolist(), detection["labels"])
print(
    "segmentation:",
    segmentation["masks"].shape,
    "masks of",
    segmentation["labels"],
    "| generated image",
    segmentation["image"].shape,
    "from codes",
    segmentation["image_codes"].shape,
)
print(
    "text to image:",
    t2i["image"].shape,
    t2i["image"].dtype,
    f"[{t2i['image'].min():.2f}, {t2i['image'].max():.2f}]",
)
for result in results:
    if result["errors"]:
        print(f"{result['task']}: {result['errors']}")

"""
Boxes are in the input image's pixels, whatever size it had: the
preprocessor pads and resizes each image to the model's square input, and
the task maps the generated location tokens back. Segmentation is an
image task: the model paints each instance in a colour, and the parser
turns the colours into boolean masks of the input's size.

How well did it do? The box and mask overlaps with the truth:
"""

ious = [
    box_iou(row["localization"]["boxes"][0], r["box"])
    if len(row["localization"]["boxes"])
    else 0.0
    for row, r in zip(rows, records)
]
mask_ious = [
    mask_iou(np.any(row["segmentation"]["masks"], 0), r["mask"])
    if len(row["segmentation"]["masks"])
    else 0.0
    for row, r in zip(rows, records)
]
print("localization IoU", np.round(ious, 2).tolist())
print("segmentation IoU", np.round(mask_ious, 2).tolist())

"""
## Drawing the results

`keras_uio.tasks.visualize.draw_result(image, result)` draws any result
on its input: boxes and labels, masks (next to the generated image), or
the generated image. We put every panel of every row into one picture and
write the text results under them.
"""

SCALE = 3
try:
    FONT = ImageFont.load_default(size=13)
except TypeError:  # Pillow < 10.1
    FONT = ImageFont.load_default()


def cell(picture, lines, height=64 * SCALE):
    """A panel scaled to `height` pixels, with lines of text under it."""
    width = picture.width * height // picture.height
    picture = picture.resize((width, height), Image.NEAREST)
    out = Image.new("RGB", (picture.width, picture.height + 40), "white")
    out.paste(picture, (0, 0))
    draw = ImageDraw.Draw(out)
    for k, line in enumerate(lines):
        draw.text((3, picture.height + 3 + 17 * k), line, fill="black", font=FONT)
    return out


def short(text, n=24):
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "..."


def draw_row(record, row):
    image = record["image"]
    vqa, caption = row["vqa"], row["captioning"]
    classification, localization = row["image_classification"], row["localization"]
    detection, segmentation = row["object_detection"], row["segmentation"]
    t2i = row["text_to_image"]
    return [
        cell(Image.fromarray(image), ["input", f"truth: {record['caption']}"]),
        cell(
            draw_result(image, vqa),
            [short(record["questions"][0][0]), f"-> {short(vqa['answer'])}"],
        ),
        cell(draw_result(image, caption), ["caption", short(caption["caption"])]),
        cell(
            draw_result(image, classification),
            ["class (3 options)", short(classification["label"])],
        ),
        cell(
            draw_result(image, localization),
            [
                f"where is the {record['shape']}?",
                f"{len(localization['boxes'])} box(es)",
            ],
        ),
        cell(
            draw_result(image, detection),
            ["detection", short(", ".join(detection["labels"] or []))],
        ),
        cell(
            draw_result(image, segmentation),
            [f"segment the {record['shape']}", "masks | generated"],
        ),
        cell(
            Image.fromarray((t2i["image"] * 255).round().astype("uint8")),
            ["text to image:", short(record["caption"])],
        ),
    ]


cells = [draw_row(r, row) for r, row in zip(records, rows)]
widths = [max(c[k].width for c in cells) for k in range(len(cells[0]))]
height = cells[0][0].height
picture = Image.new(
    "RGB", (sum(widths) + 4 * len(widths), height * len(cells)), "white"
)
for y, row_cells in enumerate(cells):
    x = 0
    for k, c in enumerate(row_cells):
        picture.paste(c, (x, y * height))
        x += widths[k] + 4
print("picture", picture.size)
if not FAST:
    picture.save(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "getting_started.png")
    )

"""
## Under `predict_tasks`: `generate()`

`predict_tasks` is three steps you can run yourself: a task turns inputs
into a prompt (and keeps what the parser needs in `meta`), the
preprocessor turns prompts and images into arrays, and `generate()`
decodes tokens. `generate` takes the arrays the original implementation
takes (`text_encoder_inputs`, `image_encoder_inputs`, `image_input_masks`)
and returns token ids and, with `image=True`, image codes and pixels.

Here we sample four captions of the first image with top-k sampling (each
row of a batch draws its own tokens; a temperature above 1 flattens the
distribution, so the draws differ more):
"""

tokenizer = model.preprocessor.tokenizer
task = get_task("captioning", tokenizer=tokenizer)
inputs, meta = task.encode_inputs(image=records[0]["image"])
print(inputs["prompt"])
batch = model.preprocessor.generate_preprocess(
    {"prompt": [inputs["prompt"]] * 4, "image": [inputs["image"]] * 4}
)
print({k: v.shape for k, v in batch.items()})
out = model.generate(
    batch, max_text_length=8, sampler="top_k", k=5, temperature=2.0, seed=1
)
for tokens, score in zip(out["text_tokens"], out["scores"]):
    print(f"{score:7.2f}", repr(task.decode(tokens, meta=meta)["caption"]))

"""
The samplers are `"greedy"` (the default), `"beam"` (`num_beams`),
`"top_k"` (`k`), `"top_p"` (`p`) and `"random"`, all with `temperature`
and a `seed`. `scores` are the summed log-probabilities of the written
tokens.

`allowed_ids` restricts what text positions may write. To force a
colour answer whatever the model prefers, allow only the tokens of the
eight colour names:
"""

color_ids = sorted({int(i) for c in easy_vqa.COLORS for i in tokenizer(c)})
vqa_task = get_task("vqa", tokenizer=tokenizer)
question = "what color is the shape?"
prepared = [
    vqa_task.encode_inputs(image=r["image"], question=question) for r in records
]
batch = model.preprocessor.generate_preprocess(
    {
        "prompt": [inputs["prompt"] for inputs, _ in prepared],
        "image": [inputs["image"] for inputs, _ in prepared],
    }
)
out = model.generate(batch, max_text_length=4, allowed_ids=color_ids)
for r, (_, meta), tokens in zip(records, prepared, out["text_tokens"]):
    answer = vqa_task.decode(tokens, meta=meta)["answer"]
    print(f"{question} -> {answer!r} (truth {r['color']!r})")

"""
## Ranking answer options with `score()`

For a closed set of answers, the original Unified-IO scores each option
instead of generating: `score(inputs, options)` returns each option's
`loss` (the summed negative log-likelihood of its tokens, lower is better;
`average_loss=True` for the per-token mean) and the `best` one. Options are
token ids `[batch, num_options, length]` as the tokenizer writes them (with
EOS, 0-padded), or images. `predict_tasks` does this for you when an
example has `answer_options`.
"""

classify = get_task("image_classification", tokenizer=tokenizer)
prompt = classify.build_prompt(image=records[0]["image"])
batch = model.preprocessor.generate_preprocess(
    {"prompt": [prompt] * len(records), "image": [r["image"] for r in records]}
)
option_ids = [list(np.asarray(tokenizer(s))) for s in easy_vqa.SHAPES]
length = max(len(ids) for ids in option_ids)
options = np.array([ids + [0] * (length - len(ids)) for ids in option_ids])
options = np.repeat(options[None], len(records), axis=0)
scores = model.score(batch, options)
for r, row, best in zip(records, scores["loss"], scores["best"]):
    print(
        f"truth {r['shape']:9s} losses {np.round(row, 2).tolist()} "
        f"-> {easy_vqa.SHAPES[best]}"
    )

"""
Options may be pictures too. A task that answers with an image
(text-to-image, inpainting, segmentation-to-image) takes candidate images
as its `answer_options`: each is resized and padded as a target image,
its VQ-GAN codes are scored, and the result's `"image"` is the chosen
candidate. Here each caption picks among the test images. The small
model is not sure of itself here: a candidate of the right shape or the
right colour alone can win (on the first 24 test images, each with three
candidates of another colour or shape, it picks the described one 22
times).
"""

candidates = [r["image"] for r in records]
picks = model.predict_tasks(
    [
        {
            "task": "text_to_image",
            "description": r["caption"],
            "answer_options": candidates,
        }
        for r in records
    ]
)
for i, (r, pick) in enumerate(zip(records, picks)):
    print(f"{r['caption']!r} (image {i}) -> image {pick['option_index']}")

"""
## The paper's models

The released Unified-IO checkpoints (small, base, large, XL) load the same
way once converted to a preset folder, and everything above (
`predict_tasks` with the paper's 20 tasks, `generate`, `score`) works on
them unchanged; only the inputs are 384x384 images and outputs 256 image
codes:

```shell
keras-uio convert small_1000k.bin ./uio_small --vocabulary spiece.model
```

```python
model = keras_uio.UnifiedIO.from_preset("./uio_small")
```

[Converting the original checkpoints](converting_checkpoints.py) shows
the conversion and checks the converted model against the original's
outputs.
"""
