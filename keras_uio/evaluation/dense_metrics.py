"""Per-pixel metrics: depth errors, surface-normal angles, mask IoU.

NumPy only (no reference library is standard for these); the formulas
are the usual ones of the NYU Depth v2 literature (Eigen et al. 2014 for
depth, Fouhey et al. 2013 / Eigen & Fergus 2015 for normals).

Example:
>>> import numpy as np
>>> truth = np.array([[1.0, 2.0], [4.0, 0.0]])   # 0: no measurement
>>> errors = depth_errors(np.array([[1.0, 2.0], [5.0, 3.0]]), truth)
>>> round(errors["rmse"], 4), round(errors["abs_rel"], 4), errors["valid_pixels"]
(0.5774, 0.0833, 3)
>>> mask_iou(np.eye(2, dtype=bool), np.ones((2, 2), bool))
(2, 4, 0.5)
"""

import numpy as np

ANGLE_THRESHOLDS = (11.25, 22.5, 30.0)
HISTOGRAM_BINS = 180  # 1-degree bins of the angular error, 0..180


def resize_map(values, shape):
    """A `[h, w]` or `[h, w, c]` float map resized (bilinear) to `shape`."""
    from PIL import Image

    values = np.asarray(values, np.float32)
    if values.shape[:2] == tuple(shape):
        return values
    size = (int(shape[1]), int(shape[0]))
    if values.ndim == 2:
        return np.asarray(Image.fromarray(values).resize(size, Image.BILINEAR))
    return np.stack(
        [resize_map(values[..., c], shape) for c in range(values.shape[-1])], -1
    )


def depth_errors(predicted, truth, min_depth=1e-3, max_depth=10.0):
    """RMSE, mean absolute relative error and delta < 1.25 of one map.

    Pixels count where the true depth is finite and in `(min_depth,
    max_depth]`; predictions are clipped to that range first (the usual
    NYU protocol). The prediction is resized to the truth's size.

    Returns:
        `{"rmse", "abs_rel", "delta1", "valid_pixels"}`; the errors are
        `None` when no pixel is valid.
    """
    truth = np.asarray(truth, np.float64)
    predicted = resize_map(predicted, truth.shape).astype(np.float64)
    valid = np.isfinite(truth) & (truth > min_depth) & (truth <= max_depth)
    count = int(valid.sum())
    if not count:
        return {"rmse": None, "abs_rel": None, "delta1": None, "valid_pixels": 0}
    p = np.clip(np.nan_to_num(predicted[valid], nan=min_depth), min_depth, max_depth)
    t = truth[valid]
    ratio = np.maximum(p / t, t / p)
    return {
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "abs_rel": float(np.mean(np.abs(p - t) / t)),
        "delta1": float(np.mean(ratio < 1.25)),
        "valid_pixels": count,
    }


def normal_angles(predicted, truth, min_norm=0.5):
    """Angles in degrees between predicted and true normals at the valid
    pixels (true vector length >= `min_norm`; zero vectors mark missing
    labels). A zero predicted vector is 90 degrees from anything."""
    truth = np.asarray(truth, np.float64)
    predicted = resize_map(predicted, truth.shape[:2]).astype(np.float64)
    t_norm = np.linalg.norm(truth, axis=-1)
    valid = t_norm >= min_norm
    p = predicted[valid]
    p_norm = np.linalg.norm(p, axis=-1)
    cosine = (p * truth[valid]).sum(-1) / (np.maximum(p_norm, 1e-12) * t_norm[valid])
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def angle_summary(angles):
    """What `normal_metrics` needs of one image's angles: their sum,
    count, counts under each threshold and a 1-degree histogram."""
    angles = np.asarray(angles, np.float64)
    histogram, _ = np.histogram(angles, bins=HISTOGRAM_BINS, range=(0, 180))
    return {
        "sum": float(angles.sum()),
        "count": int(angles.size),
        "within": [int((angles < t).sum()) for t in ANGLE_THRESHOLDS],
        "histogram": histogram.tolist(),
    }


def _histogram_median(histogram):
    """The median of 1-degree binned values, linear within its bin."""
    histogram = np.asarray(histogram, np.float64)
    half = histogram.sum() / 2.0
    below = np.cumsum(histogram)
    k = int(np.searchsorted(below, half))
    before = below[k - 1] if k else 0.0
    return float(k + (half - before) / max(histogram[k], 1.0))


def normal_metrics(summaries):
    """Mean and median angular error (degrees) and the share of pixels
    within 11.25, 22.5 and 30 degrees, pooled over every pixel of every
    image (`angle_summary` of each). The median is read from 1-degree
    bins (linear within the bin).

    Example:
    >>> s = angle_summary([5.0, 10.0, 40.0])
    >>> m = normal_metrics([s])
    >>> round(m["mean_angle_error"], 4), round(m["within_11.25"], 4)
    (18.3333, 0.6667)
    """
    count = sum(s["count"] for s in summaries)
    if not count:
        return {
            "mean_angle_error": None,
            "median_angle_error": None,
            **{f"within_{t}": None for t in ANGLE_THRESHOLDS},
        }
    within = np.sum([s["within"] for s in summaries], axis=0)
    histogram = np.sum([s["histogram"] for s in summaries], axis=0)
    metrics = {
        "mean_angle_error": sum(s["sum"] for s in summaries) / count,
        "median_angle_error": _histogram_median(histogram),
    }
    for t, n in zip(ANGLE_THRESHOLDS, within):
        metrics[f"within_{t}"] = float(n / count)
    return metrics


def mask_iou(predicted, truth):
    """`(intersection, union, IoU)` of two boolean masks (IoU 1.0 when
    both are empty)."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if predicted.shape != truth.shape:
        raise ValueError(
            f"Mask shapes differ: predicted {predicted.shape}, truth {truth.shape}."
        )
    inter = int(np.logical_and(predicted, truth).sum())
    union = int(np.logical_or(predicted, truth).sum())
    return inter, union, (inter / union if union else 1.0)
