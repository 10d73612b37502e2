"""Registry, prompts of every task, input validation."""

import numpy as np
import pytest
from helpers_tasks import image

from keras_uio.tasks import TASKS
from keras_uio.tasks import Task
from keras_uio.tasks import get_task

ALL = [
    "captioning",
    "region_captioning",
    "vqa",
    "grounded_vqa",
    "image_classification",
    "region_classification",
    "object_detection",
    "localization",
    "referring_expression",
    "keypoints",
    "depth",
    "surface_normals",
    "segmentation",
    "text_to_image",
    "inpainting",
    "segmentation_to_image",
    "relationship_detection",
    "text_qa",
    "text_classification",
    "summarization",
]
BOX = [226.56, 160.64, 476.16, 316.16]  # on a 480x640 image
BOX_TEXT = "<extra_id_350> <extra_id_453> <extra_id_593> <extra_id_843>"


def _mask():
    m = np.zeros((1, 480, 640), bool)
    m[0, 100:200, 100:300] = True
    return m


PROMPTS = [
    ("captioning", {"image": image()}, "What does the image describe ?"),
    (
        "region_captioning",
        {"image": image(), "region": BOX},
        f'What does the region " {BOX_TEXT} " describe ?',
    ),
    (
        "vqa",
        {"image": image(), "question": "What Color is the couch?"},
        "what color is the couch?",
    ),
    (
        "grounded_vqa",
        {"image": image(), "question": "What is THIS?"},
        'What is the answer to " what is this? " and where is it ?',
    ),
    ("image_classification", {"image": image()}, "What is this in the image ?"),
    (
        "region_classification",
        {"image": image(), "region": BOX},
        f'What is the category of region " {BOX_TEXT} " ?',
    ),
    ("object_detection", {"image": image()}, "What objects are in the image ?"),
    (
        "localization",
        {"image": image(), "object_name": "bed"},
        'Which region does the text " bed " describe ?',
    ),
    (
        "referring_expression",
        {"image": image(), "expression": "a black dog"},
        'Which region does the text " a black dog " describe ?',
    ),
    (
        "keypoints",
        {"image": image(), "region": BOX},
        f'Find the human joints in the region " {BOX_TEXT} " .',
    ),
    ("depth", {"image": image()}, "What is the depth map of the image ?"),
    (
        "surface_normals",
        {"image": image()},
        "What is the surface normal of the image ?",
    ),
    (
        "segmentation",
        {"image": image(), "object_name": "painting"},
        'What is the segmentation of " painting " ?',
    ),
    (
        "text_to_image",
        {"description": "A horse in a grassy field."},
        'What is the complete image? Text: " A horse in a grassy field. " .',
    ),
    (
        "inpainting",
        {"image": image(), "region": BOX, "replace_with": "table"},
        f'Filling the blank region " {BOX_TEXT} table " ?',
    ),
    (
        "segmentation_to_image",
        {"masks": _mask(), "labels": ["Penguin"]},
        'What is the complete image? Segmentation color: " penguin : red "',
    ),
    (
        "relationship_detection",
        {
            "image": image(),
            "subject_region": BOX,
            "object_region": BOX,
            "subject_name": "man",
        },
        f'What is the relationship between " {BOX_TEXT} man " and " {BOX_TEXT} " ?',
    ),
    (
        "text_qa",
        {"question": "Who?", "context": "Ann did."},
        "question: Who? context: Ann did.",
    ),
    ("text_classification", {"text": "Great film."}, "classify: Great film."),
    ("summarization", {"text": "Long text."}, "summarize: Long text."),
]


def test_every_task_registered():
    assert sorted(TASKS) == sorted(ALL)
    assert sorted(name for name, _, _ in PROMPTS) == sorted(ALL)
    for name, cls in TASKS.items():
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name
        assert task.output_mode in ("text", "image", "text_and_image")
        assert set(cls.required) <= set(cls.required + cls.optional)


@pytest.mark.parametrize("name,inputs,prompt", PROMPTS, ids=[p[0] for p in PROMPTS])
def test_exact_prompt(name, inputs, prompt):
    task = get_task(name)
    assert task.build_prompt(**inputs) == prompt
    model_inputs, meta = task.encode_inputs(**inputs)
    assert model_inputs["prompt"] == prompt
    assert set(model_inputs) <= {"prompt", "image", "mask_region"}
    assert meta["task"] == name


def test_output_modes():
    modes = {n: get_task(n).output_mode for n in ALL}
    assert {n for n, m in modes.items() if m == "image"} == {
        "depth",
        "surface_normals",
        "segmentation",
        "text_to_image",
        "inpainting",
        "segmentation_to_image",
    }
    assert modes["grounded_vqa"] == "text_and_image"


def test_unknown_task_lists_names():
    with pytest.raises(ValueError, match="captioning.*vqa"):
        get_task("captioning2")
    with pytest.raises(ValueError, match="Known tasks"):
        get_task(3)
    t = get_task("vqa")
    assert get_task(t) is t
    with pytest.raises(ValueError):
        get_task(t, vocab=None)


def test_missing_and_unknown_inputs():
    with pytest.raises(ValueError, match=r"missing required inputs \['region'\]"):
        get_task("region_captioning").build_prompt(image=image())
    with pytest.raises(ValueError, match="missing.*'image'"):
        get_task("captioning").build_prompt()
    with pytest.raises(ValueError, match=r"unknown inputs \['regoin'\].*Accepted"):
        get_task("region_captioning").build_prompt(image=image(), regoin=BOX)
    with pytest.raises(ValueError, match="missing.*example keys.*caption"):
        get_task("captioning").encode_example({"image": image()})
    with pytest.raises(ValueError, match="must be a dict"):
        get_task("captioning").encode_example("a dog")


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 8, 8, 3)), np.zeros(8), np.zeros((8, 8, 5))]
)
def test_image_of_wrong_rank(bad):
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        get_task("captioning").encode_inputs(image=bad)


@pytest.mark.parametrize("bad", [[1, 2, 3], [10, 10, 5, 20], [0, 0, np.nan, 1], "box"])
def test_bad_region(bad):
    with pytest.raises(ValueError, match="region"):
        get_task("region_captioning").build_prompt(image=image(), region=bad)


def test_empty_text_inputs_rejected():
    with pytest.raises(ValueError, match="question"):
        get_task("vqa").build_prompt(image=image(), question="  ")


def test_prompt_template_override():
    task = get_task("vqa", prompt_template="Q: {}")
    assert task.build_prompt(image=image(), question="Why?") == "Q: why?"
    with pytest.raises(ValueError, match="interpolation"):
        get_task("depth", interpolation="cubic")


def test_encode_example_keys_fit_the_preprocessor():
    from keras_uio.models.unified_io.unified_io_preprocessor import _KEYS

    ex = get_task("captioning").encode_example({"image": image(), "caption": "a dog"})
    assert set(ex) <= set(_KEYS)
    assert ex == {
        "prompt": "What does the image describe ?",
        "image": ex["image"],
        "target_text": "a dog",
    }
