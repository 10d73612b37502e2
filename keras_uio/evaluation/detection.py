"""COCO detection: a COCO instances file, scored by `pycocotools` box AP.

The annotation file is `instances_val2017.json` (or any COCO-format file
with boxes). One example per image, in the file's image order; the model
answers "What objects are in the image ?" and each box it writes counts
for the category whose name equals its label (case and surrounding
spaces ignored); other labels are dropped and counted. Unified-IO gives
no confidence, so boxes are ranked by their order in the output
(`coco.rank_score`).

Predictions are written as `detection_results.json`, COCO results
(`[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]`), and
the `COCOeval` table as `coco_eval.txt`.

Example:
>>> bench = DetectionBenchmark(
...     [{"id": "1", "image": "a.png", "inputs": {}, "image_id": 1}],
...     "hand-made", {"images": [{"id": 1}], "annotations": [],
...                   "categories": [{"id": 3, "name": "Dog"}]})
>>> bench.to_record(bench.examples[0], {"boxes": [[0, 0, 4, 2]],
...                 "labels": ["dog "]}, ".")["detections"]
[{'category_id': 3, 'bbox': [0.0, 0.0, 4.0, 2.0], 'score': 1.0}]
"""

from keras_uio.evaluation.coco import CocoBenchmark
from keras_uio.evaluation.coco import rank_score
from keras_uio.evaluation.coco import xyxy_to_xywh
from keras_uio.evaluation.files import field
from keras_uio.evaluation.files import prediction_record


def category_ids(data, what):
    """`{normalised name: category id}` of a COCO file's categories."""
    ids = {}
    for k, category in enumerate(data["categories"]):
        where = f"{what} categories[{k}]"
        name = str(field(category, "name", where)).strip().lower()
        ids[name] = field(category, "id", where)
    return ids


class DetectionBenchmark(CocoBenchmark):
    """COCO object detection: `pycocotools` box AP / AR.

    Metrics: `AP` (IoU 0.50:0.95), `AP50`, `AP75`, `AP_small`,
    `AP_medium`, `AP_large`, `AR1`, `AR10`, `AR100`, `AR_small`,
    `AR_medium`, `AR_large` (`null` where COCOeval reports -1: no such
    objects), `num_images`, `unmatched_labels` (boxes whose label names
    no category).
    """

    task = "object_detection"
    iou_type = "bbox"
    results_file = "detection_results.json"
    what = "COCO instances file"

    def __init__(self, examples, source, data):
        super().__init__(examples, source, data)
        self.category_ids = category_ids(data, source)

    def to_record(self, example, result, out_dir):
        boxes = result.get("boxes")
        boxes = [] if boxes is None else list(boxes)
        labels = list(result.get("labels") or [""] * len(boxes))
        detections, unmatched = [], 0
        for rank, (box, label) in enumerate(zip(boxes, labels)):
            category = self.category_ids.get(str(label).strip().lower())
            if category is None:
                unmatched += 1
                continue
            detections.append(
                {
                    "category_id": category,
                    "bbox": xyxy_to_xywh(box),
                    "score": rank_score(rank),
                }
            )
        return prediction_record(
            example,
            result,
            image_id=example["image_id"],
            detections=detections,
            unmatched_labels=unmatched,
        )

    def score(self, records, out_dir):
        results = [
            dict(d, image_id=r["image_id"]) for r in records for d in r["detections"]
        ]
        metrics = self.score_coco(results, records, out_dir, self.iou_type)
        metrics["unmatched_labels"] = sum(r["unmatched_labels"] for r in records)
        return metrics
