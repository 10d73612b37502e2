"""Text-output tasks: captions, answers, labels, relations, NLP."""

import numpy as np
import pytest
from helpers_tasks import VOCAB
from helpers_tasks import detokenize
from helpers_tasks import image
from helpers_tasks import words

from keras_uio.tasks import get_task


def test_caption_from_string_and_ids():
    task = get_task("captioning", detokenize=detokenize)
    _, meta = task.encode_inputs(image=image())
    r = task.decode("a black dog</s> junk", meta=meta)
    assert r["caption"] == r["text"] == "a black dog" and r["errors"] == []
    ids = [0] + words("a black dog") + [1, 103, 0, 0]  # start, EOS, garbage
    r = task.decode(np.array(ids), meta=meta)
    assert r["caption"] == "a black dog"
    assert r["token_ids"] == words("a black dog")


def test_ids_without_tokenizer_raise():
    task = get_task("captioning")
    with pytest.raises(ValueError, match="tokenizer"):
        task.decode([100, 101, 1])
    with pytest.raises(ValueError, match="1-D"):
        get_task("captioning", detokenize=detokenize).decode([[100, 1]])
    with pytest.raises(ValueError, match="outputs text only"):
        task.decode("a", image=np.zeros((4, 4, 3)))


def test_empty_output_is_an_error_not_an_exception():
    task = get_task("vqa", detokenize=detokenize)
    for empty in (None, "", [], [1], [0, 0]):
        r = task.decode(empty)
        assert r["answer"] == "" and r["errors"] == ["empty output"]


def test_vqa_training_example():
    ex = get_task("vqa").encode_example(
        {"image": image(), "question": "Is It Red?", "answer": "yes"}
    )
    assert ex["prompt"] == "is it red?" and ex["target_text"] == "yes"


@pytest.mark.parametrize(
    "name", ["image_classification", "region_classification", "text_classification"]
)
def test_classification_options(name):
    task = get_task(name)
    inputs = {"image": image(), "region": [1, 2, 30, 40], "text": "t"}
    inputs = {k: v for k, v in inputs.items() if k in task.required + task.optional}
    _, meta = task.encode_inputs(answer_options=["Bed", "sofa"], **inputs)
    r = task.decode(" bed ", meta=meta)
    assert r["label"] == "Bed" and r["option_index"] == 0 and not r["errors"]
    r = task.decode("chair", meta=meta)
    assert r["option_index"] is None and "not one of" in r["errors"][0]
    with pytest.raises(ValueError, match="not one of"):
        task.encode_example(dict(inputs, answer_options=["a", "b"], label="c"))
    with pytest.raises(ValueError, match="list of strings"):
        task.encode_inputs(answer_options="bed", **inputs)
    ex = task.encode_example(dict(inputs, label="sofa"))
    assert ex["target_text"] == "sofa"


def test_region_caption_example_has_region_tokens():
    task = get_task("region_captioning")
    ex = task.encode_example(
        {"image": image(100, 50), "region": [0, 0, 50, 100], "caption": "a tall thing"}
    )
    assert ex["prompt"] == (
        'What does the region " <extra_id_100> '
        '<extra_id_100> <extra_id_1099> <extra_id_599> " '
        "describe ?"
    )


def test_text_with_location_tokens_is_kept_raw():
    task = get_task("captioning")
    r = task.decode("a <extra_id_350> dog")
    assert r["caption"] == "a <extra_id_350> dog"


def test_relationship_triplet():
    task = get_task("relationship_detection")
    inputs, meta = task.encode_inputs(
        image=image(),
        subject_region=[0, 0, 10, 10],
        object_region=[5, 5, 20, 20],
        object_name="horse",
    )
    r = task.decode("riding", meta=meta)
    assert r["triplet"] == (None, "riding", "horse")
    ex = task.encode_example(
        {
            "image": image(),
            "subject_region": [0, 0, 1, 1],
            "object_region": [0, 0, 1, 1],
            "relation": "on",
        }
    )
    assert ex["target_text"] == "on"
    with pytest.raises(ValueError, match="object_region"):
        task.encode_inputs(image=image(), subject_region=[0, 0, 1, 1])


def test_nlp_tasks():
    qa = get_task("text_qa")
    inputs, _ = qa.encode_inputs(question="Who?", context="Ann did.")
    assert set(inputs) == {"prompt"}
    assert qa.decode("Ann")["answer"] == "Ann"
    ex = qa.encode_example({"question": "Who?", "context": "Ann did.", "answer": "Ann"})
    assert ex == {"prompt": "question: Who? context: Ann did.", "target_text": "Ann"}
    cls = get_task("text_classification")
    assert cls.build_prompt(text="Nice.", answer_options=["pos", "neg"]) == (
        "classify: Nice. options: pos , neg"
    )
    assert (
        get_task("text_classification", options_template=None).build_prompt(
            text="Nice.", answer_options=["pos", "neg"]
        )
        == "classify: Nice."
    )
    s = get_task("summarization")
    assert (
        s.encode_example({"text": "Long.", "summary": "Short."})["target_text"]
        == "Short."
    )
    with pytest.raises(ValueError, match="unknown inputs"):
        s.encode_inputs(text="a", image=image())


def test_decode_batch():
    task = get_task("captioning", detokenize=detokenize)
    out = task.decode_batch(np.array([[100, 101, 1], [102, 1, 0]]))
    assert [r["caption"] for r in out] == ["a dog", "bed"]
    with pytest.raises(ValueError, match="one image and meta"):
        task.decode_batch(["a"], metas=[{}, {}])


def test_grounded_vqa_answer_and_mask():
    task = get_task("grounded_vqa")
    img = image(120, 160)
    mask = np.zeros((120, 160), bool)
    mask[20:80, 40:120] = True
    from helpers_tasks import through_model_frame

    ex = task.encode_example(
        {"image": img, "question": "Where?", "answer": "a can", "mask": mask}
    )
    assert ex["target_text"] == "a can"
    _, meta = task.encode_inputs(image=img, question="Where?")
    r = task.decode("a can", through_model_frame(ex["target_image"]), meta)
    assert r["answer"] == "a can" and r["mask"].shape == (120, 160)
    iou = (r["mask"] & mask).sum() / (r["mask"] | mask).sum()
    assert iou > 0.95
    r = task.decode("", np.zeros((256, 256, 3), np.float32), meta)
    assert r["errors"] == ["empty output", "empty mask"]
    with pytest.raises(ValueError, match="needs the generated `image`"):
        task.decode("a can", None, meta)
    with pytest.raises(ValueError, match=r"mask.*\(120, 160\)"):
        task.encode_example(
            {"image": img, "question": "q", "answer": "a", "mask": mask[:10]}
        )


def test_vocab_is_the_real_layout():
    assert get_task("captioning").vocab == VOCAB


@pytest.mark.parametrize(
    "name, prompt",
    [
        ("grounded_vqa", 'What is the answer to " {} " and where is it ?'),
        ("text_qa", "question: {} context: {}"),
        ("text_classification", "classify: {}"),
        ("summarization", "summarize: {}"),
    ],
)
def test_prompts_without_a_runner_prompt_say_where_they_come_from(name, prompt):
    # The original runner has no prompt for these four tasks (issue #16):
    # the prompt is pinned, and the module says where it comes from.
    import sys

    cls = type(get_task(name))
    assert cls.prompt_template == prompt
    doc = sys.modules[cls.__module__].__doc__
    assert "Prompt source: no published prompt found; ours." in doc
