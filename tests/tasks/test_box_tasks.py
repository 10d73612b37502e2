"""Detection, localisation, referring expressions: boxes out."""

import numpy as np
import pytest
from helpers_tasks import IDS
from helpers_tasks import VOCAB
from helpers_tasks import detokenize
from helpers_tasks import image
from helpers_tasks import words

from keras_uio.tasks import get_task

SIZE = (480, 640)
BOX = [226.56, 160.64, 476.16, 316.16]
BIN = max(SIZE) / 1000  # one location bin in pixels


def loc(box):
    return VOCAB.box_to_ids(box, SIZE)


@pytest.fixture
def det():
    """The lenient reader; the original's is tested in test_runner_parity."""
    task = get_task("object_detection", detokenize=detokenize, parser="lenient")
    return task, task.encode_inputs(image=image(*SIZE))[1]


def test_detection_well_formed_ids(det):
    task, meta = det
    ids = (
        loc(BOX)
        + words("bed")
        + loc([10, 20, 30, 40])
        + words("a dog")
        + [VOCAB.eos_id, 0, 0]
    )
    r = task.decode(ids, meta=meta)
    assert r["errors"] == []
    assert r["boxes"].shape == (2, 4) and r["boxes"].dtype == np.float64
    np.testing.assert_allclose(r["boxes"][0], BOX, atol=BIN)
    np.testing.assert_allclose(r["boxes"][1], [10, 20, 30, 40], atol=BIN)
    assert r["labels"] == ["bed", "a dog"]
    assert r["label_ids"] == [[IDS["bed"]], words("a dog")]
    assert r["token_ids"] == ids[:-3]
    assert r["text"].startswith("<extra_id_") or r["text"]


def test_detection_without_tokenizer_keeps_label_ids():
    task = get_task("object_detection")
    _, meta = task.encode_inputs(image=image(*SIZE))
    r = task.decode(loc(BOX) + [IDS["bed"], 1], meta=meta)
    assert r["labels"] is None and r["label_ids"] == [[IDS["bed"]]]
    assert r["text"] is None and len(r["boxes"]) == 1


def test_detection_odd_location_count(det):
    task, meta = det
    ids = loc(BOX)[:3] + words("bed") + loc(BOX) + words("dog")
    r = task.decode(ids, meta=meta)
    assert len(r["boxes"]) == 1 and r["labels"] == ["dog"]
    assert any("3 location token(s)" in e for e in r["errors"])


def test_detection_text_where_location_belongs(det):
    task, meta = det
    r = task.decode(words("a dog") + loc(BOX) + words("bed"), meta=meta)
    assert r["labels"] == ["bed"]
    assert any("where location tokens were expected" in e for e in r["errors"])
    r = task.decode(words("a dog"), meta=meta)
    assert r["boxes"].shape == (0, 4) and r["errors"]


def test_detection_corners_out_of_order(det):
    task, meta = det
    swapped = VOCAB.location_id(VOCAB.box_to_bins([300, 200, 100, 100], SIZE))
    r = task.decode(list(swapped) + words("bed") + loc(BOX) + words("dog"), meta=meta)
    assert r["labels"] == ["dog"] and len(r["boxes"]) == 1
    assert any("out of order" in e for e in r["errors"])


def test_detection_empty_output(det):
    task, meta = det
    for empty in ([], [1], "", None):
        r = task.decode(empty, meta=meta)
        assert r["boxes"].shape == (0, 4) and r["errors"] == []
        assert r["labels"] in ([], None)


def test_detection_from_text(det):
    task, meta = det
    text = (
        VOCAB.labels_to_text([BOX, [0, 0, 64, 48]], ["bed", "black dog"], SIZE)
        + " </s> <extra_id_400>"
    )
    r = task.decode(text, meta=meta)
    assert r["labels"] == ["bed", "black dog"] and r["errors"] == []
    assert r["token_ids"] is None
    # malformed text: odd count and a stray word
    r = task.decode("oops <extra_id_350> <extra_id_453> bed", meta=meta)
    assert len(r["boxes"]) == 0 and len(r["errors"]) == 3


def test_decode_needs_image_size():
    with pytest.raises(ValueError, match="image_size"):
        get_task("object_detection").decode("<extra_id_100>", meta={})


@pytest.mark.parametrize("size", [(480, 640), (640, 480), (37, 1000), (5, 5)])
def test_detection_round_trip_within_one_bin(size):
    rng = np.random.default_rng(0)
    h, w = size
    xy1 = rng.uniform(0, 0.5, (6, 2)) * [w, h]
    xy2 = xy1 + rng.uniform(0, 0.5, (6, 2)) * [w, h]
    boxes = np.concatenate([xy1, xy2], 1)
    labels = ["dog", "bed", "a", "black dog", "x", "person"]
    task = get_task("object_detection")
    ex = task.encode_example({"image": image(h, w), "boxes": boxes, "labels": labels})
    r = task.decode(ex["target_text"], meta={"image_size": size})
    assert r["labels"] == labels and r["errors"] == []
    bin_px = max(size) / 1000
    assert np.all(np.abs(r["boxes"] - boxes) <= bin_px + 1e-9)


def test_detection_example_validation():
    task = get_task("object_detection")
    with pytest.raises(ValueError, match="same length"):
        task.encode_example({"image": image(), "boxes": [BOX], "labels": ["a", "b"]})
    with pytest.raises(ValueError, match=r"boxes\[0\]"):
        task.encode_example(
            {"image": image(), "boxes": [[5, 5, 1, 1]], "labels": ["a"]}
        )
    ex = task.encode_example(
        {"image": image(), "boxes": np.zeros((0, 4)), "labels": []}
    )
    assert ex["target_text"] == ""


def test_localization_and_refexp():
    loc_task = get_task("localization")
    ex = loc_task.encode_example(
        {"image": image(*SIZE), "object_name": "bed", "boxes": [BOX, [0, 0, 10, 10]]}
    )
    # the paper's format (A.1.2): each box followed by the class name
    assert (
        ex["target_text"]
        == VOCAB.box_to_text(BOX, SIZE)
        + " bed "
        + (VOCAB.box_to_text([0, 0, 10, 10], SIZE))
        + " bed"
    )
    _, meta = loc_task.encode_inputs(image=image(*SIZE), object_name="bed")
    r = loc_task.decode(ex["target_text"], meta=meta)
    assert r["boxes"].shape == (2, 4) and r["labels"] == ["bed", "bed"]

    ref = get_task("referring_expression")
    ex = ref.encode_example(
        {"image": image(*SIZE), "expression": "the bed", "box": BOX}
    )
    r = ref.decode(ex["target_text"], meta={"image_size": SIZE})
    np.testing.assert_allclose(r["box"], BOX, atol=BIN)
    r = ref.decode("<extra_id_350> nothing", meta={"image_size": SIZE})
    assert r["box"] is None and "no box in the output" in r["errors"]


@pytest.mark.parametrize(
    "region, problem",
    [
        ([600, 10, 700, 50], "outside"),
        ([-5, 10, 100, 50], "outside"),
        ([10, 10, 10, 50], "no area"),
    ],
)
def test_regions_outside_the_image_or_empty_raise(region, problem):
    task = get_task("region_captioning")
    with pytest.raises(ValueError, match=f"`region`.*{problem}"):
        task.encode_inputs(image=image(*SIZE[::-1]), region=region)


def test_regions_are_clipped_only_when_asked():
    task = get_task("region_captioning", clip_regions=True)
    _, meta = task.encode_inputs(image=image(480, 640), region=[-5, 10, 700, 50])
    assert meta["region"].tolist() == [0, 10, 640, 50]
    with pytest.raises(ValueError, match="no area"):
        task.encode_inputs(image=image(480, 640), region=[650, 10, 700, 50])
