"""Box and keypoint AP through `pycocotools.COCOeval`, on hand-made COCO
files whose AP follows by reasoning.

COCOeval interpolates precision at the 101 recall points 0, 0.01, ..., 1:
with one of two objects found first and nothing else, precision is 1 up
to recall 0.5 (51 points) and 0 after, so AP = 51 / 101.
"""

import numpy as np
import pytest

from keras_uio.evaluation.coco import coco_ap
from keras_uio.evaluation.detection import DetectionBenchmark
from keras_uio.evaluation.keypoints import KeypointsBenchmark

HALF_FOUND = 51 / 101
# Two 100x100 images, one 40x40 cat each (area 1600: a "medium" object).
BOXES = {1: [10.0, 10.0, 50.0, 50.0], 2: [30.0, 20.0, 70.0, 60.0]}


def _images():
    return [
        {"id": i, "file_name": f"{i}.png", "width": 100, "height": 100} for i in BOXES
    ]


def _instances():
    return {
        "images": _images(),
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {
                "id": i,
                "image_id": i,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": 1600.0,
            }
            for i, (x1, y1, x2, y2) in BOXES.items()
        ],
    }


def _detection_score(outputs):
    """Scores `{image_id: predict_tasks result}` with DetectionBenchmark."""
    data = _instances()
    examples = [
        {"id": str(i), "image": f"{i}.png", "inputs": {}, "image_id": i} for i in BOXES
    ]
    bench = DetectionBenchmark(examples, "hand-made", data)
    records = [bench.to_record(ex, outputs[ex["image_id"]], ".") for ex in examples]
    return records, bench


def _detect(boxes, labels):
    return {
        "boxes": np.asarray(boxes, float).reshape(-1, 4),
        "labels": labels,
        "errors": [],
    }


def test_perfect_boxes_score_one(tmp_path):
    records, bench = _detection_score(
        {i: _detect([b], ["cat"]) for i, b in BOXES.items()}
    )
    metrics = bench.score(records, str(tmp_path))
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP75"] == pytest.approx(1.0)
    assert metrics["AP_medium"] == pytest.approx(1.0)
    # No small or large objects: COCOeval's -1 is reported as None.
    assert metrics["AP_small"] is None and metrics["AP_large"] is None
    assert (tmp_path / "detection_results.json").exists()
    assert "Average Precision" in (tmp_path / "coco_eval.txt").read_text()


def test_one_of_two_missed(tmp_path):
    records, bench = _detection_score(
        {1: _detect([BOXES[1]], ["Cat "]), 2: _detect([], [])}
    )
    metrics = bench.score(records, str(tmp_path))
    assert metrics["AP"] == pytest.approx(HALF_FOUND)
    assert metrics["AR100"] == pytest.approx(0.5)


def test_output_order_ranks_boxes(tmp_path):
    # Image 1 writes a false cat first, then the true one; image 2 finds
    # its cat. By score (1, 1, then 0.5): FP, TP, TP -> precision 0 at
    # recall 0, 1/2 at recall 1/2, 2/3 at recall 1; interpolated (the best
    # precision at any higher recall) 2/3 everywhere.
    far = [80.0, 80.0, 95.0, 95.0]
    records, bench = _detection_score(
        {
            1: _detect([far, BOXES[1], far], ["cat", "cat", "zebra"]),
            2: _detect([BOXES[2]], ["cat"]),
        }
    )
    metrics = bench.score(records, str(tmp_path))
    assert metrics["AP"] == pytest.approx(2 / 3)
    assert metrics["unmatched_labels"] == 1


def test_no_predictions_scores_zero(tmp_path):
    records, bench = _detection_score({i: _detect([], []) for i in BOXES})
    assert bench.score(records, str(tmp_path))["AP"] == 0.0


def test_only_evaluated_images_count():
    # Scoring image 1 alone: its one cat found, AP 1 (image 2 left out).
    results = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 1.0}
    ]
    metrics, _ = coco_ap(_instances(), results, "bbox", [1])
    assert metrics["AP"] == pytest.approx(1.0)
    metrics, _ = coco_ap(_instances(), results, "bbox", [1, 2])
    assert metrics["AP"] == pytest.approx(HALF_FOUND)


# ------------------------------------------------------------- keypoints
def _person(box):
    """17 visible joints spread inside `box`, as `[17, 3]` (x, y, 2)."""
    x1, y1, x2, y2 = box
    t = np.linspace(0.1, 0.9, 17)
    return np.stack(
        [x1 + t * (x2 - x1), y1 + t[::-1] * (y2 - y1), np.full(17, 2.0)], -1
    )


def _keypoints_benchmark():
    data = {
        "images": _images(),
        "categories": [
            {"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)]}
        ],
        "annotations": [
            {
                "id": i,
                "image_id": i,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": 1600.0,
                "num_keypoints": 17,
                "keypoints": _person((x1, y1, x2, y2)).reshape(-1).tolist(),
            }
            for i, (x1, y1, x2, y2) in BOXES.items()
        ],
    }
    examples = [
        {"id": str(i), "image": f"{i}.png", "inputs": {}, "image_id": i} for i in BOXES
    ]
    return KeypointsBenchmark(examples, "hand-made", data)


def _keypoint_score(tmp_path, people):
    bench = _keypoints_benchmark()
    records = [
        bench.to_record(ex, {"keypoints": people[ex["image_id"]]}, ".")
        for ex in bench.examples
    ]
    return bench.score(records, str(tmp_path))


def test_perfect_keypoints_score_one(tmp_path):
    metrics = _keypoint_score(tmp_path, {i: _person(b)[None] for i, b in BOXES.items()})
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AP_medium"] == pytest.approx(1.0)
    assert metrics["AP_large"] is None
    assert metrics["num_people"] == 2
    assert (tmp_path / "keypoints_results.json").exists()


def test_one_person_missed(tmp_path):
    metrics = _keypoint_score(
        tmp_path, {1: _person(BOXES[1])[None], 2: np.zeros((0, 17, 3))}
    )
    assert metrics["AP"] == pytest.approx(HALF_FOUND)


def test_keypoints_far_off_score_zero(tmp_path):
    # Joints with no position (nan) are written at (0, 0): OKS ~ 0.
    lost = np.full((1, 17, 3), np.nan)
    metrics = _keypoint_score(tmp_path, {1: lost, 2: lost})
    assert metrics["AP"] == pytest.approx(0.0)
