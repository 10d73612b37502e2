"""Draw a task result on its input image (PIL), and make results JSON-safe.

Example:

```python
import numpy as np
from keras_uio.tasks.visualize import draw_result
image = np.zeros((40, 60, 3), np.uint8)
result = {"task": "localization", "text": "", "errors": [],
          "boxes": np.array([[5.0, 5.0, 30.0, 20.0]]), "labels": ["cat"]}
draw_result(image, result).size  # (60, 40)
```
"""

import numpy as np
from PIL import Image
from PIL import ImageDraw

COLORS = [
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
]


def _uint8(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, -1)
    return image[..., :3]


def _panel(left, right):
    """Input and generated/dense output side by side."""
    right = Image.fromarray(_uint8(right)).resize(left.size)
    canvas = Image.new("RGB", (left.width * 2, left.height))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return canvas


def draw_result(image, result):
    """Returns a PIL image showing `result` (a task's `decode` output)."""
    base = Image.fromarray(_uint8(image)) if image is not None else None
    if base is None:
        base = Image.new("RGB", (256, 256))
    draw = ImageDraw.Draw(base)
    boxes = result.get("boxes")
    if boxes is None and result.get("box") is not None:
        boxes = [result["box"]]
    labels = result.get("labels") or []
    for i, box in enumerate(
        np.asarray(boxes if boxes is not None else []).reshape(-1, 4)
    ):
        color = COLORS[i % len(COLORS)]
        draw.rectangle([float(v) for v in box], outline=color, width=2)
        if i < len(labels):
            draw.text(
                (float(box[0]) + 2, float(box[1]) + 1), str(labels[i]), fill=color
            )
    points = result.get("keypoints")
    if points is not None:
        for person in np.asarray(points, float).reshape(-1, 17, 3):
            for x, y, visible in person:
                if np.isfinite(x) and np.isfinite(y) and visible > 0:
                    draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(255, 255, 0))
    masks = result.get("masks")
    if masks is None and result.get("mask") is not None:
        masks = [result["mask"]]
    if masks is not None and len(masks):
        layer = np.asarray(base).copy()
        for i, mask in enumerate(masks):
            mask = np.asarray(mask, bool)
            if mask.shape == layer.shape[:2]:
                layer[mask] = (
                    0.5 * layer[mask] + 0.5 * np.array(COLORS[i % 8])
                ).astype(np.uint8)
        base = Image.fromarray(layer)
    for key in ("image", "depth", "normals"):
        value = result.get(key)
        if value is None:
            continue
        value = np.asarray(value, float)
        if key == "depth":
            value = value / max(value.max(), 1e-6)
        elif key == "normals":
            value = (value + 1) / 2
        return _panel(base, value)
    return base


def to_json(value):
    """Arrays -> lists, NumPy scalars -> Python; large images are dropped."""
    if isinstance(value, dict):
        return {
            k: to_json(v)
            for k, v in value.items()
            if not (isinstance(v, np.ndarray) and v.ndim >= 2 and v.size > 4096)
        }
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
