"""Image generation tasks: text-to-image, inpainting, segmentation-to-image."""

import numpy as np
import pytest
from helpers_tasks import image
from helpers_tasks import through_model_frame

from keras_uio.tasks import get_task


def test_text_to_image():
    task = get_task("text_to_image")
    inputs, meta = task.encode_inputs(description="a red square")
    assert set(inputs) == {"prompt"} and meta["image_size"] is None
    out = np.random.default_rng(0).uniform(size=(256, 256, 3))
    r = task.decode(None, out, meta, image_codes=np.arange(256))
    assert r["image"].shape == (256, 256, 3) and r["image_codes"].shape == (256,)
    _, meta = task.encode_inputs(description="a red square", image_size=(128, 256))
    assert task.decode(None, out, meta)["image"].shape == (128, 256, 3)
    target = np.full((64, 32, 3), 200, np.uint8)
    ex = task.encode_example({"description": "grey", "target_image": target})
    assert set(ex) == {"prompt", "target_image"}
    np.testing.assert_allclose(ex["target_image"], 200 / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="image_size"):
        task.encode_inputs(description="x", image_size=(0, 5))
    with pytest.raises(ValueError, match="unknown inputs"):
        task.encode_inputs(description="x", image=image())


def test_inpainting():
    task = get_task("inpainting")
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    inputs, meta = task.encode_inputs(
        image=img, region=[10, 20, 60, 80], replace_with="cat"
    )
    assert inputs["image"] is img
    np.testing.assert_array_equal(inputs["mask_region"], [10, 20, 60, 80])
    assert inputs["prompt"].endswith(' cat " ?')
    ex = task.encode_example(
        {"image": img, "region": [10, 20, 60, 80], "replace_with": "cat"}
    )
    np.testing.assert_allclose(ex["target_image"], img / 255.0, rtol=1e-6)
    r = task.decode(None, through_model_frame(ex["target_image"]), meta)
    assert r["image"].shape == (120, 160, 3)
    with pytest.raises(ValueError, match="replace_with"):
        task.encode_inputs(image=img, region=[10, 20, 60, 80])
    with pytest.raises(ValueError, match="input image's size"):
        task.encode_example(
            {
                "image": img,
                "region": [10, 20, 60, 80],
                "replace_with": "cat",
                "target_image": np.zeros((5, 5, 3)),
            }
        )


def test_segmentation_to_image_palettes():
    masks = np.zeros((2, 40, 50), bool)
    masks[0, :10] = True
    masks[1, 20:] = True
    task = get_task("segmentation_to_image")
    inputs, meta = task.encode_inputs(masks=masks, labels=["Sky", "grass"])
    assert inputs["prompt"] == (
        'What is the complete image? Segmentation color: " sky : red , grass : lime "'
    )
    assert inputs["image"].shape == (40, 50, 3)
    assert inputs["image"][0, 0].tolist() == [255, 0, 0]
    assert inputs["image"][30, 0].tolist() == [0, 255, 0]
    assert meta["image_size"] == (40, 50)
    orig = get_task("segmentation_to_image", original_palette=True)
    inputs, _ = orig.encode_inputs(masks=masks, labels=["Sky", "grass"])
    assert inputs["prompt"].endswith('" sky : white , grass : red "')
    assert inputs["image"][0, 0].tolist() == [255, 0, 0]
    r = task.decode(None, np.zeros((256, 256, 3)), meta)
    assert r["image"].shape == (40, 50, 3)
    ex = task.encode_example(
        {
            "masks": masks[0],
            "labels": "sky",
            "target_image": np.zeros((40, 50, 3), np.uint8),
        }
    )
    assert set(ex) == {"prompt", "image", "target_image"}
    with pytest.raises(ValueError, match="same length"):
        task.encode_inputs(masks=masks, labels=["sky"])
    with pytest.raises(ValueError, match="at least one"):
        task.encode_inputs(masks=np.zeros((0, 4, 4)), labels=[])
