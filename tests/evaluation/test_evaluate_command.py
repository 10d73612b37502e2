"""`keras-uio evaluate` end to end: the bundled `uio_tiny_easyvqa` preset
on easy-vqa test images written as VQA v2, COCO captions, COCO instances
(boxes and RLE masks) and RefCOCO-style files (see `conftest.py`).

The model is loaded once (`UnifiedIO.from_preset` is patched to return
it) and every run uses batches of 4, so each decoding length compiles
once for the whole module.
"""

import json

import numpy as np
import pytest

from keras_uio import cli
from keras_uio import demo
from keras_uio.evaluation import caption_scorers
from keras_uio.evaluation import load_benchmark
from keras_uio.evaluation import run_evaluation
from keras_uio.models.unified_io import unified_io


def _evaluate(capsys, task, annotations, images, out, *extra):
    code = cli.main(
        [
            "evaluate",
            "--preset",
            "uio_tiny_easyvqa",
            "--task",
            task,
            "--annotations",
            annotations,
            "--images",
            images,
            "--out",
            str(out),
            "--limit",
            "4",
            "--batch-size",
            "4",
            "--greedy",
            *extra,
        ]
    )
    printed, errors = capsys.readouterr()
    assert code == 0, errors
    with open(out / "metrics.json") as f:
        return json.load(f), printed


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_vqa_writes_metrics_and_resumes(tmp_path, capsys, easyvqa_files, counted_calls):
    out = tmp_path / "vqa"
    args = ("vqa", easyvqa_files["vqa"], easyvqa_files["images"], out)
    metrics, printed = _evaluate(capsys, *args)
    assert counted_calls == [4]
    assert metrics["task"] == "vqa" and metrics["preset"] == "uio_tiny_easyvqa"
    assert metrics["num_questions"] == metrics["num_examples"] == 4
    # The first image's questions; the model answers most easy-vqa
    # questions right (0.87 on the test split).
    assert 0.5 <= metrics["vqa_accuracy"] <= 1.0
    assert "vqa_accuracy" in printed and "metrics.json" in printed
    records = _lines(out / "predictions.jsonl")
    assert [r["id"] for r in records] == ["100", "101", "102", "103"]
    with open(out / "vqa_results.json") as f:
        results = json.load(f)
    assert [r["question_id"] for r in results] == [100, 101, 102, 103]
    assert all(isinstance(r["answer"], str) for r in results)

    counted_calls.clear()
    again, _ = _evaluate(capsys, *args)
    assert counted_calls == []  # nothing recomputed
    assert again["num_predicted"] == 0
    assert again["vqa_accuracy"] == metrics["vqa_accuracy"]
    assert len(_lines(out / "predictions.jsonl")) == 4


def test_captioning(tmp_path, capsys, monkeypatch, easyvqa_files, counted_calls):
    # Without java: METEOR alone would load for ~20 s.
    monkeypatch.setattr(caption_scorers, "java_available", lambda: False)
    out = tmp_path / "captions"
    metrics, _ = _evaluate(
        capsys, "captioning", easyvqa_files["captions"], easyvqa_files["images"], out
    )
    assert metrics["num_images"] == 4
    # Captions like "a red triangle": 3 words, so no 4-grams and a
    # near-zero BLEU-4; the model gets most words right.
    assert 0.5 <= metrics["bleu_1"] <= 1.0
    assert 0.0 <= metrics["bleu_4"] <= 1.0
    assert metrics["cider_d"] > 0.5
    assert any("simple_tokenize" in n for n in metrics["notes"])
    with open(out / "captions_results.json") as f:
        results = json.load(f)
    assert sorted(r["image_id"] for r in results) == [1, 2, 3, 4]


def test_object_detection(tmp_path, capsys, easyvqa_files, counted_calls):
    out = tmp_path / "detection"
    metrics, _ = _evaluate(
        capsys,
        "object_detection",
        easyvqa_files["instances"],
        easyvqa_files["images"],
        out,
    )
    assert metrics["num_images"] == 4
    assert 0.0 <= metrics["AP"] <= metrics["AP50"] <= 1.0
    with open(out / "detection_results.json") as f:
        results = json.load(f)
    for result in results:
        assert set(result) == {"image_id", "category_id", "bbox", "score"}
    assert (out / "coco_eval.txt").exists()


def test_referring_expression(tmp_path, capsys, easyvqa_files, counted_calls):
    out = tmp_path / "refs"
    metrics, _ = _evaluate(
        capsys,
        "referring_expression",
        easyvqa_files["refs"],
        easyvqa_files["images"],
        out,
        "--split",
        "val",
    )
    assert metrics["num_sentences"] == 4
    assert 0.0 <= metrics["refexp_accuracy"] <= 1.0
    assert 0.0 <= metrics["mean_iou"] <= 1.0
    assert (out / "refexp_results.json").exists()


@pytest.mark.slow  # image generation: ~20 s more on one CPU core
def test_segmentation(tmp_path, capsys, easyvqa_files, counted_calls):
    out = tmp_path / "segmentation"
    metrics, _ = _evaluate(
        capsys, "segmentation", easyvqa_files["instances"], easyvqa_files["images"], out
    )
    assert metrics["num_examples"] == 4
    assert 0.0 <= metrics["mean_iou"] <= 1.0
    assert 0.0 <= metrics["overall_iou"] <= 1.0
    with open(out / "segmentation_results.json") as f:
        results = json.load(f)
    assert [r["segmentation"]["size"] for r in results] == [[64, 64]] * 4


def test_user_errors_exit_2_before_loading(
    tmp_path, capsys, monkeypatch, easyvqa_files
):
    def refuse(cls, preset, **kwargs):
        raise AssertionError("the model must not load for a user error")

    monkeypatch.setattr(unified_io.UnifiedIO, "from_preset", classmethod(refuse))
    code = cli.main(
        [
            "evaluate",
            "--task",
            "vqa",
            "--annotations",
            str(tmp_path / "nope.json"),
            "--images",
            easyvqa_files["images"],
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "keras-uio: error:" in capsys.readouterr().err
    code = cli.main(
        [
            "evaluate",
            "--task",
            "captioning",
            "--annotations",
            easyvqa_files["captions"],
            "--images",
            easyvqa_files["images"],
            "--split",
            "val",
        ]
    )
    assert code == 2
    assert "takes no split option" in capsys.readouterr().err


def test_vqa_accuracy_matches_the_demo(
    tmp_path, monkeypatch, easyvqa_files, easyvqa_records, easyvqa_model
):
    """Every question of the 4 images, greedy in batches of 4 both ways:
    `evaluate`'s VQA accuracy (10 identical human answers) equals the
    demo's exact-match accuracy. The demo's other tasks are stubbed out
    (their image generation would cost a minute); its VQA runs for real."""
    bench = load_benchmark("vqa", easyvqa_files["vqa"], easyvqa_files["images"])
    ours = run_evaluation(
        easyvqa_model, bench, str(tmp_path), batch_size=4, greedy=True, progress=False
    )

    real_predict = demo.predict
    stub = {
        "image": np.zeros((64, 64, 3), "uint8"),
        "boxes": np.zeros((0, 4)),
        "labels": [],
        "masks": None,
    }

    def real(example):
        return example["task"] == "vqa" and example["image"] is not stub["image"]

    def vqa_only(model, examples, batch_size, on_chunk=None):
        asked = [ex for ex in examples if real(ex)]
        answers = iter(real_predict(model, asked, batch_size) if asked else [])
        results = [next(answers) if real(ex) else dict(stub) for ex in examples]
        if on_chunk is not None:
            on_chunk(len(examples))
        return results

    monkeypatch.setattr(demo, "predict", vqa_only)
    theirs, _ = demo.evaluate_easy_vqa(easyvqa_model, easyvqa_records, batch_size=4)
    assert ours["num_questions"] == theirs["num_questions"] == len(bench)
    assert ours["vqa_accuracy"] == pytest.approx(theirs["vqa_accuracy"])
