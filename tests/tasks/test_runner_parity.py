"""`predict_tasks` against the original runner, end to end.

`tests/data/reference/uio_tasks/` holds what the original `uio/runner.py`
(with `uio/utils.py`) produced on a tiny full-vocabulary checkpoint for 16
tasks on three scikit-image photos (greedy decoding), plus its parsers on
hand-made outputs; `tests/data/reference/t5/spiece.model` is the real T5
vocabulary. Each case here converts the checkpoint, runs the example
through `predict_tasks(greedy=True)` and compares with those numbers.
"""

import json

import numpy as np
import pytest

from tests.conftest import REFERENCE

TASKS_DIR = REFERENCE / "uio_tasks"
SPIECE = REFERENCE / "t5" / "spiece.model"
FIXTURE = json.loads((TASKS_DIR / "tasks.json").read_text())
CASES = sorted(FIXTURE["tasks"])


@pytest.fixture(scope="module")
def arrays():
    return dict(np.load(TASKS_DIR / "tasks.npz"))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import keras_uio
    from keras_uio.convert.convert_checkpoint import convert_checkpoint

    out = tmp_path_factory.mktemp("uio_tasks")
    convert_checkpoint(
        str(TASKS_DIR / "checkpoint.bin"),
        str(out),
        vocabulary=str(SPIECE),
        progress=False,
    )
    return keras_uio.UnifiedIO.from_preset(str(out))


def _example(case):
    import skimage.data

    example = dict(case["example"], task=case["task"])
    if "image" in example:
        example["image"] = getattr(skimage.data, example["image"])()
    return example


@pytest.fixture(scope="module")
def results(model):
    examples = [_example(FIXTURE["tasks"][name]) for name in CASES]
    return dict(zip(CASES, model.predict_tasks(examples, greedy=True)))


def _reference_ids(arrays, name):
    """The runner's ids up to and including EOS (its last position is the
    image stage's start when no EOS was written)."""
    ids = arrays[f"{name}/text_tokens"]
    if FIXTURE["tasks"][name]["text"] is None:
        return ids.tolist()
    ids = ids[:-1] if 1 not in ids else ids
    eos = np.flatnonzero(ids == 1)
    return ids[: eos[0] + 1].tolist() if eos.size else ids.tolist()


@pytest.mark.parametrize("name", CASES)
def test_prompt_ids(model, name):
    from keras_uio.tasks import get_task

    case = FIXTURE["tasks"][name]
    tokenizer = model.preprocessor.tokenizer
    task = get_task(case["task"], tokenizer=tokenizer)
    fields = {k: v for k, v in _example(case).items() if k != "task"}
    inputs, _ = task.encode_inputs(**fields)
    assert inputs["prompt"] == case["prompt"]
    encoded = model.preprocessor.generate_preprocess(inputs)["text_encoder_inputs"]
    encoded = np.asarray(encoded)
    assert encoded[encoded > 0].tolist() == case["prompt_ids"]


@pytest.mark.parametrize("name", CASES)
def test_generated_ids_and_text(results, arrays, name):
    case, result = FIXTURE["tasks"][name], results[name]
    expected = _reference_ids(arrays, name)
    ours = list(result["token_ids"])
    if expected and expected[-1] == 1:
        ours = ours + [1]  # `token_ids` stop before EOS
    assert ours == expected
    if case["text"] is not None:
        assert result["text"] == case["text"]


@pytest.mark.parametrize("name", [n for n in CASES if "options" in FIXTURE["tasks"][n]])
def test_answer_options_are_scored(results, arrays, name):
    case, result = FIXTURE["tasks"][name], results[name]
    np.testing.assert_allclose(
        result["option_losses"], arrays[f"{name}/option_scores"], atol=1e-3
    )
    assert result["text"] == case["text"]
    assert case["options"][result["option_index"]] == case["text"]


@pytest.mark.parametrize(
    "name",
    [n for n in CASES if f"{n}/image_tokens" in np.load(TASKS_DIR / "tasks.npz")],
)
def test_image_outputs(results, arrays, name):
    result = results[name]
    np.testing.assert_array_equal(result["image_codes"], arrays[f"{name}/image_tokens"])
    np.testing.assert_allclose(result["raw_image"], arrays[f"{name}/image"], atol=1e-3)
    if f"{name}/rescaled" in arrays:
        rescaled = arrays[f"{name}/rescaled"].astype(np.float32)
        np.testing.assert_allclose(result["image"], rescaled, atol=1e-3)


def test_segmentation_masks(results, arrays):
    case = FIXTURE["tasks"]["segmentation_chelsea"]
    result = results["segmentation_chelsea"]
    assert len(result["raw_masks"]) == case["num_masks"] == len(result["masks"])
    for k, mask in enumerate(result["raw_masks"]):
        np.testing.assert_array_equal(mask, arrays[f"segmentation_chelsea/mask{k}"])


@pytest.mark.parametrize(
    "name", [n for n in CASES if FIXTURE["tasks"][n].get("parse_error")]
)
def test_outputs_the_original_rejects_are_reported(results, name):
    result = results[name]
    assert result["errors"] and "original" in result["errors"][0]
    if "boxes" in result:
        assert result["boxes"].shape == (0, 4)
    else:
        assert result["points"] is None and result["invalid"]


def _decoder(model, task_name):
    from keras_uio.tasks import get_task

    return get_task(task_name, tokenizer=model.preprocessor.tokenizer)


@pytest.mark.parametrize("name", sorted(FIXTURE["parse_regions"]))
def test_region_parser_cases(model, name):
    case = FIXTURE["parse_regions"][name]
    meta = {"image_size": tuple(case["image_size"])}
    result = _decoder(model, "object_detection").decode(
        np.asarray(case["tokens"]), meta=meta
    )
    if case.get("error"):
        assert result["boxes"].shape == (0, 4) and result["errors"]
        return
    assert not result["errors"]
    np.testing.assert_allclose(result["boxes"], case["boxes"], atol=1e-3)
    assert result["labels"] == case["labels"]


@pytest.mark.parametrize("name", sorted(FIXTURE["parse_keypoints"]))
def test_keypoint_parser_cases(model, name):
    case = FIXTURE["parse_keypoints"][name]
    meta = {"image_size": tuple(case["image_size"])}
    result = _decoder(model, "keypoints").decode(np.asarray(case["tokens"]), meta=meta)
    if case.get("error"):
        assert result["points"] is None and result["errors"]
        return
    assert result["invalid"] == case["invalid"]
    if case["points"] is None:
        assert result["points"] is None and result["point_labels"] is None
        return
    np.testing.assert_allclose(result["points"], case["points"], atol=1e-3)
    assert result["point_labels"].tolist() == case["labels"]


@pytest.mark.parametrize("name", sorted(FIXTURE["parse_segmentation"]))
def test_segmentation_parser_cases(model, arrays, name):
    image = arrays[f"parse_segmentation/{name}/image"]
    result = _decoder(model, "segmentation").decode(
        None, image, meta={"image_size": image.shape[:2], "object_name": "x"}
    )
    assert len(result["raw_masks"]) == FIXTURE["parse_segmentation"][name]
    for k, mask in enumerate(result["raw_masks"]):
        np.testing.assert_array_equal(
            mask, arrays[f"parse_segmentation/{name}/mask{k}"]
        )


def test_average_loss_divides_by_scored_tokens(model, results):
    case = FIXTURE["tasks"]["image_classification_options"]
    example = _example(case)
    averaged = model.predict_tasks([example], average_loss=True)[0]
    summed = np.asarray(results["image_classification_options"]["option_losses"])
    ids = [model.preprocessor.tokenizer(o) for o in case["options"]]
    scored = np.array([len(i) + 1 for i in ids])  # tokens, EOS, EOS again
    np.testing.assert_allclose(averaged["option_losses"], summed / scored, rtol=1e-4)
