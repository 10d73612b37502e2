"""Class segmentation from a COCO instances file, scored by mask IoU.

One example per (image, category present in it): the model is asked for
the segmentation of the category's name, and the union of the masks it
draws is compared with the union of that category's (non-crowd)
instance masks in the image (polygons or RLE, decoded by
`pycocotools`). Example ids are `{image_id}_{category_id}`.

Predictions are written as `segmentation_results.json`, COCO results
with RLE masks (`[{"image_id", "category_id", "segmentation", "score"}]`).

Example:
>>> data = {"images": [{"id": 1, "width": 4, "height": 4}],
...         "annotations": [{"id": 1, "image_id": 1, "category_id": 2,
...                          "iscrowd": 0, "segmentation":
...                          [[0, 0, 2, 0, 2, 2, 0, 2]]}],
...         "categories": [{"id": 2, "name": "cat"}]}
>>> int(truth_mask(data, 1, 2).sum())
4
"""

import os

import numpy as np

from keras_uio.evaluation.coco import CocoBenchmark
from keras_uio.evaluation.coco import coco_index
from keras_uio.evaluation.coco import images_by_id
from keras_uio.evaluation.dense_metrics import mask_iou
from keras_uio.evaluation.files import field
from keras_uio.evaluation.files import prediction_record
from keras_uio.evaluation.files import write_json


def truth_mask(data, image_id, category_id, coco=None):
    """The union of an image's non-crowd instance masks of a category."""
    coco = coco or coco_index(data)
    image = coco.imgs[image_id]
    mask = np.zeros((image["height"], image["width"]), bool)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=[category_id])):
        if not ann.get("iscrowd", 0):
            mask |= coco.annToMask(ann).astype(bool)
    return mask


def encode_mask(mask):
    """A boolean mask as COCO RLE (`counts` a string)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, np.uint8)))
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": rle["counts"].decode("ascii"),
    }


def read_segmentation_examples(data, images_dir, annotations, what):
    """One example per (image, category) with non-crowd instances."""
    files = images_by_id(data, images_dir, annotations, what)
    names = {
        field(c, "id", f"{what} categories[{k}]"): field(
            c, "name", f"{what} categories[{k}]"
        )
        for k, c in enumerate(data["categories"])
    }
    present = {}
    for k, ann in enumerate(data["annotations"]):
        where = f"{what} {annotations!r} annotations[{k}]"
        if not ann.get("iscrowd", 0):
            field(ann, "segmentation", where)  # polygons or RLE
            key = (field(ann, "image_id", where), field(ann, "category_id", where))
            present[key] = True
    return [
        {
            "id": f"{image_id}_{category_id}",
            "image": files[image_id],
            "inputs": {"object_name": names[category_id]},
            "image_id": image_id,
            "category_id": category_id,
        }
        for image_id in files
        for category_id in names
        if (image_id, category_id) in present
    ]


class SegmentationBenchmark(CocoBenchmark):
    """Per-class masks against COCO instance masks: IoU.

    Metrics: `mean_iou` (mean over (image, class) examples; 1.0 when
    both masks are empty), `overall_iou` (summed intersections over
    summed unions), `num_examples`.

    Args:
        examples: see `Benchmark`, with `image_id` and `category_id`.
        source: see `Benchmark`.
        data: the COCO ground truth dict.
    """

    task = "segmentation"
    results_file = "segmentation_results.json"
    what = "COCO instances file"
    read_examples = staticmethod(read_segmentation_examples)

    def __init__(self, examples, source, data):
        super().__init__(examples, source, data)
        self._coco = None

    def to_record(self, example, result, out_dir):
        if self._coco is None:
            self._coco = coco_index(self.data)
        truth = truth_mask(
            self.data, example["image_id"], example["category_id"], self._coco
        )
        masks = result.get("masks")
        predicted = (
            np.zeros(truth.shape, bool)
            if masks is None or not len(masks)
            else np.any(np.asarray(masks, bool), axis=0)
        )
        inter, union, iou = mask_iou(predicted, truth)
        return prediction_record(
            example,
            result,
            image_id=example["image_id"],
            category_id=example["category_id"],
            intersection=inter,
            union=union,
            iou=iou,
            rle=encode_mask(predicted),
        )

    def score(self, records, out_dir):
        write_json(
            os.path.join(out_dir, self.results_file),
            [
                {
                    "image_id": r["image_id"],
                    "category_id": r["category_id"],
                    "segmentation": r["rle"],
                    "score": 1.0,
                }
                for r in records
            ],
        )
        union = sum(r["union"] for r in records)
        return {
            "mean_iou": float(np.mean([r["iou"] for r in records])),
            "overall_iou": (
                sum(r["intersection"] for r in records) / union if union else 1.0
            ),
            "num_examples": len(records),
        }
