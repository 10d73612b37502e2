"""Depth, surface normals, segmentation: label images out."""

import numpy as np
import pytest
from helpers_tasks import image
from helpers_tasks import through_model_frame

from keras_uio.tasks import get_task
from keras_uio.tasks.segmentation import INSTANCE_COLORS

SIZE = (120, 200)


def test_depth_round_trip():
    h, w = SIZE
    depth = np.tile(np.linspace(0.5, 8.0, w), (h, 1))
    task = get_task("depth", max_depth=10.0, interpolation="bilinear")
    ex = task.encode_example({"image": image(h, w), "depth": depth})
    assert set(ex) == {"prompt", "image", "target_image"}
    assert ex["target_image"].shape == (h, w, 3)
    _, meta = task.encode_inputs(image=image(h, w))
    r = task.decode(None, through_model_frame(ex["target_image"]), meta)
    assert r["depth"].shape == SIZE and r["depth"].dtype == np.float32
    assert np.abs(r["depth"] - depth).max() < 10.0 * 0.02  # < 2 % of range
    assert r["raw_image"].shape == (256, 256, 3)
    assert r["image"].shape == (h, w, 3) and r["errors"] == []
    # `meta` can carry another scale; nearest resize (default) works too
    r2 = get_task("depth").decode(
        None, through_model_frame(ex["target_image"]), dict(meta, max_depth=5)
    )
    assert np.abs(r2["depth"] * 2 - depth).max() < 0.5


def test_depth_validation():
    task = get_task("depth")
    with pytest.raises(ValueError, match=r"depth.*\(120, 200\)"):
        task.encode_example({"image": image(*SIZE), "depth": np.zeros((5, 5))})
    _, meta = task.encode_inputs(image=image(*SIZE))
    with pytest.raises(ValueError, match="postprocess_output_image"):
        task.decode(None, -np.ones((256, 256, 3), np.float32), meta)
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        task.decode(None, np.zeros((1, 256, 256, 3), np.float32), meta)
    with pytest.raises(ValueError, match="square"):
        task.decode(None, np.zeros((100, 256, 3), np.float32), meta)
    with pytest.raises(ValueError, match="needs the generated"):
        task.decode(None, None, meta)
    with pytest.raises(ValueError, match="max_depth"):
        get_task("depth", max_depth=0)
    # uint8 output and output already at input size are accepted
    r = task.decode(None, np.full(SIZE + (3,), 255, np.uint8), meta)
    np.testing.assert_allclose(r["depth"], 10.0)


def test_normals_round_trip():
    h, w = SIZE
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    normals = np.stack([xx - 0.5, yy - 0.3, np.ones_like(xx)], -1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    task = get_task("surface_normals", interpolation="bilinear")
    ex = task.encode_example({"image": image(h, w), "normals": normals})
    _, meta = task.encode_inputs(image=image(h, w))
    r = task.decode(None, through_model_frame(ex["target_image"]), meta)
    n = r["normals"]
    assert n.shape == (h, w, 3)
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-5)
    assert np.degrees(np.arccos(np.clip((n * normals).sum(-1), -1, 1))).max() < 3
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        task.encode_example({"image": image(h, w), "normals": normals[..., :2]})


def _instances(n, h=120, w=200):
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        r, c = divmod(i, 4)
        masks[i, 10 + 50 * r : 50 + 50 * r, 10 + 45 * c : 45 + 45 * c] = True
    return masks


@pytest.mark.parametrize("mode,n", [("coarse_color", 4), ("palette", 8)])
def test_segmentation_round_trip(mode, n):
    masks = _instances(n)
    task = get_task("segmentation", mode=mode)
    ex = task.encode_example(
        {"image": image(*SIZE), "object_name": "cup", "masks": masks}
    )
    _, meta = task.encode_inputs(image=image(*SIZE), object_name="cup")
    r = task.decode(None, through_model_frame(ex["target_image"]), meta)
    assert r["masks"].shape == (n,) + SIZE and r["masks"].dtype == bool
    assert r["labels"] == ["cup"] * n
    for got, want in zip(r["masks"], masks):
        assert (got & want).sum() / (got | want).sum() > 0.9


def test_segmentation_blurred_grey_counts_as_first_instance():
    out = np.zeros((256, 256, 3), np.float32)
    out[20:60, 20:60] = 0.6  # grey, as the VQ-GAN blurs white
    out[100:140, 100:140] = [0.9, 0.2, 0.1]  # reddish
    r = get_task("segmentation").decode(None, out, {"image_size": (256, 256)})
    assert r["colors"] == ["white", "red"]
    assert r["masks"][0].sum() == 1600 and r["masks"][1].sum() == 1600


def test_segmentation_empty_and_noise():
    task = get_task("segmentation")
    _, meta = task.encode_inputs(image=image(*SIZE), object_name="cup")
    out = np.zeros((256, 256, 3), np.float32)
    out[5, 5] = 1.0  # a single pixel: dropped
    r = task.decode(None, out, meta)
    assert r["masks"].shape == (0,) + SIZE and r["colors"] == []
    ex = task.encode_example({"image": image(*SIZE), "object_name": "cup", "masks": []})
    assert ex["target_image"].max() == 0
    with pytest.raises(ValueError, match="At most"):
        task.encode_example(
            {
                "image": image(*SIZE),
                "object_name": "cup",
                "masks": np.zeros((len(INSTANCE_COLORS) + 1,) + SIZE, bool),
            }
        )
    with pytest.raises(ValueError, match="mode"):
        get_task("segmentation", mode="kmeans")
