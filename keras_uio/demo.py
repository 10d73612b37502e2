"""`keras-uio demo`: a trained Unified-IO at work on held-out easy-vqa images.

`evaluate_easy_vqa` runs the seven easy-vqa tasks of a model trained on
them (the shipped `uio_tiny_easyvqa` preset) on test images and scores
them; `write_gallery` draws every prediction into an HTML page; `run_demo`
does both.

Metrics (on the given test records):
- `vqa_accuracy`: generated answer == the dataset's answer, over every
  question of the images;
- `caption_exact_match`: generated caption == "a {color} {shape}";
- `classification_accuracy`: the shape chosen among the three options;
- `localization_mean_iou`, `detection_mean_iou`: IoU of the first
  generated box with the shape's box (0 when none parses);
  `detection_label_accuracy`: its label is the shape's name;
- `segmentation_mean_iou`: IoU of the generated mask (all instances) with
  the shape's mask;
- `text_to_image_agreement`: for each image's caption, the generated
  image's colour and shape, as the model itself answers "what color is
  the shape?" and "what shape is in the image?" about it, both match the
  caption (`text_to_image_color_agreement` / `..._shape_agreement` apart).

Example: the inputs of one test image and a box score (what
`evaluate_easy_vqa` builds and computes for every image):
```python
from keras_uio import demo
from keras_uio.data import easy_vqa

record = easy_vqa.load_records("test", limit=1)[0]
examples = demo.image_task_examples(record)  # task name -> examples
sorted(examples)  # ['captioning', 'image_classification', ..., 'vqa']
demo.box_iou(record["box"], record["box"])  # 1.0
```

The whole demo (`keras-uio demo` from a shell; `tests/test_demo.py` runs
that command):
```python
# not run: ~20 s of XLA compilation on CPU (seven tasks' generation)
from keras_uio.demo import run_demo
metrics = run_demo("./demo", num_images=4)  # writes ./demo/index.html
```
"""

import html
import json
import os
import shutil
import sys
import time

import numpy as np
from PIL import Image
from PIL import ImageDraw

from keras_uio.data import easy_vqa
from keras_uio.tasks.visualize import to_json

DEFAULT_PRESET = "uio_tiny_easyvqa"
COLOR_QUESTION = "what color is the shape?"
SHAPE_QUESTION = "what shape is in the image?"


def box_iou(a, b):
    """IoU of two `(x1, y1, x2, y2)` boxes."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def mask_iou(a, b):
    """IoU of two boolean masks of one shape (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _first_box(result):
    boxes = result.get("boxes")
    if boxes is None or len(boxes) == 0:
        return None
    return np.asarray(boxes, float)[0]


def _union_mask(result, shape):
    masks = result.get("masks")
    if masks is None or len(masks) == 0:
        return np.zeros(shape, bool)
    return np.any(np.asarray(masks, bool), axis=0)


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _demo_decoders(model):
    """The readers the demo's figures use: the bundled model draws 32x32
    images, where the original's raster-run mask rule drops small shapes,
    so masks come from 2-D components; boxes from the lenient reader."""
    from keras_uio.tasks import get_task

    tokenizer = model.preprocessor.tokenizer
    return {
        "segmentation": get_task("segmentation", tokenizer=tokenizer,
                                 mode="coarse_color"),
        "localization": get_task("localization", tokenizer=tokenizer,
                                 parser="lenient"),
        "object_detection": get_task("object_detection", tokenizer=tokenizer,
                                     parser="lenient"),
    }


def predict(model, examples, batch_size, on_chunk=None):
    """Greedy `model.predict_tasks` over `examples` in chunks of `batch_size`
    (answer options scored, as the original); `on_chunk(n)` is called after
    each chunk of `n` examples."""
    decoders = _demo_decoders(model)
    examples = [dict(ex, task=decoders.get(ex["task"], ex["task"]))
                for ex in examples]
    results = []
    for chunk in _chunks(examples, batch_size):
        results.extend(model.predict_tasks(chunk, greedy=True))
        if on_chunk is not None:
            on_chunk(len(chunk))
    return results


class _NoProgress:
    def update(self, n=1):
        pass

    def close(self):
        pass


class _KerasProgress:
    """`keras.utils.Progbar` with tqdm's `update(n)` / `close()`."""

    def __init__(self, total, description):
        import keras

        print(description, flush=True)
        self._bar = keras.utils.Progbar(total, unit_name="example")
        self._done = 0
        self._total = total

    def update(self, n=1):
        self._done += n
        self._bar.update(self._done, finalize=self._done >= self._total)

    def close(self):
        pass


def progress_bar(total, description, enabled):
    """A progress bar on stdout over `total` examples: tqdm's when it is
    installed, else `keras.utils.Progbar`; a no-op when not `enabled`."""
    if not enabled:
        return _NoProgress()
    try:
        import tqdm
    except ImportError:
        return _KerasProgress(total, description)
    # A terminal that reports no size (0 x 0, e.g. `script`) would hide
    # the bar: fall back to 100 x 24.
    size = shutil.get_terminal_size((100, 24))
    return tqdm.tqdm(total=total, desc=description, unit="example",
                     file=sys.stdout, leave=True, ncols=min(size.columns, 120),
                     nrows=size.lines)


def image_task_examples(record):
    """One example per easy-vqa task for a test record (VQA: all questions)."""
    image, shape = record["image"], record["shape"]
    return {
        "captioning": [{"task": "captioning", "image": image}],
        "image_classification": [{
            "task": "image_classification", "image": image,
            "answer_options": list(easy_vqa.SHAPES),
        }],
        "localization": [{"task": "localization", "image": image,
                          "object_name": shape}],
        "object_detection": [{"task": "object_detection", "image": image}],
        "segmentation": [{"task": "segmentation", "image": image,
                          "object_name": shape}],
        "text_to_image": [{"task": "text_to_image",
                           "description": record["caption"]}],
        "vqa": [{"task": "vqa", "image": image, "question": q}
                for q, _ in record["questions"]],
    }


# The task groups, run one after the other (one progress bar each): the
# tasks in a group decode the same way, so `predict_tasks` runs each chunk
# of a group as one compiled `generate` (text of up to 32 tokens, of up to
# 128, images) or scores its answer options.
TASK_GROUPS = (
    ("short text", ("captioning", "localization", "vqa")),
    ("detection", ("object_detection",)),
    ("scored options", ("image_classification",)),
    ("images", ("segmentation", "text_to_image")),
)
JUDGE_GROUP = "reading its drawings"


def evaluate_easy_vqa(model, records, batch_size=64, progress=False):
    """Runs every easy-vqa task on `records`; returns `(metrics, results)`.

    The tasks run one group at a time (`TASK_GROUPS`, then the model's
    answers about its own text-to-image drawings), with a progress bar per
    group on stdout when `progress` is true.

    `results[i]` maps each task name to its result dicts for `records[i]`
    (a list: one per VQA question, one for the other tasks), plus
    `"text_to_image_judged"`: the model's answers about its own image.
    """
    per_record = [image_task_examples(r) for r in records]
    results = [{name: [] for name in per_record[0]} for _ in records]

    def run_group(title, examples):
        bar = progress_bar(len(examples), f"{title:>20}", progress)
        try:
            return predict(model, examples, batch_size, on_chunk=bar.update)
        finally:
            bar.close()

    for title, names in TASK_GROUPS:
        owners = [(i, name) for i, tasks in enumerate(per_record)
                  for name in names for _ in tasks[name]]
        examples = [ex for tasks in per_record for name in names
                    for ex in tasks[name]]
        for (i, name), out in zip(owners, run_group(title, examples)):
            results[i][name].append(out)

    judge = []
    for res in results:
        generated = res["text_to_image"][0].get("image")
        for question in (COLOR_QUESTION, SHAPE_QUESTION):
            judge.append({"task": "vqa", "image": generated, "question": question})
    answers = [_answer(out) for out in run_group(JUDGE_GROUP, judge)]
    for i, res in enumerate(results):
        res["text_to_image_judged"] = {
            "color": answers[2 * i], "shape": answers[2 * i + 1]}
    return _metrics(records, results), results


def _answer(result):
    return str(result.get("answer", result.get("text", ""))).strip()


def _metrics(records, results):
    vqa_hits, vqa_total = 0, 0
    rows = {k: [] for k in (
        "caption_exact_match", "classification_accuracy",
        "localization_mean_iou", "detection_mean_iou",
        "detection_label_accuracy", "segmentation_mean_iou",
        "text_to_image_color_agreement", "text_to_image_shape_agreement",
        "text_to_image_agreement")}
    for record, res in zip(records, results):
        for (_, answer), out in zip(record["questions"], res["vqa"]):
            vqa_hits += _answer(out) == answer
            vqa_total += 1
        rows["caption_exact_match"].append(
            res["captioning"][0].get("caption", "").strip() == record["caption"])
        rows["classification_accuracy"].append(
            res["image_classification"][0].get("label") == record["shape"])
        for task, key in (("localization", "localization_mean_iou"),
                          ("object_detection", "detection_mean_iou")):
            box = _first_box(res[task][0])
            rows[key].append(0.0 if box is None else box_iou(box, record["box"]))
        labels = res["object_detection"][0].get("labels") or [""]
        rows["detection_label_accuracy"].append(labels[0] == record["shape"])
        rows["segmentation_mean_iou"].append(mask_iou(
            _union_mask(res["segmentation"][0], record["mask"].shape),
            record["mask"]))
        judged = res["text_to_image_judged"]
        color_ok = judged["color"] == record["color"]
        shape_ok = judged["shape"] == record["shape"]
        rows["text_to_image_color_agreement"].append(color_ok)
        rows["text_to_image_shape_agreement"].append(shape_ok)
        rows["text_to_image_agreement"].append(color_ok and shape_ok)
    metrics = {"num_images": len(records), "num_questions": vqa_total,
               "vqa_accuracy": vqa_hits / max(vqa_total, 1)}
    metrics.update({k: float(np.mean(v)) for k, v in rows.items()})
    return metrics


def _prompt(task_name, example):
    from keras_uio.tasks import get_task

    fields = {k: v for k, v in example.items() if k != "task"}
    return get_task(task_name).build_prompt(**fields)


# ------------------------------------------------------------------ drawing
PREDICTION_COLOR = (230, 0, 200)  # magenta: what the model answered
TRUTH_COLOR = (0, 160, 0)  # green: the shape's true box / mask outline


def _uint8(picture):
    picture = np.asarray(picture)
    if picture.dtype != np.uint8:
        picture = (np.clip(picture, 0, 1) * 255).round().astype(np.uint8)
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, -1)
    return picture[..., :3]


def _upscale(picture, size):
    """`picture` as a `size` (width, height) RGB PIL image, pixels kept."""
    return Image.fromarray(_uint8(picture)).resize(size, Image.NEAREST)


def _clip_box(box, width, height):
    """`box` cut to a `width` x `height` picture, or None with no area in it."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, y1 = max(x1, 0.0), max(y1, 0.0)
    x2, y2 = min(x2, float(width)), min(y2, float(height))
    if not (np.isfinite([x1, y1, x2, y2]).all() and x2 > x1 and y2 > y1):
        return None
    return x1, y1, x2, y2


def draw_boxes(image, boxes, truth=None, scale=2):
    """`image` enlarged `scale` times with the predicted `boxes` (magenta)
    and the `truth` box (green) drawn inside it.

    Boxes are `(x1, y1, x2, y2)` in the image's pixels; each is cut to the
    picture first, so all four sides stay visible and nothing is drawn
    past its edge (a box with no area inside the image is not drawn).
    Returns `(picture, drawn)`: a PIL image and how many boxes were drawn.
    """
    image = _uint8(image)
    height, width = image.shape[:2]
    canvas = _upscale(image, (width * scale, height * scale))
    draw = ImageDraw.Draw(canvas)

    def rectangle(box, color, line):
        clipped = _clip_box(box, width, height)
        if clipped is None:
            return False
        x1, y1, x2, y2 = (round(v * scale) for v in clipped)
        # PIL's corners are inclusive: the last pixel inside is x2 - 1.
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)],
                       outline=color, width=line)
        return True

    if truth is not None:
        rectangle(truth, TRUTH_COLOR, 1)
    drawn = sum(rectangle(box, PREDICTION_COLOR, 2)
                for box in np.asarray(boxes, float).reshape(-1, 4))
    return canvas, drawn


def _outline(mask):
    """The pixels of `mask` with a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    inside = (padded[:-2, 1:-1] & padded[2:, 1:-1]
              & padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask & ~inside


def draw_mask(image, mask, truth=None, scale=2):
    """`image` enlarged `scale` times, the predicted `mask` tinted magenta
    with its outline, the `truth` mask's outline in green.

    The whole mask shows: the tint is drawn on every mask pixel of the
    picture, in the image's own frame (a mask of another size is resized
    to it), never on a second panel."""
    image = _uint8(image)
    height, width = image.shape[:2]
    size = (width * scale, height * scale)

    def enlarge(m):
        m = Image.fromarray(np.asarray(m, bool).astype(np.uint8) * 255)
        return np.asarray(m.resize(size, Image.NEAREST)) > 127

    canvas = np.asarray(_upscale(image, size)).copy()
    predicted = enlarge(mask)
    tint = np.array(PREDICTION_COLOR, float)
    canvas[predicted] = (0.45 * canvas[predicted] + 0.55 * tint).astype(np.uint8)
    canvas[_outline(predicted)] = PREDICTION_COLOR
    if truth is not None:
        canvas[_outline(enlarge(truth))] = TRUTH_COLOR
    return Image.fromarray(canvas)


# ------------------------------------------------------------------ gallery
GALLERY_COLUMNS = (
    ("captioning", "captioning"),
    ("image_classification", "classification"),
    ("localization", "localization"),
    ("object_detection", "detection"),
    ("segmentation", "segmentation"),
)


def _box_text(box):
    x1, y1, x2, y2 = (f"{float(v):.0f}" for v in box)
    return f"({x1}, {y1})-({x2}, {y2})"


def _mark(ok):
    return ("<span class='ok'>&#10003;</span>" if ok
            else "<span class='wrong'>&#10007;</span>")


def _task_cell(name, record, result, scale):
    """`(picture, answer html, note html)` of one task's prediction."""
    image = record["image"]
    if name in ("captioning", "image_classification"):
        key = "caption" if name == "captioning" else "label"
        truth = record["caption"] if name == "captioning" else record["shape"]
        answer = str(result.get(key) or "").strip()
        picture = _upscale(image, (image.shape[1] * scale, image.shape[0] * scale))
        return (picture, f"{html.escape(answer or '(nothing)')} "
                f"{_mark(answer == truth)}", "")
    if name in ("localization", "object_detection"):
        boxes = result.get("boxes")
        boxes = np.zeros((0, 4)) if boxes is None else np.asarray(boxes, float)
        picture, drawn = draw_boxes(image, boxes, truth=record["box"],
                                    scale=scale)
        if len(boxes) == 0:
            return (picture, "no box", html.escape(
                f"read from {result.get('text', '')!r}"))
        labels = list(result.get("labels") or [])
        label = (labels[0] + " ") if labels and labels[0] else ""
        answer = html.escape(label + "at " + _box_text(boxes[0]))
        if len(boxes) > 1:
            answer += f" (+{len(boxes) - 1} more)"
        iou = box_iou(boxes[0], record["box"])
        note = f"IoU {iou:.2f} with the true box (green)"
        if drawn < len(boxes):
            note += f"; {len(boxes) - drawn} box(es) outside the image"
        return picture, answer, note
    mask = _union_mask(result, record["mask"].shape)
    picture = draw_mask(image, mask, truth=record["mask"], scale=scale)
    iou = mask_iou(mask, record["mask"])
    return (picture, f"mask of {int(mask.sum())} pixels",
            f"IoU {iou:.2f} with the true mask (green outline)")


def _figure(out_dir, name, picture, prompt, answer, note="", alt="",
            answer_label="answer"):
    """A `<figure>`: the picture saved as `name`, prompt and answer under it."""
    picture.save(os.path.join(out_dir, name))
    lines = []
    if prompt:
        lines.append(f"<span class='prompt'>prompt: <i>{html.escape(prompt)}</i>"
                     "</span>")
    lines.append(f"<span class='answer'>{answer_label}: <b>{answer}</b></span>")
    if note:
        lines.append(f"<span class='note'>{note}</span>")
    return (f"<figure style='width:{picture.width}px'>"
            f"<img src='{html.escape(name)}' width='{picture.width}' "
            f"height='{picture.height}' alt='{html.escape(alt or name)}'>"
            f"<figcaption>{'<br>'.join(lines)}</figcaption></figure>")


def _metrics_table(metrics):
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            continue
        if isinstance(value, float) and key != "seconds":
            value = f"{value:.3f}"
        rows.append(f"<tr><td>{html.escape(key)}</td>"
                    f"<td class='value'>{html.escape(str(value))}</td></tr>")
    return ("<table class='metrics'><tr><th>metric</th><th>value</th></tr>"
            f"{''.join(rows)}</table>")


def write_gallery(out_dir, records, results, metrics, scale=2):
    """Writes `index.html` + one PNG per picture; returns the HTML path.

    The page shows the metrics table; one row per test image: the input,
    then each task's prediction drawn on it (boxes and masks in magenta
    beside the truth in green) with the prompt and the answer under it,
    and every VQA question; then each caption beside the picture the
    model drew from it (text-to-image) and what the model reads in it.
    """
    os.makedirs(out_dir, exist_ok=True)
    rows, captions, drawings = [], [], []
    for record, res in zip(records, results):
        stem = f"test_{record['image_id']}"
        examples = image_task_examples(record)
        image = record["image"]
        size = (image.shape[1] * scale, image.shape[0] * scale)
        cells = [_figure(
            out_dir, f"{stem}_input.png", _upscale(image, size), "",
            html.escape(record["caption"]),
            f"easy-vqa test image {html.escape(str(record['image_id']))}",
            alt=f"test image {record['image_id']}", answer_label="truth")]
        for name, title in GALLERY_COLUMNS:
            picture, answer, note = _task_cell(name, record, res[name][0], scale)
            cells.append(_figure(
                out_dir, f"{stem}_{name}.png", picture,
                _prompt(name, examples[name][0]), answer, note,
                alt=f"{title} of test image {record['image_id']}"))
        qa = "".join(
            f"<li>{html.escape(q)} <b>{html.escape(_answer(out))}</b> "
            f"{_mark(_answer(out) == a)}"
            + ("" if _answer(out) == a
               else f" <small>(truth: {html.escape(a)})</small>")
            + "</li>"
            for (q, a), out in zip(record["questions"], res["vqa"]))
        cells.append(f"<ul class='vqa'>{qa}</ul>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")

        judged = res["text_to_image_judged"]
        drawn = res["text_to_image"][0].get("image")
        if drawn is None:
            drawn = np.zeros((32, 32, 3), np.uint8)
        ok = (judged["color"] == record["color"], judged["shape"] == record["shape"])
        captions.append(html.escape(record["caption"]))
        drawings.append(_figure(
            out_dir, f"{stem}_text_to_image.png", _upscale(drawn, size),
            _prompt("text_to_image", examples["text_to_image"][0]),
            "the picture", "read back: "
            f"<b>{html.escape(judged['color'])}</b> {_mark(ok[0])} "
            f"<b>{html.escape(judged['shape'])}</b> {_mark(ok[1])}",
            alt=f"drawn from the caption {record['caption']}"))
    header = "".join(f"<th>{t}</th>" for t in (
        ["input"] + [title for _, title in GALLERY_COLUMNS] + ["VQA"]))
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>keras-uio demo</title><style>"
        "body{font-family:sans-serif;margin:12px}"
        "table{border-collapse:collapse}"
        "td,th{vertical-align:top;padding:4px 6px;text-align:left}"
        ".predictions td{border-top:1px solid #ccc}"
        ".metrics td{padding:1px 8px}.metrics .value{text-align:right}"
        "figure{margin:0}img{display:block}"
        "figcaption{font-size:12px;overflow-wrap:anywhere;margin-top:3px}"
        ".prompt{color:#555}.note{color:#555}"
        ".vqa{font-size:12px;margin:0;padding-left:16px;width:300px}"
        ".drawings .caption{font-size:16px;font-weight:bold}"
        ".drawings th{width:90px}img{outline:1px solid #ccc}"
        ".ok{color:#080}.wrong{color:#c00}"
        "</style></head><body><h1>keras-uio demo: easy-vqa test images</h1>"
        f"<p>Model: {html.escape(str(metrics.get('preset', '')))}. Boxes and "
        "masks: the model's answer in magenta, the truth in green.</p>"
        f"<h2>Metrics</h2>{_metrics_table(metrics)}"
        "<h2>Predictions</h2>"
        f"<table class='predictions'><tr>{header}</tr>{''.join(rows)}</table>"
        "<h2>Text to image</h2><p>Each caption above the picture the model "
        "drew from it (greedy decoding, as every task here), and the "
        "model's own answers to "
        f"&ldquo;{html.escape(COLOR_QUESTION)}&rdquo; and "
        f"&ldquo;{html.escape(SHAPE_QUESTION)}&rdquo; about that picture "
        "(read back).</p><table class='drawings'>"
        "<tr><th>caption</th>"
        + "".join(f"<td class='caption'>{c}</td>" for c in captions)
        + "</tr><tr><th>drawn from it</th>"
        + "".join(f"<td>{d}</td>" for d in drawings)
        + "</tr></table></body></html>"
    )
    path = os.path.join(out_dir, "index.html")
    with open(path, "w") as f:
        f.write(page)
    return path


def _check_count(value, name, minimum, maximum=None, hint=""):
    """`value` as an int in `[minimum, maximum]`, else a `ValueError`."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if ok:
        ok = value >= minimum and (maximum is None or value <= maximum)
    if not ok:
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(
            f"`{name}` must be an int {bound}{hint}. Received: {value!r}"
        )
    return int(value)


def _check_demo_arguments(out_dir, num_images, gallery_images, batch_size):
    """Every `run_demo` argument is checked before the model loads."""
    from keras_uio.errors import check_output_dir

    _check_count(num_images, "num_images", 1, 1000,
                 hint=" (1000 = the easy-vqa test split)")
    _check_count(gallery_images, "gallery_images", 0)
    _check_count(batch_size, "batch_size", 1)
    check_output_dir(out_dir, "`out_dir`")


def run_demo(out_dir, preset=DEFAULT_PRESET, num_images=16, gallery_images=8,
             batch_size=64, progress=None):
    """Evaluates `preset` on the first `num_images` easy-vqa test images.

    Writes `out_dir/index.html` (the first `gallery_images` images with
    every prediction drawn), `out_dir/metrics.json`, and returns the
    metrics dict (with the paths under `"gallery"` and `"metrics_file"`).
    `progress`: a progress bar per task group on stdout; `None` (the
    default) shows them when stdout is a terminal.
    """
    from keras_uio.models.unified_io.unified_io import UnifiedIO

    _check_demo_arguments(out_dir, num_images, gallery_images, batch_size)
    start = time.time()
    model = UnifiedIO.from_preset(preset)
    records = easy_vqa.load_records("test", limit=int(num_images))
    if progress is None:
        progress = sys.stdout.isatty()
    metrics, results = evaluate_easy_vqa(model, records, batch_size=batch_size,
                                         progress=progress)
    metrics["preset"] = preset
    metrics["seconds"] = round(time.time() - start, 1)
    shown = min(int(gallery_images), len(records))
    gallery = write_gallery(out_dir, records[:shown], results[:shown], metrics)
    metrics_file = os.path.join(out_dir, "metrics.json")
    with open(metrics_file, "w") as f:
        json.dump(to_json(metrics), f, indent=2)
    metrics["gallery"] = gallery
    metrics["metrics_file"] = metrics_file
    return metrics
