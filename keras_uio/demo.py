"""`keras-uio demo`: a trained Unified-IO at work on held-out easy-vqa images.

`evaluate_easy_vqa` runs the seven easy-vqa tasks of a model trained on
them (the shipped `uio_tiny_easyvqa` preset) on test images and scores
them; `keras_uio.demo_gallery.write_gallery` draws every prediction into
an HTML page; `run_demo` does both.

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

import json
import os
import shutil
import sys
import time

import numpy as np

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


def union_mask(result, shape):
    """All predicted instance masks of a segmentation result as one mask."""
    masks = result.get("masks")
    if masks is None or len(masks) == 0:
        return np.zeros(shape, bool)
    return np.any(np.asarray(masks, bool), axis=0)


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _demo_decoders(model):
    """The readers the demo's figures use: the bundled model draws 32x32
    images, where the original's raster-run mask rule drops small shapes,
    so masks come from 2-D components; boxes from the lenient reader."""
    from keras_uio.tasks import get_task

    tokenizer = model.preprocessor.tokenizer
    return {
        "segmentation": get_task(
            "segmentation", tokenizer=tokenizer, mode="coarse_color"
        ),
        "localization": get_task("localization", tokenizer=tokenizer, parser="lenient"),
        "object_detection": get_task(
            "object_detection", tokenizer=tokenizer, parser="lenient"
        ),
    }


def predict(model, examples, batch_size, on_chunk=None):
    """`model.predict_tasks` over `examples` in chunks of `batch_size`, with
    its defaults, which are the original runner's: text greedy, images
    (masks, drawings) by top-p 0.9 sampling with seed 0, the same on every
    backend; answer options scored. `on_chunk(n)` is called after each
    chunk of `n` examples."""
    decoders = _demo_decoders(model)
    examples = [dict(ex, task=decoders.get(ex["task"], ex["task"])) for ex in examples]
    results = []
    for chunk in _chunks(examples, batch_size):
        results.extend(model.predict_tasks(chunk))
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
    return tqdm.tqdm(
        total=total,
        desc=description,
        unit="example",
        file=sys.stdout,
        leave=True,
        ncols=min(size.columns, 120),
        nrows=size.lines,
    )


def image_task_examples(record):
    """One example per easy-vqa task for a test record (VQA: all questions)."""
    image, shape = record["image"], record["shape"]
    return {
        "captioning": [{"task": "captioning", "image": image}],
        "image_classification": [
            {
                "task": "image_classification",
                "image": image,
                "answer_options": list(easy_vqa.SHAPES),
            }
        ],
        "localization": [
            {"task": "localization", "image": image, "object_name": shape}
        ],
        "object_detection": [{"task": "object_detection", "image": image}],
        "segmentation": [
            {"task": "segmentation", "image": image, "object_name": shape}
        ],
        "text_to_image": [{"task": "text_to_image", "description": record["caption"]}],
        "vqa": [
            {"task": "vqa", "image": image, "question": q}
            for q, _ in record["questions"]
        ],
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

    for title, names in TASK_GROUPS:
        owners = [
            (i, name)
            for i, tasks in enumerate(per_record)
            for name in names
            for _ in tasks[name]
        ]
        examples = [ex for tasks in per_record for name in names for ex in tasks[name]]
        for (i, name), out in zip(
            owners, _run_group(model, title, examples, batch_size, progress)
        ):
            results[i][name].append(out)

    read_back(model, results, batch_size, progress)
    return easy_vqa_metrics(records, results), results


def _run_group(model, title, examples, batch_size, progress):
    bar = progress_bar(len(examples), f"{title:>20}", progress)
    try:
        return predict(model, examples, batch_size, on_chunk=bar.update)
    finally:
        bar.close()


def read_back(model, results, batch_size=64, progress=False):
    """The model's answers about the drawings in `results` (colour and
    shape questions), stored as `res["text_to_image_judged"]`.

    `model` need not be the one that drew: `benchmarks/low_precision_demo.py`
    judges every variant's drawings with the float32 model too.
    """
    judge = []
    for res in results:
        generated = res["text_to_image"][0].get("image")
        for question in (COLOR_QUESTION, SHAPE_QUESTION):
            judge.append({"task": "vqa", "image": generated, "question": question})
    out = _run_group(model, JUDGE_GROUP, judge, batch_size, progress)
    answers = [answer_text(o) for o in out]
    for i, res in enumerate(results):
        res["text_to_image_judged"] = {
            "color": answers[2 * i],
            "shape": answers[2 * i + 1],
        }


def answer_text(result):
    """The text answer of a task result (`answer`, else `text`), stripped."""
    return str(result.get("answer", result.get("text", ""))).strip()


def easy_vqa_metrics(records, results):
    """The demo's metrics (module docstring) of `results` on `records`."""
    vqa_hits, vqa_total = 0, 0
    rows = {
        k: []
        for k in (
            "caption_exact_match",
            "classification_accuracy",
            "localization_mean_iou",
            "detection_mean_iou",
            "detection_label_accuracy",
            "segmentation_mean_iou",
        )
    }
    for record, res in zip(records, results):
        for (_, answer), out in zip(record["questions"], res["vqa"]):
            vqa_hits += answer_text(out) == answer
            vqa_total += 1
        rows["caption_exact_match"].append(
            res["captioning"][0].get("caption", "").strip() == record["caption"]
        )
        rows["classification_accuracy"].append(
            res["image_classification"][0].get("label") == record["shape"]
        )
        for task, key in (
            ("localization", "localization_mean_iou"),
            ("object_detection", "detection_mean_iou"),
        ):
            box = _first_box(res[task][0])
            rows[key].append(0.0 if box is None else box_iou(box, record["box"]))
        labels = res["object_detection"][0].get("labels") or [""]
        rows["detection_label_accuracy"].append(labels[0] == record["shape"])
        rows["segmentation_mean_iou"].append(
            mask_iou(
                union_mask(res["segmentation"][0], record["mask"].shape), record["mask"]
            )
        )
    metrics = {
        "num_images": len(records),
        "num_questions": vqa_total,
        "vqa_accuracy": vqa_hits / max(vqa_total, 1),
    }
    metrics.update({k: float(np.mean(v)) for k, v in rows.items()})
    metrics.update(drawing_agreement(records, results))
    return metrics


def drawing_agreement(records, results):
    """How often the model's reading of its drawings (`read_back`) names
    the caption's colour, its shape, and both."""
    judged = [res["text_to_image_judged"] for res in results]
    color = np.array([j["color"] == r["color"] for j, r in zip(judged, records)])
    shape = np.array([j["shape"] == r["shape"] for j, r in zip(judged, records)])
    return {
        "text_to_image_color_agreement": float(color.mean()),
        "text_to_image_shape_agreement": float(shape.mean()),
        "text_to_image_agreement": float((color & shape).mean()),
    }


def _check_count(value, name, minimum, maximum=None, hint=""):
    """`value` as an int in `[minimum, maximum]`, else a `ValueError`."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if ok:
        ok = value >= minimum and (maximum is None or value <= maximum)
    if not ok:
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"`{name}` must be an int {bound}{hint}. Received: {value!r}")
    return int(value)


def _check_demo_arguments(out_dir, num_images, gallery_images, batch_size):
    """Every `run_demo` argument is checked before the model loads."""
    from keras_uio.errors import check_output_dir

    _check_count(
        num_images, "num_images", 1, 1000, hint=" (1000 = the easy-vqa test split)"
    )
    _check_count(gallery_images, "gallery_images", 0)
    _check_count(batch_size, "batch_size", 1)
    check_output_dir(out_dir, "`out_dir`")


def run_demo(
    out_dir,
    preset=DEFAULT_PRESET,
    num_images=16,
    gallery_images=8,
    batch_size=64,
    progress=None,
):
    """Evaluates `preset` on the first `num_images` easy-vqa test images.

    Writes `out_dir/index.html` (the first `gallery_images` images with
    every prediction drawn), `out_dir/metrics.json`, and returns the
    metrics dict (with the paths under `"gallery"` and `"metrics_file"`).
    `progress`: a progress bar per task group on stdout; `None` (the
    default) shows them when stdout is a terminal.
    """
    from keras_uio.demo_gallery import write_gallery
    from keras_uio.models.unified_io.unified_io import UnifiedIO

    _check_demo_arguments(out_dir, num_images, gallery_images, batch_size)
    start = time.time()
    model = UnifiedIO.from_preset(preset)
    records = easy_vqa.load_records("test", limit=int(num_images))
    if progress is None:
        progress = sys.stdout.isatty()
    metrics, results = evaluate_easy_vqa(
        model, records, batch_size=batch_size, progress=progress
    )
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
