"""The easy-vqa labels we derive (colour, shape, mask, box) and its tasks.

Real data: the `easy-vqa` package's own PNGs and questions (PyPI, MIT).
"""

import numpy as np
import pytest
from PIL import Image
from PIL import ImageDraw

from keras_uio.data import easy_vqa
from keras_uio.tasks import get_task


def _drawn(shape, color, background=(230, 240, 250), size=64):
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    rgb = easy_vqa.COLOR_RGB[color]
    if shape == "rectangle":
        draw.rectangle([10, 12, 40, 30], fill=rgb)
    elif shape == "circle":
        draw.ellipse([20, 20, 50, 50], fill=rgb)
    else:
        draw.polygon([(8, 50), (40, 50), (24, 10)], fill=rgb)
    return np.asarray(image)


@pytest.mark.parametrize("shape", easy_vqa.SHAPES)
@pytest.mark.parametrize("color", ["red", "teal", "yellow"])
def test_shape_and_color_of_drawn_shapes(shape, color):
    image = _drawn(shape, color)
    mask = easy_vqa.shape_mask(image)
    assert easy_vqa.shape_name(image, mask) == shape
    assert easy_vqa.pixel_color(image, mask) == color


class _Tokenizer:
    """Stands in for a VQ-GAN: `decode(encode(x))` is `rebuild(x)`."""

    def __init__(self, rebuild):
        self.rebuild = rebuild

    def encode(self, images):
        return images

    def decode(self, codes):
        return self.rebuild(codes)


def test_reconstruction_agreement_judges_colour_and_shape():
    images = np.stack(
        [_drawn("circle", "red"), _drawn("triangle", "teal")]
    ).astype("float32")
    images = images / 127.5 - 1
    exact = easy_vqa.reconstruction_agreement(_Tokenizer(lambda x: x), images)
    assert exact == {"color": 1.0, "shape": 1.0}
    grey = np.stack([_drawn("circle", "gray"), _drawn("triangle", "gray")])
    greyed = easy_vqa.reconstruction_agreement(
        _Tokenizer(lambda x: grey.astype("float32") / 127.5 - 1), images
    )
    assert greyed == {"color": 0.0, "shape": 1.0}
    swapped = easy_vqa.reconstruction_agreement(_Tokenizer(lambda x: x[::-1]), images)
    assert swapped["shape"] == 0.0
    blank = easy_vqa.reconstruction_agreement(
        _Tokenizer(lambda x: np.ones_like(x)), images
    )
    assert blank["shape"] == 0.0


def test_mask_and_box_of_a_drawn_rectangle():
    image = _drawn("rectangle", "blue")
    mask = easy_vqa.shape_mask(image)
    assert mask.sum() == 31 * 19
    np.testing.assert_array_equal(easy_vqa.mask_box(mask), [10, 12, 41, 31])


def test_empty_mask_and_bad_image_raise():
    with pytest.raises(ValueError, match="empty"):
        easy_vqa.mask_box(np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        easy_vqa.shape_mask(np.zeros((8, 8)))


def test_facts_from_questions():
    facts = easy_vqa._facts([
        ("what color is the triangle?", "blue"),
        ("is there not a red shape?", "yes"),
        ("is there a green shape in the image?", "no"),
    ])
    assert facts == {"color": {"blue"}, "shape": {"triangle"}}
    facts = easy_vqa._facts([
        ("is there not a circle?", "yes"),
        ("does the image contain a rectangle?", "no"),
        ("is a teal shape present?", "yes"),
    ])
    assert facts == {"color": {"teal"}, "shape": {"triangle"}}


@pytest.fixture(scope="module")
def records():
    return easy_vqa.load_records("test", limit=40)


def test_records_agree_with_their_questions(records):
    assert [r["image_id"] for r in records] == list(range(40))
    for r in records:
        assert r["image"].shape == (64, 64, 3) and r["image"].dtype == np.uint8
        assert r["color"] in easy_vqa.COLORS and r["shape"] in easy_vqa.SHAPES
        x1, y1, x2, y2 = r["box"]
        assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
        assert r["mask"][int(y1):int(y2), int(x1):int(x2)].sum() == r["mask"].sum()
        for question, answer in r["questions"]:
            if question in ("what color is the shape?",
                            "what is the color of the shape?"):
                assert answer == r["color"]
            if question in ("what shape is in the image?",
                            "what shape does the image contain?"):
                assert answer == r["shape"]
    # The split covers every colour and shape.
    assert {r["shape"] for r in records} == set(easy_vqa.SHAPES)


def test_task_examples_encode_with_their_tasks(records):
    examples = easy_vqa.task_examples(records[:3])
    assert sorted(examples) == sorted(easy_vqa.TASK_NAMES)
    assert len(examples["vqa"]) == sum(len(r["questions"]) for r in records[:3])
    for name, rows in examples.items():
        encoded = get_task(name).encode_example(rows[0])
        assert encoded["prompt"]
        assert ("target_text" in encoded) or ("target_image" in encoded)
    caption = get_task("captioning").encode_example(examples["captioning"][0])
    assert caption["target_text"] == records[0]["caption"]


def test_unknown_task_and_split_raise(records):
    with pytest.raises(ValueError, match="Unknown easy-vqa tasks"):
        easy_vqa.task_examples(records, tasks=["depth"])
    with pytest.raises(ValueError, match="split"):
        easy_vqa.load_records("validation")


def test_text_corpus_covers_prompts_and_answers(records):
    corpus = easy_vqa.text_corpus(records)
    assert "a teal triangle" in corpus
    assert "yes" in corpus
    assert 'What is the segmentation of " circle " ?' in corpus
