"""Mixed task batches through one model (random weights: structure only)."""

import numpy as np
import pytest

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 255, (60, 90, 3), dtype=np.uint8)
PORTRAIT = RNG.integers(0, 255, (80, 50, 3), dtype=np.uint8)


def test_mixed_batch_runs_one_generate_per_output_mode(tiny_model, monkeypatch):
    calls = []
    original = tiny_model.generate

    def counting(inputs, **kwargs):
        calls.append((len(inputs["text_encoder_inputs"]), kwargs["image"]))
        return original(inputs, **kwargs)

    monkeypatch.setattr(tiny_model, "generate", counting)
    results = tiny_model.predict_tasks(
        [
            {"task": "vqa", "image": IMAGE, "question": "What color is the shape ?"},
            {"task": "depth", "image": PORTRAIT},
            {"task": "localization", "image": IMAGE, "object_name": "triangle"},
            {"task": "captioning", "image": PORTRAIT},
        ]
    )
    assert sorted(calls) == [(1, True), (3, False)]
    assert [r["task"] for r in results] == [
        "vqa",
        "depth",
        "localization",
        "captioning",
    ]
    assert isinstance(results[0]["text"], str) and isinstance(
        results[0]["errors"], list
    )
    assert results[1]["depth"].shape == PORTRAIT.shape[:2]
    assert results[2]["boxes"].ndim == 2 and results[2]["boxes"].shape[1] == 4


def test_keypoints_without_region_runs_two_stages(tiny_model):
    (result,) = tiny_model.predict_tasks([{"task": "keypoints", "image": IMAGE}])
    assert result["task"] == "keypoints"
    n = len(result["boxes"])
    assert result["keypoints"].shape == (n, 17, 3) and len(result["people"]) == n


def test_unknown_task_and_missing_inputs(tiny_model):
    with pytest.raises(ValueError, match="captioning"):
        tiny_model.predict_tasks([{"task": "teleport", "image": IMAGE}])
    with pytest.raises(ValueError, match="region"):
        tiny_model.predict_tasks([{"task": "region_captioning", "image": IMAGE}])
    with pytest.raises(ValueError, match="'task' key"):
        tiny_model.predict_tasks([{"image": IMAGE}])
    with pytest.raises(ValueError):
        tiny_model.predict_tasks(
            [{"task": "vqa", "image": IMAGE[..., 0:2], "question": "q"}]
        )


def test_cli_predict_writes_json_and_png(tiny_model, tmp_path, capsys):
    import json

    from PIL import Image

    from keras_uio.cli import main

    preset = tmp_path / "preset"
    tiny_model.save_to_preset(str(preset))
    image_path = tmp_path / "input.png"
    Image.fromarray(IMAGE).save(image_path)
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            "--preset",
            str(preset),
            "--task",
            "localization",
            "--image",
            str(image_path),
            "--text",
            "triangle",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    result = json.load(open(out / "localization.json"))
    assert result["task"] == "localization" and "boxes" in result
    picture = Image.open(out / "localization.png")
    assert picture.size == (IMAGE.shape[1], IMAGE.shape[0])
    code = main(
        ["predict", "--preset", str(preset), "--task", "vqa", "--out", str(out)]
    )
    assert code == 2 and "needs image (--image)" in capsys.readouterr().err


def test_decoding_defaults_follow_the_runner(tiny_model, monkeypatch):
    calls = []
    original = tiny_model.generate

    def recording(inputs, **kwargs):
        calls.append(kwargs)
        return original(inputs, **kwargs)

    monkeypatch.setattr(tiny_model, "generate", recording)
    examples = [
        {"task": "captioning", "image": IMAGE},
        {"task": "depth", "image": IMAGE},
    ]
    tiny_model.predict_tasks(examples, num_decodes=2, seed=3)
    by_image = {c["image"]: c for c in calls}
    assert by_image[False]["sampler"] == "beam" and by_image[False]["num_beams"] == 2
    assert by_image[False]["max_text_length"] == 32
    assert by_image[True]["sampler"] == "top_p" and by_image[True]["p"] == 0.9
    assert by_image[True]["seed"] == 3 and by_image[True]["max_text_length"] == 1
    calls.clear()
    tiny_model.predict_tasks(examples, greedy=True)
    assert {c["sampler"] for c in calls} == {"greedy"}


def test_image_sampling_is_seeded(tiny_model):
    example = [{"task": "depth", "image": IMAGE}]
    a = tiny_model.predict_tasks(example, seed=1)[0]["image_codes"]
    b = tiny_model.predict_tasks(example, seed=1)[0]["image_codes"]
    np.testing.assert_array_equal(a, b)


def test_too_long_prompt_names_the_example_and_can_be_truncated(tiny_model):
    question = "what " * 400
    examples = [
        {"task": "captioning", "image": IMAGE},
        {"task": "vqa", "image": IMAGE, "question": question},
    ]
    with pytest.raises(
        ValueError, match=r"examples\[1\] \(task 'vqa'\).*truncate=True"
    ):
        tiny_model.predict_tasks(examples)
    results = tiny_model.predict_tasks(examples, truncate=True, max_text_length=2)
    assert len(results) == 2 and isinstance(results[1]["text"], str)


def test_answer_options_choose_the_lowest_loss(tiny_model):
    options = ["circle", "rectangle", "triangle"]
    (result,) = tiny_model.predict_tasks(
        [{"task": "image_classification", "image": IMAGE, "answer_options": options}]
    )
    losses = np.asarray(result["option_losses"])
    assert losses.shape == (3,) and np.isfinite(losses).all() and (losses > 0).all()
    assert result["option_index"] == int(losses.argmin())
    assert result["label"] == result["text"] == options[result["option_index"]]


@pytest.mark.parametrize("kwargs", [{"temperature": float("nan")}, {"p": float("nan")}])
def test_sampler_rejects_nan_settings(kwargs):
    from keras_uio.models.unified_io.unified_io_sampler import UnifiedIOSampler

    with pytest.raises(ValueError, match=next(iter(kwargs))):
        UnifiedIOSampler("random", **kwargs)


def test_grounded_vqa_writes_a_full_text_answer_with_its_image(tiny_model, monkeypatch):
    calls = []
    original = tiny_model.generate

    def recording(inputs, **kwargs):
        calls.append(kwargs)
        return original(inputs, **kwargs)

    monkeypatch.setattr(tiny_model, "generate", recording)
    tiny_model.predict_tasks(
        [
            {"task": "grounded_vqa", "image": IMAGE, "question": "what is it ?"},
            {"task": "depth", "image": IMAGE},
        ],
        greedy=True,
    )
    lengths = sorted((c["image"], c["max_text_length"]) for c in calls)
    assert lengths == [(True, 1), (True, 32)]


def _score_directly(model, example, options, masks=None):
    """`model.score` on the example's own prompt, without `predict_tasks`."""
    from keras_uio.tasks import get_task

    task = get_task(example["task"], tokenizer=model.preprocessor.tokenizer)
    fields = {k: v for k, v in example.items() if k != "task"}
    inputs, _ = task.encode_inputs(**fields)
    encoded = model.preprocessor.generate_preprocess(inputs)
    names = ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")
    inputs = {k: np.asarray(encoded[k])[None] for k in names}
    return model.score(inputs, options, option_masks=masks)["loss"][0]


@pytest.mark.parametrize(
    "example",
    [
        {"task": "vqa", "image": IMAGE, "question": "What color is it ?"},
        {"task": "captioning", "image": PORTRAIT},
        {"task": "region_captioning", "image": IMAGE, "region": [5, 5, 40, 50]},
        {"task": "text_qa", "question": "Who sat ?", "context": "the cat sat"},
        {"task": "summarization", "text": "the cat sat on the mat"},
    ],
    ids=lambda e: e["task"],
)
def test_every_text_task_scores_answer_options(tiny_model, example):
    options = ["a red circle", "blue", "the cat"]
    (result,) = tiny_model.predict_tasks([{**example, "answer_options": options}])
    ids = [tiny_model.preprocessor.tokenizer(o) for o in options]
    padded = np.zeros((1, 3, max(len(i) for i in ids)), "int32")
    for n, row in enumerate(ids):
        padded[0, n, : len(row)] = row
    expected = _score_directly(tiny_model, example, padded)
    np.testing.assert_allclose(result["option_losses"], expected, rtol=1e-5)
    assert result["option_index"] == int(np.argmin(expected))
    assert result["text"] == options[result["option_index"]]


def test_image_options_are_scored_where_each_candidate_is(tiny_model):
    """Candidates of any size are resized and padded to the VQ-GAN's size,
    and only the patches inside each candidate count, as the original's
    `preprocess_target_image` and `output_options_masks` do."""
    from keras_uio.preprocessing.images import preprocess_target_image

    candidates = [IMAGE, PORTRAIT, RNG.random((40, 40, 3)).astype("float32")]
    example = {"task": "text_to_image", "description": "a red circle"}
    (result,) = tiny_model.predict_tasks([{**example, "answer_options": candidates}])
    vqgan = tiny_model.vqgan
    targets = [
        preprocess_target_image(
            c, vqgan.image_size, vqgan.image_size // vqgan.grid_size
        )
        for c in candidates
    ]
    images = np.stack([t[0] for t in targets])[None]
    masks = np.stack([t[1] for t in targets])[None]
    assert masks[0, 0].sum() < masks.shape[-1] and masks[0, 2].all()
    expected = _score_directly(tiny_model, example, images, masks)
    np.testing.assert_allclose(result["option_losses"], expected, rtol=1e-5)
    unmasked = _score_directly(tiny_model, example, images)
    assert abs(unmasked[0] - expected[0]) > 1e-3  # the padding is left out
    assert result["option_index"] == int(np.argmin(expected))
    assert result["image"] is candidates[result["option_index"]]


@pytest.mark.parametrize(
    "example, message",
    [
        (
            {"task": "text_to_image", "description": "x", "answer_options": ["a"]},
            r"answer_options\[0\]` must be an image array",
        ),
        (
            {"task": "text_to_image", "description": "x", "answer_options": []},
            "must not be empty",
        ),
        (
            {
                "task": "text_to_image",
                "description": "x",
                "answer_options": [IMAGE, PORTRAIT, IMAGE.copy()],
            },
            r"answer_options\[0\] and answer_options\[2\] are the same image",
        ),
        (
            {
                "task": "inpainting",
                "image": IMAGE,
                "region": [1, 1, 20, 20],
                "replace_with": "dog",
                "answer_options": [IMAGE[..., 0] > 9],
            },
            r"answer_options\[0\]",
        ),
        (
            {
                "task": "grounded_vqa",
                "image": IMAGE,
                "question": "x",
                "answer_options": ["a"],
            },
            "unknown inputs",
        ),
    ],
    ids=["text_for_image", "empty", "duplicate", "bool_image", "grounded_vqa"],
)
def test_bad_answer_options_name_the_option(tiny_model, example, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.predict_tasks([example])
