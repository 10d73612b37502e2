"""COCO-format annotation files and `pycocotools` scoring.

A COCO file is a JSON object with `"images"` (`id`, `file_name`, `width`,
`height`), `"annotations"` (`id`, `image_id`, `category_id`, `bbox` as
`[x, y, width, height]` in pixels, `area`, `iscrowd`, and per task
`caption`, `segmentation` or `keypoints`) and `"categories"` (`id`,
`name`). `coco_ap` runs the reference `pycocotools.cocoeval.COCOeval`.

Example:
>>> gt = {"images": [{"id": 1, "width": 100, "height": 100}],
...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
...                        "bbox": [10, 10, 30, 30], "area": 900,
...                        "iscrowd": 0}],
...       "categories": [{"id": 1, "name": "dog"}]}
>>> results = [{"image_id": 1, "category_id": 1,
...             "bbox": [10, 10, 30, 30], "score": 1.0}]
>>> metrics, _ = coco_ap(gt, results, "bbox", [1])
>>> round(metrics["AP"], 3), round(metrics["AP50"], 3)
(1.0, 1.0)
"""

import contextlib
import io
import os

import numpy as np

from keras_uio.errors import UserInputError
from keras_uio.evaluation.benchmark import Benchmark
from keras_uio.evaluation.files import field
from keras_uio.evaluation.files import find_image
from keras_uio.evaluation.files import load_json
from keras_uio.evaluation.files import write_json

COCO_EXAMPLE = (
    '{"images": [{"id": 1, "file_name": "a.jpg", "width": 640, '
    '"height": 480}], "annotations": [{"id": 1, "image_id": 1, '
    '"category_id": 1, "bbox": [x, y, w, h], "area": ..., "iscrowd": 0}], '
    '"categories": [{"id": 1, "name": "person"}]}'
)
# `COCOeval.stats`, in order, for each kind of evaluation.
_BOX_AND_MASK_STATS = (
    "AP",
    "AP50",
    "AP75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR1",
    "AR10",
    "AR100",
    "AR_small",
    "AR_medium",
    "AR_large",
)
STAT_NAMES = {
    "bbox": _BOX_AND_MASK_STATS,
    "segm": _BOX_AND_MASK_STATS,
    "keypoints": (
        "AP",
        "AP50",
        "AP75",
        "AP_medium",
        "AP_large",
        "AR",
        "AR50",
        "AR75",
        "AR_medium",
        "AR_large",
    ),
}


def load_coco(path, what, fields=("images", "annotations", "categories")):
    """A COCO-format file as a dict, its top-level lists checked."""
    data = load_json(path, what, fields, example=COCO_EXAMPLE)
    for key in fields:
        if not isinstance(data[key], list):
            raise UserInputError(f"{what} {os.fspath(path)!r}: {key!r} must be a list.")
    return data


def image_file(images_dir, image, where):
    """The file of a COCO `images` entry: `file_name` under `images_dir`
    (or its base name, for files kept flat)."""
    name = field(image, "file_name", where)
    return find_image(images_dir, [name, os.path.basename(name)], where)


def images_by_id(data, images_dir, path, what):
    """`{image_id: image file}` for a COCO file's `images`, in file order."""
    files = {}
    for k, image in enumerate(data["images"]):
        where = f"{what} {os.fspath(path)!r} images[{k}]"
        files[field(image, "id", where)] = image_file(images_dir, image, where)
    return files


def image_examples(data, images_dir, annotations, what):
    """One example per image of a COCO file: `id`, `image`, `inputs`,
    `image_id`."""
    files = images_by_id(data, images_dir, annotations, what)
    return [
        {"id": str(image_id), "image": path, "inputs": {}, "image_id": image_id}
        for image_id, path in files.items()
    ]


def xywh_to_xyxy(box):
    """COCO `[x, y, w, h]` -> `[x1, y1, x2, y2]`."""
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def xyxy_to_xywh(box):
    """`[x1, y1, x2, y2]` -> COCO `[x, y, w, h]`."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def rank_score(rank):
    """The score given to the `rank`-th object of an output (from 0).

    Unified-IO writes boxes and people as text, with no confidence; COCO
    AP ranks detections by score, so the k-th object an output lists gets
    `1 / (k + 1)` (what comes first is ranked first).
    """
    return 1.0 / (rank + 1)


def coco_index(data):
    """A `pycocotools.coco.COCO` built from a dict, without its prints."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_ap(data, results, iou_type, image_ids):
    """COCO AP / AR of `results` on the images `image_ids` of `data`.

    Args:
        data: the ground truth, a COCO-format dict.
        results: COCO results, a list of `{"image_id", "category_id",
            "score"}` with `"bbox"` (`[x, y, w, h]`), `"segmentation"`
            (RLE) or `"keypoints"` (`[x1, y1, v1, ...]`).
        iou_type: `"bbox"`, `"segm"` or `"keypoints"`.
        image_ids: the images evaluated (those with no result count as
            missed; the others in `data` are left out).

    Returns:
        `(metrics, summary)`: `COCOeval.stats` by name (`None` where
        COCOeval reports -1, e.g. no small objects), and the text table
        `COCOeval.summarize` prints. With no results every value is 0.
    """
    from pycocotools.cocoeval import COCOeval

    names = STAT_NAMES[iou_type]
    if not results:
        return {name: 0.0 for name in names}, "no predictions: every value is 0\n"
    gt = coco_index(data)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        dt = gt.loadRes([dict(r) for r in results])
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    summary = printed.getvalue()
    summary = summary[summary.find(" Average Precision") :]
    metrics = {
        name: (None if value < 0 else float(value))
        for name, value in zip(names, np.asarray(evaluator.stats))
    }
    return metrics, summary


class CocoBenchmark(Benchmark):
    """A benchmark read from a COCO-format file, kept as `data`.

    Subclasses set `what` (how messages name the file) and may override
    `read_examples` (default: `image_examples`, one per image).

    Args:
        examples: see `Benchmark`, with `image_id`.
        source: see `Benchmark`.
        data: the COCO ground truth dict.
    """

    what = "COCO instances file"

    def __init__(self, examples, source, data):
        super().__init__(examples, source)
        self.data = data

    @staticmethod
    def read_examples(data, images_dir, annotations, what):
        """The examples of `data`, read from `annotations`."""
        return image_examples(data, images_dir, annotations, what)

    @classmethod
    def from_files(cls, annotations, images):
        data = load_coco(annotations, cls.what)
        return cls(
            cls.read_examples(data, images, annotations, cls.what),
            f"{cls.what} {annotations!r}",
            data,
        )

    def score_coco(self, results, records, out_dir, iou_type):
        """`coco_ap` of `results` on the images of `records`, with
        `num_images`; writes `results` as `results_file` and the
        `COCOeval` table as `coco_eval.txt`."""
        write_json(os.path.join(out_dir, self.results_file), results)
        metrics, summary = coco_ap(
            self.data, results, iou_type, [r["image_id"] for r in records]
        )
        with open(os.path.join(out_dir, "coco_eval.txt"), "w") as f:
            f.write(summary)
        metrics["num_images"] = len(records)
        return metrics
