"""The `keras-uio demo` gallery: predictions drawn on the test images.

`write_gallery` writes an HTML page (metrics table, one row per test image
with each task's prompt and answer under its picture, the text-to-image
drawings under their captions) and one PNG per picture; `draw_boxes` and
`draw_mask` draw a prediction beside the truth.
"""

import html
import os

import numpy as np
from PIL import Image
from PIL import ImageDraw

from keras_uio.demo import COLOR_QUESTION
from keras_uio.demo import SHAPE_QUESTION
from keras_uio.demo import answer_text
from keras_uio.demo import box_iou
from keras_uio.demo import image_task_examples
from keras_uio.demo import mask_iou
from keras_uio.demo import union_mask


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
        draw.rectangle(
            [x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=color, width=line
        )
        return True

    if truth is not None:
        rectangle(truth, TRUTH_COLOR, 1)
    drawn = sum(
        rectangle(box, PREDICTION_COLOR, 2)
        for box in np.asarray(boxes, float).reshape(-1, 4)
    )
    return canvas, drawn


def _outline(mask):
    """The pixels of `mask` with a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
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
    return (
        "<span class='ok'>&#10003;</span>"
        if ok
        else "<span class='wrong'>&#10007;</span>"
    )


def _task_cell(name, record, result, scale):
    """`(picture, answer html, note html)` of one task's prediction."""
    image = record["image"]
    if name in ("captioning", "image_classification"):
        key = "caption" if name == "captioning" else "label"
        truth = record["caption"] if name == "captioning" else record["shape"]
        answer = str(result.get(key) or "").strip()
        picture = _upscale(image, (image.shape[1] * scale, image.shape[0] * scale))
        return (
            picture,
            f"{html.escape(answer or '(nothing)')} {_mark(answer == truth)}",
            "",
        )
    if name in ("localization", "object_detection"):
        boxes = result.get("boxes")
        boxes = np.zeros((0, 4)) if boxes is None else np.asarray(boxes, float)
        picture, drawn = draw_boxes(image, boxes, truth=record["box"], scale=scale)
        if len(boxes) == 0:
            return (
                picture,
                "no box",
                html.escape(f"read from {result.get('text', '')!r}"),
            )
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
    mask = union_mask(result, record["mask"].shape)
    picture = draw_mask(image, mask, truth=record["mask"], scale=scale)
    iou = mask_iou(mask, record["mask"])
    return (
        picture,
        f"mask of {int(mask.sum())} pixels",
        f"IoU {iou:.2f} with the true mask (green outline)",
    )


def _figure(
    out_dir, name, picture, prompt, answer, note="", alt="", answer_label="answer"
):
    """A `<figure>`: the picture saved as `name`, prompt and answer under it."""
    picture.save(os.path.join(out_dir, name))
    lines = []
    if prompt:
        lines.append(
            f"<span class='prompt'>prompt: <i>{html.escape(prompt)}</i></span>"
        )
    lines.append(f"<span class='answer'>{answer_label}: <b>{answer}</b></span>")
    if note:
        lines.append(f"<span class='note'>{note}</span>")
    return (
        f"<figure style='width:{picture.width}px'>"
        f"<img src='{html.escape(name)}' width='{picture.width}' "
        f"height='{picture.height}' alt='{html.escape(alt or name)}'>"
        f"<figcaption>{'<br>'.join(lines)}</figcaption></figure>"
    )


def _metrics_table(metrics):
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            continue
        if isinstance(value, float) and key != "seconds":
            value = f"{value:.3f}"
        rows.append(
            f"<tr><td>{html.escape(key)}</td>"
            f"<td class='value'>{html.escape(str(value))}</td></tr>"
        )
    return (
        "<table class='metrics'><tr><th>metric</th><th>value</th></tr>"
        f"{''.join(rows)}</table>"
    )


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
        cells = [
            _figure(
                out_dir,
                f"{stem}_input.png",
                _upscale(image, size),
                "",
                html.escape(record["caption"]),
                f"easy-vqa test image {html.escape(str(record['image_id']))}",
                alt=f"test image {record['image_id']}",
                answer_label="truth",
            )
        ]
        for name, title in GALLERY_COLUMNS:
            picture, answer, note = _task_cell(name, record, res[name][0], scale)
            cells.append(
                _figure(
                    out_dir,
                    f"{stem}_{name}.png",
                    picture,
                    _prompt(name, examples[name][0]),
                    answer,
                    note,
                    alt=f"{title} of test image {record['image_id']}",
                )
            )
        qa = "".join(
            f"<li>{html.escape(q)} <b>{html.escape(answer_text(out))}</b> "
            f"{_mark(answer_text(out) == a)}"
            + (
                ""
                if answer_text(out) == a
                else f" <small>(truth: {html.escape(a)})</small>"
            )
            + "</li>"
            for (q, a), out in zip(record["questions"], res["vqa"])
        )
        cells.append(f"<ul class='vqa'>{qa}</ul>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")

        judged = res["text_to_image_judged"]
        drawn = res["text_to_image"][0].get("image")
        if drawn is None:
            drawn = np.zeros((32, 32, 3), np.uint8)
        ok = (judged["color"] == record["color"], judged["shape"] == record["shape"])
        captions.append(html.escape(record["caption"]))
        drawings.append(
            _figure(
                out_dir,
                f"{stem}_text_to_image.png",
                _upscale(drawn, size),
                _prompt("text_to_image", examples["text_to_image"][0]),
                "the picture",
                "read back: "
                f"<b>{html.escape(judged['color'])}</b> {_mark(ok[0])} "
                f"<b>{html.escape(judged['shape'])}</b> {_mark(ok[1])}",
                alt=f"drawn from the caption {record['caption']}",
            )
        )
    header = "".join(
        f"<th>{t}</th>"
        for t in (["input"] + [title for _, title in GALLERY_COLUMNS] + ["VQA"])
    )
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
        "drew from it (top-p 0.9 sampling with seed 0, as the original "
        "runner draws; masks too; text is greedy), and the "
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
