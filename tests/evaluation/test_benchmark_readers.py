"""Readers of the standard formats, their error messages, and the
resumable runner (with a stand-in model)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from keras_uio.errors import UserInputError
from keras_uio.evaluation import load_benchmark
from keras_uio.evaluation import run_evaluation
from keras_uio.evaluation.depth import write_depth_png
from keras_uio.evaluation.files import append_jsonl
from keras_uio.evaluation.files import read_jsonl
from keras_uio.evaluation.surface_normals import write_normals_png


def blank_png(path, size=(8, 8)):
    """A black RGB PNG of `size` (height, width)."""
    Image.fromarray(np.zeros(size + (3,), "uint8")).save(path)
    return str(path)


def _write(path, data):
    path.write_text(json.dumps(data))
    return str(path)


# ------------------------------------------------------------------- VQA
def test_vqa_pair_found_beside_annotations(easyvqa_files, easyvqa_records):
    bench = load_benchmark("vqa", easyvqa_files["vqa"], easyvqa_files["images"])
    assert len(bench) == sum(len(r["questions"]) for r in easyvqa_records)
    first = bench.examples[0]
    assert first["inputs"] == {"question": easyvqa_records[0]["questions"][0][0]}
    assert len(first["answers"]) == 10
    assert os.path.basename(first["image"]) == "COCO_val2014_000000000001.png"


def test_vqa_without_question_file(tmp_path, easyvqa_files):
    with open(easyvqa_files["vqa"]) as f:
        answers = json.load(f)
    lone = _write(tmp_path / "annotations.json", answers)
    with pytest.raises(UserInputError, match="--questions"):
        load_benchmark("vqa", lone, easyvqa_files["images"])


def test_vqa_question_without_answers(tmp_path, easyvqa_files):
    empty = _write(tmp_path / "a.json", {"annotations": []})
    with pytest.raises(UserInputError, match="has no entry in the annotation"):
        load_benchmark(
            "vqa", empty, easyvqa_files["images"], questions=easyvqa_files["questions"]
        )


def test_options_and_tasks_are_checked(easyvqa_files):
    with pytest.raises(UserInputError, match="takes no split option"):
        load_benchmark(
            "vqa", easyvqa_files["vqa"], easyvqa_files["images"], split="val"
        )
    with pytest.raises(UserInputError, match="No benchmark reader"):
        load_benchmark("text_to_image", easyvqa_files["vqa"], ".")
    with pytest.raises(UserInputError, match="needs an annotation file"):
        load_benchmark("captioning", None, easyvqa_files["images"])


# ------------------------------------------------------------------ COCO
def test_coco_errors_name_file_and_field(tmp_path):
    blank_png(tmp_path / "a.png")
    bad = _write(
        tmp_path / "captions.json",
        {
            "images": [{"id": 1, "file_name": "a.png"}],
            "annotations": [{"id": 1, "image_id": 1, "text": "a dog"}],
        },
    )
    with pytest.raises(UserInputError, match=r"annotations\[0\] has no 'caption'"):
        load_benchmark("captioning", bad, str(tmp_path))
    missing = _write(
        tmp_path / "missing.json",
        {"images": [{"id": 1, "file_name": "b.png"}], "annotations": []},
    )
    with pytest.raises(FileNotFoundError, match="b.png"):
        load_benchmark("captioning", missing, str(tmp_path))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(UserInputError, match="not valid JSON"):
        load_benchmark("captioning", str(tmp_path / "broken.json"), str(tmp_path))
    boxes_only = _write(
        tmp_path / "boxes.json",
        {
            "images": [{"id": 1, "file_name": "a.png"}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}
            ],
        },
    )
    with pytest.raises(UserInputError, match="no 'segmentation' field"):
        load_benchmark("segmentation", boxes_only, str(tmp_path))
    no_images = _write(tmp_path / "x.json", {"annotations": []})
    with pytest.raises(UserInputError, match="no 'images' and 'categories' fields"):
        load_benchmark("object_detection", no_images, str(tmp_path))


def test_segmentation_examples_per_present_class(easyvqa_files, easyvqa_records):
    bench = load_benchmark(
        "segmentation", easyvqa_files["instances"], easyvqa_files["images"]
    )
    assert [ex["inputs"]["object_name"] for ex in bench.examples] == [
        r["shape"] for r in easyvqa_records
    ]


# ---------------------------------------------------------------- RefCOCO
def test_refs_boxes_sentences_and_splits(tmp_path):
    blank_png(tmp_path / "a.png")
    path = _write(
        tmp_path / "refs.json",
        {
            "images": [{"id": 1, "file_name": "a.png"}],
            "annotations": [{"id": 9, "image_id": 1, "bbox": [1, 2, 3, 4]}],
            "refs": [
                {
                    "ref_id": 0,
                    "image_id": 1,
                    "ann_id": 9,
                    "split": "testA",
                    "sentences": [
                        {"sent_id": 5, "sent": "left man"},
                        {"sent_id": 6, "raw": "The left man."},
                    ],
                },
                {
                    "ref_id": 1,
                    "image_id": 1,
                    "ann_id": 9,
                    "split": "val",
                    "bbox": [0, 0, 2, 2],
                    "sentences": ["the cup"],
                },
            ],
        },
    )
    bench = load_benchmark("referring_expression", path, str(tmp_path))
    assert [
        (ex["id"], ex["inputs"]["expression"], ex["box"]) for ex in bench.examples
    ] == [
        ("5", "left man", [1.0, 2.0, 4.0, 6.0]),
        ("6", "The left man.", [1.0, 2.0, 4.0, 6.0]),
        ("1_0", "the cup", [0.0, 0.0, 2.0, 2.0]),
    ]
    only_val = load_benchmark("referring_expression", path, str(tmp_path), split="val")
    assert len(only_val) == 1
    with pytest.raises(UserInputError, match=r"'testA', 'val'"):
        load_benchmark("referring_expression", path, str(tmp_path), split="testB")


# ---------------------------------------------------------- image folders
def test_classification_class_names(tmp_path):
    for folder in ("n01", "n02"):
        (tmp_path / "val" / folder).mkdir(parents=True)
        blank_png(tmp_path / "val" / folder / "x.png")
    names = _write(tmp_path / "names.json", {"n01": "tench", "n02": "goldfish"})
    bench = load_benchmark("image_classification", names, str(tmp_path / "val"))
    assert bench.examples[1]["label"] == "goldfish"
    assert bench.examples[0]["inputs"]["answer_options"] == ["tench", "goldfish"]
    listed = _write(tmp_path / "list.json", ["tench"])
    with pytest.raises(UserInputError, match="1 names for 2 class folders"):
        load_benchmark("image_classification", listed, str(tmp_path / "val"))


def test_depth_folder_pairs_and_scores(tmp_path):
    images, depth = tmp_path / "rgb", tmp_path / "depth"
    images.mkdir()
    depth.mkdir()
    blank_png(images / "0001.png", (4, 6))
    blank_png(images / "0002.jpg", (4, 6))
    np.save(depth / "0001.npy", np.full((4, 6), 2.0))
    with pytest.raises(FileNotFoundError, match="0002.jpg"):
        load_benchmark("depth", str(depth), str(images))
    write_depth_png(depth / "0002.png", np.full((4, 6), 4.0))
    bench = load_benchmark("depth", str(depth), str(images))
    out = tmp_path / "out"
    out.mkdir()
    records = [
        bench.to_record(ex, {"depth": np.full((4, 6), 3.0)}, str(out))
        for ex in bench.examples
    ]
    metrics = bench.score(records, str(out))
    assert metrics["depth_rmse"] == pytest.approx(1.0)
    assert metrics["depth_abs_rel"] == pytest.approx((0.5 + 0.25) / 2)
    assert (out / "depth" / "0001.png").exists()
    Image.fromarray(np.zeros((4, 6), "uint8")).save(depth / "0001.png")
    os.remove(depth / "0001.npy")
    bench = load_benchmark("depth", str(depth), str(images))
    with pytest.raises(UserInputError, match="must be 16-bit"):
        bench.to_record(bench.examples[0], {"depth": np.ones((4, 6))}, str(out))


def test_surface_normals_folder(tmp_path):
    images, normals = tmp_path / "rgb", tmp_path / "normals"
    images.mkdir()
    normals.mkdir()
    blank_png(images / "a.png", (3, 3))
    up = np.tile([0.0, 0.0, 1.0], (3, 3, 1))
    write_normals_png(normals / "a.png", up)
    bench = load_benchmark("surface_normals", str(normals), str(images))
    record = bench.to_record(bench.examples[0], {"normals": up}, str(tmp_path))
    metrics = bench.score([record], str(tmp_path))
    assert metrics["mean_angle_error"] < 1.0  # 8-bit PNG rounding
    assert metrics["within_11.25"] == 1.0


# ---------------------------------------------------------------- runner
def test_jsonl_drops_a_line_cut_short(tmp_path):
    path = str(tmp_path / "p.jsonl")
    append_jsonl(path, [{"id": "1"}, {"id": "2"}])
    with open(path, "a") as f:
        f.write('{"id": "3", "ans')
    assert sorted(read_jsonl(path)) == ["1", "2"]
    append_jsonl(path, [{"id": "3"}])
    assert sorted(read_jsonl(path)) == ["1", "2", "3"]


class Parrot:
    """Stands in for a `UnifiedIO`: answers each question with itself."""

    preprocessor = object()

    def __init__(self):
        self.calls = []

    def predict_tasks(self, examples, **kwargs):
        self.calls.append((len(examples), kwargs))
        return [{"answer": "yes", "errors": []} for _ in examples]


def test_runner_resumes_and_refuses_another_run(tmp_path, easyvqa_files):
    bench = load_benchmark("vqa", easyvqa_files["vqa"], easyvqa_files["images"])
    out = str(tmp_path / "out")
    model = Parrot()
    first = run_evaluation(
        model,
        bench,
        out,
        batch_size=3,
        limit=5,
        progress=False,
        run_info={"preset": "p"},
    )
    assert [n for n, _ in model.calls] == [3, 2]
    assert model.calls[0][1]["greedy"] is False
    assert first["num_predicted"] == 5
    more = run_evaluation(
        model,
        bench,
        out,
        batch_size=3,
        limit=7,
        progress=False,
        run_info={"preset": "p"},
    )
    assert [n for n, _ in model.calls] == [3, 2, 2]
    assert more["num_predicted"] == 2 and more["num_examples"] == 7
    with pytest.raises(UserInputError, match="another run"):
        run_evaluation(
            model, bench, out, limit=7, progress=False, run_info={"preset": "other"}
        )
