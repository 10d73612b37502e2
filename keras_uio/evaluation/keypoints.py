"""COCO keypoints: a COCO person-keypoints file, scored by OKS AP.

The annotation file is `person_keypoints_val2017.json`: COCO format whose
`"person"` category lists 17 `keypoints` and whose annotations carry
`keypoints` `[x1, y1, v1, ..., x17, y17, v17]`. One example per image;
the model runs in two stages (`predict_tasks` without a `region`: find
the people, then 17 joints per person). Each person becomes a COCO
keypoint result, ranked by its order in the output (`coco.rank_score`);
joints with no position are written at (0, 0) (OKS counts only the
joints the ground truth labels).

Predictions are written as `keypoints_results.json`, COCO results
(`[{"image_id", "category_id", "keypoints": [x, y, v, ...], "score"}]`),
and the `COCOeval` table as `coco_eval.txt`.

Example:
>>> import numpy as np
>>> bench = KeypointsBenchmark(
...     [{"id": "1", "image": "a.png", "inputs": {}, "image_id": 1}],
...     "hand-made", {"images": [{"id": 1}], "annotations": [],
...                   "categories": [{"id": 1, "name": "person"}]})
>>> points = np.full((1, 17, 3), np.nan); points[0, 0] = (5, 6, 2)
>>> record = bench.to_record(bench.examples[0], {"keypoints": points}, ".")
>>> record["people"][0]["keypoints"][:6]
[5.0, 6.0, 2.0, 0.0, 0.0, 0.0]
"""

import numpy as np

from keras_uio.errors import UserInputError
from keras_uio.evaluation.coco import CocoBenchmark
from keras_uio.evaluation.coco import rank_score
from keras_uio.evaluation.detection import category_ids
from keras_uio.evaluation.files import prediction_record


def coco_keypoints(points):
    """`[17, 3]` `(x, y, v)` with `nan` for unknown joints -> the flat
    COCO list, unknown joints at `(0, 0, 0)`."""
    points = np.asarray(points, np.float64).reshape(-1, 3).copy()
    unknown = ~np.isfinite(points).all(-1)
    points[unknown] = 0.0
    return [round(float(v), 2) for v in points.reshape(-1)]


class KeypointsBenchmark(CocoBenchmark):
    """COCO person keypoints: `pycocotools` OKS AP / AR.

    Metrics: `AP` (OKS 0.50:0.95), `AP50`, `AP75`, `AP_medium`,
    `AP_large`, `AR`, `AR50`, `AR75`, `AR_medium`, `AR_large`,
    `num_images`, `num_people` (people predicted).
    """

    task = "keypoints"
    results_file = "keypoints_results.json"
    what = "COCO keypoints file"

    def __init__(self, examples, source, data):
        super().__init__(examples, source, data)
        ids = category_ids(data, source)
        if "person" not in ids:
            raise UserInputError(
                f"{source} has no 'person' category: a COCO keypoints file "
                "(person_keypoints_*.json) is needed."
            )
        self.category_id = ids["person"]

    def to_record(self, example, result, out_dir):
        people = result.get("keypoints")
        people = np.zeros((0, 17, 3)) if people is None else np.asarray(people)
        return prediction_record(
            example,
            result,
            image_id=example["image_id"],
            people=[
                {"keypoints": coco_keypoints(p), "score": rank_score(k)}
                for k, p in enumerate(people)
            ],
        )

    def score(self, records, out_dir):
        results = [
            dict(p, image_id=r["image_id"], category_id=self.category_id)
            for r in records
            for p in r["people"]
        ]
        metrics = self.score_coco(results, records, out_dir, "keypoints")
        metrics["num_people"] = len(results)
        return metrics
