"""Depth errors, normal angles, mask IoU and referring-expression accuracy
on hand-made maps with known values."""

import numpy as np
import pytest

from keras_uio.evaluation import dense_metrics as dm
from keras_uio.evaluation.referring_expression import box_iou
from keras_uio.evaluation.referring_expression import refexp_accuracy
from keras_uio.evaluation.segmentation import SegmentationBenchmark


def test_depth_errors_on_valid_pixels():
    truth = np.array([[2.0, 2.0], [4.0, np.nan]])
    predicted = np.array([[2.0, 3.0], [2.0, 7.0]])
    errors = dm.depth_errors(predicted, truth)
    assert errors["valid_pixels"] == 3
    assert errors["rmse"] == pytest.approx(np.sqrt((0 + 1 + 4) / 3))
    assert errors["abs_rel"] == pytest.approx((0 + 0.5 + 0.5) / 3)
    # ratios 1, 1.5, 2: one under 1.25
    assert errors["delta1"] == pytest.approx(1 / 3)


def test_depth_errors_clip_resize_and_empty():
    truth = np.full((4, 4), 5.0)
    errors = dm.depth_errors(np.full((2, 2), 50.0), truth)  # clipped to 10
    assert errors["rmse"] == pytest.approx(5.0)
    empty = dm.depth_errors(np.ones((2, 2)), np.zeros((2, 2)))
    assert empty == {"rmse": None, "abs_rel": None, "delta1": None, "valid_pixels": 0}


def test_normal_angles_and_pooled_metrics():
    truth = np.zeros((1, 4, 3))
    truth[..., 2] = 1.0
    truth[0, 3] = 0.0  # unlabelled
    predicted = np.array([[[0, 0, 2.0], [1, 0, 0], [0, 0, -1], [1, 1, 1]]])
    angles = dm.normal_angles(predicted, truth)
    np.testing.assert_allclose(angles, [0.0, 90.0, 180.0], atol=1e-6)
    metrics = dm.normal_metrics([dm.angle_summary(angles), dm.angle_summary([10.0])])
    assert metrics["mean_angle_error"] == pytest.approx(280 / 4)
    assert metrics["within_11.25"] == pytest.approx(2 / 4)
    assert metrics["within_30.0"] == pytest.approx(2 / 4)
    # pooled 0, 10, 90, 180: the median lies between 10 and 90, read from
    # 1-degree bins.
    assert 10.0 <= metrics["median_angle_error"] <= 91.0


def test_mask_iou():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True
    b[1:3] = True
    assert dm.mask_iou(a, b) == (4, 12, pytest.approx(1 / 3))
    assert dm.mask_iou(~a & a, ~b & b)[2] == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        dm.mask_iou(a, b[:2])


def test_segmentation_benchmark_iou(tmp_path):
    data = {
        "images": [{"id": 1, "width": 4, "height": 4}],
        "categories": [{"id": 5, "name": "cat"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 5,
                "iscrowd": 0,
                "segmentation": [[0, 0, 4, 0, 4, 2, 0, 2]],
            }
        ],
    }
    example = {
        "id": "1_5",
        "image": "a.png",
        "inputs": {"object_name": "cat"},
        "image_id": 1,
        "category_id": 5,
    }
    bench = SegmentationBenchmark([example], "hand-made", data)
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 1:3] = True  # two instances: union is rows 1-2
    record = bench.to_record(example, {"masks": masks}, str(tmp_path))
    assert record["intersection"] == 4 and record["union"] == 12
    metrics = bench.score([record], str(tmp_path))
    assert metrics["mean_iou"] == pytest.approx(1 / 3)
    assert metrics["overall_iou"] == pytest.approx(1 / 3)
    assert (tmp_path / "segmentation_results.json").exists()


def test_refexp_accuracy_at_half_iou():
    truth = [[0, 0, 10, 10]] * 4
    predicted = [
        [0, 0, 10, 10],  # IoU 1
        [0, 0, 10, 5],  # IoU 0.5: counts
        [0, 0, 10, 4],  # IoU 0.4
        None,
    ]  # no box
    assert box_iou(predicted[1], truth[1]) == pytest.approx(0.5)
    assert refexp_accuracy(predicted, truth) == pytest.approx(0.5)
