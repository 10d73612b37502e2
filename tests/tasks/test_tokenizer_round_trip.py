"""Text <-> ids through a real `UnifiedIOTokenizer` (tiny SentencePiece
model trained on the fly; the layout scales with its size)."""

import numpy as np
import pytest
from helpers_tasks import image

from keras_uio.models.unified_io.train_sentencepiece import train_sentencepiece
from keras_uio.models.unified_io.unified_io_tokenizer import UnifiedIOTokenizer
from keras_uio.tasks import get_task

SENTENCES = ["a black dog on a bed", "a person 1 2 3", "the cat sat"]


@pytest.fixture(scope="module")
def tokenizer():
    return UnifiedIOTokenizer(proto=train_sentencepiece(SENTENCES * 30, 40))


def test_detection_ids_round_trip(tokenizer):
    task = get_task("object_detection", tokenizer=tokenizer)
    assert task.vocab == tokenizer.vocab
    size = (300, 200)
    boxes = np.array([[10.0, 20.0, 150.0, 290.0], [0.0, 0.0, 50.0, 60.0]])
    ex = task.encode_example(
        {"image": image(*size), "boxes": boxes, "labels": ["black dog", "bed"]}
    )
    ids = np.asarray(tokenizer(ex["target_text"]))
    assert ids[-1] == 1  # EOS from the tokenizer
    _, meta = task.encode_inputs(image=image(*size))
    r = task.decode(ids, meta=meta)
    assert r["errors"] == [] and r["labels"] == ["black dog", "bed"]
    assert np.all(np.abs(r["boxes"] - boxes) <= max(size) / 1000 + 1e-9)
    assert "<extra_id_" in r["text"]


def test_keypoint_ids_round_trip(tokenizer):
    task = get_task("keypoints", tokenizer=tokenizer)
    size = (100, 120)
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0, 100, (17, 2)), rng.integers(0, 3, (17, 1))], 1)
    ex = task.encode_example(
        {"image": image(*size), "region": [0, 0, 120, 100], "keypoints": kp}
    )
    r = task.decode(tokenizer(ex["target_text"]), meta={"image_size": size})
    assert r["valid"], r["errors"]
    np.testing.assert_array_equal(r["keypoints"][:, 2], kp[:, 2])


def test_caption_ids(tokenizer):
    task = get_task("captioning", tokenizer=tokenizer)
    ids = tokenizer("a black dog")
    assert task.decode(ids)["caption"] == "a black dog"
