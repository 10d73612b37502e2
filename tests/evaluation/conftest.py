"""Fixtures of the evaluation tests: easy-vqa images written as the
standard benchmark formats, and the bundled model loaded once."""

import json

import numpy as np
import pytest
from PIL import Image

from keras_uio.data import easy_vqa

NUM_IMAGES = 4


def image_name(image_id):
    """The VQA / COCO 2014 name of an image (PNG: lossless)."""
    return f"COCO_val2014_{image_id:012d}.png"


def _write(path, data):
    with open(path, "w") as f:
        json.dump(data, f)
    return str(path)


def _answer_type(answer):
    return "yes/no" if answer in ("yes", "no") else "other"


def _vqa_files(folder, records):
    questions, annotations = [], []
    for record in records:
        for k, (question, answer) in enumerate(record["questions"]):
            question_id = record["coco_id"] * 100 + k
            questions.append(
                {
                    "question_id": question_id,
                    "question": question,
                    "image_id": record["coco_id"],
                }
            )
            annotations.append(
                {
                    "question_id": question_id,
                    "image_id": record["coco_id"],
                    "answer_type": _answer_type(answer),
                    "multiple_choice_answer": answer,
                    "answers": [
                        {"answer": answer, "answer_id": n + 1} for n in range(10)
                    ],
                }
            )
    return (
        _write(
            folder / "v2_OpenEnded_mscoco_val2014_questions.json",
            {"data_type": "mscoco", "data_subtype": "val2014", "questions": questions},
        ),
        _write(
            folder / "v2_mscoco_val2014_annotations.json",
            {
                "data_type": "mscoco",
                "data_subtype": "val2014",
                "annotations": annotations,
            },
        ),
    )


def _coco_images(records):
    return [
        {
            "id": r["coco_id"],
            "file_name": image_name(r["coco_id"]),
            "width": 64,
            "height": 64,
        }
        for r in records
    ]


def _rle(mask):
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": rle["counts"].decode("ascii"),
    }


def _instances(records):
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(easy_vqa.SHAPES)]
    annotations = []
    for record in records:
        x1, y1, x2, y2 = (float(v) for v in record["box"])
        annotations.append(
            {
                "id": record["coco_id"],
                "image_id": record["coco_id"],
                "category_id": easy_vqa.SHAPES.index(record["shape"]) + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
                "segmentation": _rle(record["mask"]),
            }
        )
    return {
        "images": _coco_images(records),
        "annotations": annotations,
        "categories": categories,
    }


@pytest.fixture(scope="session")
def easyvqa_records():
    """The first test images of easy-vqa, with a COCO-style `coco_id`."""
    records = easy_vqa.load_records("test", limit=NUM_IMAGES)
    for record in records:
        record["coco_id"] = record["image_id"] + 1
    return records


@pytest.fixture(scope="session")
def easyvqa_files(tmp_path_factory, easyvqa_records):
    """The records as a VQA v2 pair, COCO captions and instances files and
    a RefCOCO-style file, with their images as PNGs."""
    folder = tmp_path_factory.mktemp("easyvqa_benchmarks")
    images = folder / "images"
    images.mkdir()
    for record in easyvqa_records:
        Image.fromarray(record["image"]).save(images / image_name(record["coco_id"]))
    questions, answers = _vqa_files(folder, easyvqa_records)
    instances = _instances(easyvqa_records)
    captions = {
        "images": _coco_images(easyvqa_records),
        "annotations": [
            {"id": r["coco_id"], "image_id": r["coco_id"], "caption": r["caption"]}
            for r in easyvqa_records
        ],
    }
    refs = dict(
        instances,
        refs=[
            {
                "ref_id": r["coco_id"],
                "image_id": r["coco_id"],
                "ann_id": r["coco_id"],
                "split": "val",
                "sentences": [{"sent_id": r["coco_id"], "sent": r["shape"]}],
            }
            for r in easyvqa_records
        ],
    )
    return {
        "images": str(images),
        "questions": questions,
        "vqa": answers,
        "captions": _write(folder / "captions.json", captions),
        "instances": _write(folder / "instances.json", instances),
        "refs": _write(folder / "refs.json", refs),
    }


@pytest.fixture(scope="session")
def easyvqa_model():
    """The bundled trained preset, loaded once for every test."""
    from keras_uio import UnifiedIO

    return UnifiedIO.from_preset("uio_tiny_easyvqa")


@pytest.fixture
def counted_calls(monkeypatch, easyvqa_model):
    """`UnifiedIO.from_preset` returns the loaded model; each
    `predict_tasks` call appends its number of examples to the list."""
    from keras_uio import UnifiedIO

    calls = []
    original = UnifiedIO.predict_tasks

    def counting(self, examples, **kwargs):
        calls.append(len(examples))
        return original(self, examples, **kwargs)

    monkeypatch.setattr(UnifiedIO, "predict_tasks", counting)
    monkeypatch.setattr(
        UnifiedIO, "from_preset", classmethod(lambda cls, preset, **kw: easyvqa_model)
    )
    return calls
