"""Keypoints: two stages, 17 joints per person box."""

import numpy as np
import pytest
from helpers_tasks import IDS
from helpers_tasks import VOCAB
from helpers_tasks import detokenize
from helpers_tasks import image

from keras_uio.tasks import get_task

SIZE = (480, 640)
PERSON = [1.0, 112.0, 266.0, 470.0]
BIN = max(SIZE) / 1000


def joints(n=17, vis=2, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform([1, 112], [266, 479], (n, 2))
    return pts, [IDS[str(vis + 1)]] * n


def ids_for(points, vis_ids):
    out = []
    for p, v in zip(points, vis_ids):
        out += VOCAB.point_to_ids(p, SIZE) + [v]
    return out


@pytest.fixture
def task():
    """The lenient reader; the original's is tested in test_runner_parity."""
    return get_task("keypoints", detokenize=detokenize, parser="lenient")


def test_two_stages(task):
    inputs, meta = task.encode_person_inputs(image(*SIZE))
    assert inputs["prompt"] == 'Which region does the text " person " describe ?'
    people = task.decode_people(
        VOCAB.box_to_ids(PERSON, SIZE)
        + VOCAB.box_to_ids([300, 50, 400, 300], SIZE)
        + [1],
        meta,
    )
    assert people["boxes"].shape == (2, 4)
    results = []
    for box in people["boxes"]:
        inputs, meta = task.encode_inputs(image=image(*SIZE), region=box)
        assert inputs["prompt"].startswith(
            'Find the human joints in the region " <extra_id_'
        )
        pts, vis = joints()
        results.append(task.decode(ids_for(pts, vis) + [1], meta=meta))
    stacked = task.stack_people(results)
    assert stacked.shape == (2, 17, 3)
    assert task.stack_people([]).shape == (0, 17, 3)
    np.testing.assert_allclose(results[0]["region"], people["boxes"][0])


def test_well_formed(task):
    pts, vis = joints()
    vis[3] = IDS["2"]  # occluded -> v = 1
    r = task.decode(ids_for(pts, vis) + [1], meta={"image_size": SIZE})
    assert r["valid"] and r["errors"] == []
    kp = r["keypoints"]
    assert kp.shape == (17, 3)
    np.testing.assert_allclose(kp[:, :2], pts, atol=BIN)
    assert kp[3, 2] == 1 and (np.delete(kp[:, 2], 3) == 2).all()


def test_invisible_marker(task):
    pts, vis = joints()
    ids = ids_for(pts, vis)
    m = VOCAB.invisible_point_id
    ids[0:3] = [m, m, IDS["1"]]  # joint 0 not labelled
    r = task.decode(ids, meta={"image_size": SIZE})
    assert r["valid"]
    assert np.isnan(r["keypoints"][0, :2]).all() and r["keypoints"][0, 2] == 0
    filled = get_task("keypoints", detokenize=detokenize).decode(
        ids, meta={"image_size": SIZE}
    )  # the original's reader
    assert filled["point_labels"][0] == 0 and not filled["invalid"]
    np.testing.assert_allclose(filled["points"][0], filled["points"][1:].mean(0))


def test_too_few_too_many_and_bad_visibility(task):
    pts, vis = joints()
    r = task.decode(ids_for(pts[:16], vis[:16]), meta={"image_size": SIZE})
    assert not r["valid"] and "16 points where 17" in r["errors"][0]
    assert np.isnan(r["keypoints"][16, :2]).all()
    assert r["visibility"][16] == -1 and r["keypoints"][16, 2] == 0
    pts18, vis18 = joints(18)
    r = task.decode(ids_for(pts18, vis18), meta={"image_size": SIZE})
    assert "extra points dropped" in r["errors"][0]
    assert r["keypoints"].shape == (17, 3)
    vis = list(vis)
    vis[5] = IDS["dog"]
    r = task.decode(ids_for(pts, vis), meta={"image_size": SIZE})
    assert r["visibility"][5] == -1
    assert any("unreadable visibility" in e for e in r["errors"])


def test_text_where_location_belongs_and_odd_counts(task):
    pts, vis = joints()
    ids = ids_for(pts, vis)
    ids = [IDS["dog"]] + ids[:4] + ids[5:]  # stray word, joint 1 lost a token
    r = task.decode(ids, meta={"image_size": SIZE})
    assert not r["valid"] and len(r["errors"]) >= 2
    assert r["keypoints"].shape == (17, 3)


def test_empty_output(task):
    r = task.decode([], meta={"image_size": SIZE})
    assert np.isnan(r["keypoints"][:, :2]).all()
    assert r["errors"] == [
        "0 points where 17 were expected; missing points are nan with visibility -1"
    ]


def test_needs_text_reader():
    with pytest.raises(ValueError, match="tokenizer"):
        get_task("keypoints").decode([32000, 32000, 103], meta={"image_size": SIZE})


@pytest.mark.parametrize("size", [(480, 640), (640, 427)])
def test_round_trip_within_one_bin(size):
    rng = np.random.default_rng(1)
    h, w = size
    kp = np.concatenate(
        [rng.uniform(0, 1, (17, 2)) * [w, h], rng.integers(0, 3, (17, 1))], 1
    )
    task = get_task("keypoints")
    ex = task.encode_example(
        {"image": image(h, w), "region": [0, 0, w, h], "keypoints": kp}
    )
    r = task.decode(ex["target_text"], meta={"image_size": size})
    assert r["valid"], r["errors"]
    np.testing.assert_array_equal(r["keypoints"][:, 2], kp[:, 2])
    seen = kp[:, 2] > 0
    err = np.abs(r["keypoints"][seen, :2] - kp[seen, :2])
    assert np.all(err <= max(size) / 1000 + 1e-9)
    # the original puts unlabelled joints at the mean of the labelled ones
    np.testing.assert_allclose(
        r["keypoints"][~seen, :2],
        np.tile(r["keypoints"][seen, :2].mean(0), (int((~seen).sum()), 1)),
    )
    with pytest.raises(ValueError, match=r"\[17, 3\]"):
        task.encode_example(
            {"image": image(h, w), "region": [0, 0, 1, 1], "keypoints": kp[:5]}
        )
