"""A real photo with real annotations: imgaug's quokka.

`imgaug==0.4.0` (PyPI) ships `quokka.jpg`, `quokka_annotations.json` (a box
and 7 keypoints) and a half-resolution depth map; the files are read directly
(imgaug's own code breaks on numpy 2; installing it with `--no-deps` is
enough). Skipped when imgaug is not installed.
"""

import importlib.util
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from keras_uio.preprocessing import dense
from keras_uio.preprocessing import images as ops
from keras_uio.vocab import Vocabulary

_spec = importlib.util.find_spec("imgaug")
if _spec is None:
    pytest.skip("imgaug==0.4.0 not installed", allow_module_level=True)
ROOT = pathlib.Path(_spec.origin).parent


@pytest.fixture(scope="module")
def quokka():
    image = np.asarray(Image.open(ROOT / "quokka.jpg").convert("RGB"))
    ann = json.loads((ROOT / "quokka_annotations.json").read_text())
    depth = np.asarray(Image.open(ROOT / "quokka_depth_map_halfres.png"))
    return image, ann, depth


def test_quokka_boxes_and_keypoints_round_trip(quokka):
    image, ann, _ = quokka
    h, w = image.shape[:2]
    v = Vocabulary()
    enc, mask = ops.preprocess_image(image)
    assert enc.shape == (384, 384, 3)
    # Patches cover exactly the scaled image.
    sh, sw = ops.scaled_size(h, w, 384)
    assert mask.reshape(24, 24).sum(0).max() == -(-sh // 16)
    bin_size = max(h, w) / 1000
    box = ann["bounding_boxes"][0]
    xyxy = [box["x1"], box["y1"], box["x2"], box["y2"]]
    text_ids = [70, 71]  # stand-ins for the label "animal"
    ids = v.box_to_ids(xyxy, (h, w)) + text_ids + [1]
    parsed = v.ids_to_boxes(ids, (h, w))
    assert parsed.errors == [] and parsed.label_ids == [text_ids]
    assert np.all(np.abs(parsed.boxes[0] - xyxy) <= bin_size * 1.0011)
    points = np.array([[k["x"], k["y"]] for k in ann["keypoints"]], float)
    ids = []
    for p in points:
        ids += v.point_to_ids(p, (h, w)) + [72]
    back = v.ids_to_points(ids, (h, w))
    assert back.errors == [] and len(back.boxes) == len(points)
    assert np.all(np.abs(back.boxes - points) <= bin_size * 1.0011)
    # Box as prompt text, the original's way.
    assert v.box_to_text(xyxy, (h, w)).count("<extra_id_") == 4


def test_quokka_depth_and_undo(quokka):
    image, _, depth = quokka
    metric = depth.astype(np.float64) / 255 * 10.0 + 0.1
    gray, scale = dense.depth_to_image(metric)
    np.testing.assert_allclose(dense.image_to_depth(gray, scale), metric, rtol=1e-5)
    target, tmask = ops.preprocess_target_image(gray)
    assert target.min() >= -1 and target.max() <= 1 and tmask.sum() > 0
    out = ops.undo_image_preprocessing(
        ops.postprocess_output_image(target), metric.shape
    )
    assert out.shape == metric.shape + (3,)
    back = dense.image_to_depth(out, scale)
    # Down- then up-sampled: close on average.
    assert np.abs(back - metric).mean() < 0.1 * scale
