"""RefCOCO / RefCOCO+ / RefCOCOg: referring expressions, accuracy at IoU 0.5.

The annotation file is COCO-like JSON with a `"refs"` list, as the
`refer` toolkit's `refs(unc).p` holds them: `{"images": [...],
"annotations": [...], "refs": [{"ref_id": 0, "image_id": 42,
"ann_id": 7, "split": "testA", "sentences": [{"sent_id": 0, "sent":
"man on the left"}]}]}`. The box of a ref is its annotation's `bbox`
(`[x, y, w, h]`), or the ref's own `bbox` when it has one. One example
per sentence (id: its `sent_id`, else `{ref_id}_{k}`); `split` keeps the
refs of one split. The README shows how to write this file from the
`refer` toolkit's pickle and `instances.json`.

A prediction is correct when the first box the model writes has IoU >=
0.5 with the ref's box (none written: wrong). Predictions are written as
`refexp_results.json`: `[{"ref_id", "sent_id", "bbox": [x, y, w, h]}]`.

Example:
>>> box_iou([0, 0, 10, 10], [5, 0, 15, 10])
0.3333333333333333
>>> refexp_accuracy([[0, 0, 10, 10], None], [[0, 0, 10, 12], [1, 1, 2, 2]])
0.5
"""

import os

import numpy as np

from keras_uio.errors import UserInputError
from keras_uio.evaluation.benchmark import Benchmark
from keras_uio.evaluation.coco import images_by_id
from keras_uio.evaluation.coco import load_coco
from keras_uio.evaluation.coco import xywh_to_xyxy
from keras_uio.evaluation.coco import xyxy_to_xywh
from keras_uio.evaluation.files import field
from keras_uio.evaluation.files import write_json

REFS_EXAMPLE = (
    '{"images": [...], "annotations": [...], "refs": [{"ref_id": '
    '0, "image_id": 42, "ann_id": 7, "split": "val", "sentences": '
    '[{"sent_id": 0, "sent": "man on the left"}]}]}'
)


def box_iou(a, b):
    """IoU of two `[x1, y1, x2, y2]` boxes (0 when the union is empty)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def refexp_accuracy(predicted, truth, threshold=0.5):
    """Share of predicted boxes (`None`: no box) with IoU >= `threshold`
    against the true boxes, all `[x1, y1, x2, y2]`."""
    hits = [
        p is not None and box_iou(p, t) >= threshold for p, t in zip(predicted, truth)
    ]
    return float(np.mean(hits)) if hits else 0.0


def _ref_box(ref, boxes, where):
    if "bbox" in ref:
        return xywh_to_xyxy(ref["bbox"])
    ann_id = field(ref, "ann_id", where)
    if ann_id not in boxes:
        raise UserInputError(f"{where}: ann_id {ann_id} is not in its 'annotations'.")
    return boxes[ann_id]


def _sentence(sentence, where):
    if isinstance(sentence, str):
        return sentence
    if isinstance(sentence, dict) and ("sent" in sentence or "raw" in sentence):
        return sentence.get("sent", sentence.get("raw"))
    raise UserInputError(
        f"{where} is neither a string nor a dict with 'sent': {sentence!r:.200}"
    )


def read_refs(annotations, images_dir, split=None):
    """Examples of a RefCOCO-style file: `id`, `image`, `inputs`
    (`{"expression": ...}`), `box` (`[x1, y1, x2, y2]`), `ref_id`,
    `sent_id`."""
    what = "RefCOCO-style file"
    data = load_coco(annotations, what, ("images", "refs"))
    files = images_by_id(data, images_dir, annotations, what)
    boxes = {}
    for k, ann in enumerate(data.get("annotations", [])):
        where = f"{what} {annotations!r} annotations[{k}]"
        boxes[field(ann, "id", where)] = xywh_to_xyxy(field(ann, "bbox", where))
    examples = []
    for k, ref in enumerate(data["refs"]):
        where = f"{what} {annotations!r} refs[{k}]"
        if split is not None and ref.get("split") != split:
            continue
        image_id = field(ref, "image_id", where)
        if image_id not in files:
            raise UserInputError(
                f"{where}: image_id {image_id} is not in its 'images'."
            )
        box = _ref_box(ref, boxes, where)
        ref_id = field(ref, "ref_id", where)
        for n, sentence in enumerate(field(ref, "sentences", where)):
            sent_id = sentence.get("sent_id") if isinstance(sentence, dict) else None
            examples.append(
                {
                    "id": str(sent_id) if sent_id is not None else f"{ref_id}_{n}",
                    "image": files[image_id],
                    "inputs": {
                        "expression": _sentence(sentence, f"{where} sentences[{n}]")
                    },
                    "box": box,
                    "ref_id": ref_id,
                    "sent_id": sent_id,
                }
            )
    if not examples and split is not None:
        splits = sorted({str(r.get("split")) for r in data["refs"]})
        raise UserInputError(
            f"{what} {annotations!r} has no refs of split "
            f"{split!r}; its splits: {splits}."
        )
    return examples


class ReferringExpressionBenchmark(Benchmark):
    """Referring expressions: accuracy at IoU >= 0.5 (the RefCOCO metric).

    `from_files(annotations, images, split=None)`.

    Metrics: `refexp_accuracy` (IoU >= 0.5), `mean_iou` (0 for no box),
    `no_box` (sentences with no box in the output), `num_sentences`.
    """

    task = "referring_expression"
    options = ("split",)
    results_file = "refexp_results.json"

    @classmethod
    def from_files(cls, annotations, images, split=None):
        source = f"RefCOCO-style file {annotations!r}"
        if split is not None:
            source += f" split {split!r}"
        return cls(read_refs(annotations, images, split), source)

    def to_record(self, example, result, out_dir):
        box = result.get("box")
        if box is None and result.get("boxes") is not None and len(result["boxes"]):
            box = result["boxes"][0]
        return {
            "id": example["id"],
            "ref_id": example["ref_id"],
            "sent_id": example["sent_id"],
            "box": None if box is None else [float(v) for v in box],
            "errors": list(result.get("errors") or []),
        }

    def score(self, records, out_dir):
        write_json(
            os.path.join(out_dir, self.results_file),
            [
                {
                    "ref_id": r["ref_id"],
                    "sent_id": r["sent_id"],
                    "bbox": None if r["box"] is None else xyxy_to_xywh(r["box"]),
                }
                for r in records
            ],
        )
        truth = {ex["id"]: ex["box"] for ex in self.examples}
        predicted = [r["box"] for r in records]
        boxes = [truth[r["id"]] for r in records]
        ious = [0.0 if p is None else box_iou(p, t) for p, t in zip(predicted, boxes)]
        return {
            "refexp_accuracy": refexp_accuracy(predicted, boxes),
            "mean_iou": float(np.mean(ious)),
            "no_box": sum(p is None for p in predicted),
            "num_sentences": len(records),
        }
