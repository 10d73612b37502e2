"""The easy-vqa dataset as Unified-IO task examples.

easy-vqa (PyPI `easy-vqa`, MIT license, by Victor Zhou) has 4000 train and
1000 test 64x64 images, each one coloured shape (circle, rectangle or
triangle in one of 8 colours) on a plain background, with 38,575 / 9,673
yes-no, colour and shape questions over 13 answers. The package ships the
PNGs, so everything here works offline.

Beyond the given questions we derive, per image:
- `mask`: the pixels that differ from the background colour (the most
  common colour) by more than half the shape's contrast;
- `box`: the mask's `(x1, y1, x2, y2)` pixel box, `x2`/`y2` exclusive;
- `color`: the CSS colour of the mask's most common pixel value;
- `shape`: from the corners of the box the shape covers (rectangle 4,
  triangle 2, circle 0).
Both are checked against whatever the image's own questions say (some
images' questions name neither); a disagreement raises.

and from those the examples of seven tasks (`task_examples`): VQA,
captioning ("a blue triangle"), localization and object detection (the
box), segmentation (the mask), image classification with the three shapes
as options, and text-to-image (the caption -> the image).

Example:
```python
from keras_uio.data import easy_vqa
records = easy_vqa.load_records("test", limit=4)
records[0]["color"], records[0]["shape"], records[0]["box"]
examples = easy_vqa.task_examples(records)
sorted(examples)
```
"""

import re

import numpy as np

SHAPES = ("circle", "rectangle", "triangle")
# The shapes are drawn in these CSS colours (checked against the questions).
COLOR_RGB = {
    "black": (0, 0, 0),
    "blue": (0, 0, 255),
    "brown": (165, 42, 42),
    "gray": (128, 128, 128),
    "green": (0, 255, 0),
    "red": (255, 0, 0),
    "teal": (0, 128, 128),
    "yellow": (255, 255, 0),
}
COLORS = tuple(COLOR_RGB)
SPLITS = ("train", "test")
TASK_NAMES = (
    "vqa",
    "captioning",
    "localization",
    "object_detection",
    "segmentation",
    "image_classification",
    "text_to_image",
)

_NAMES = re.compile(r"\b(" + "|".join(COLORS + SHAPES) + r")\b")
_NEGATED = re.compile(r"\b(not|no)\b")


def _easy_vqa():
    try:
        import easy_vqa
    except ImportError:
        raise ImportError(
            "The easy-vqa dataset needs the `easy-vqa` package: `pip install easy-vqa`."
        ) from None
    return easy_vqa


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: {split!r}")


def _facts(questions):
    """`{"color": set, "shape": set}` named by one image's `(question, answer)`s.

    A "what" question names the image's colour or shape in its answer, and
    in its own words ("what color is the triangle?"); a yes/no question
    about one colour or shape names it when the answer affirms it
    ("is there a red shape?" yes, "is there not a circle?" no); a shape
    that is denied twice over leaves the third.
    """
    found = {"color": set(), "shape": set()}
    denied = set()
    for question, answer in questions:
        words = _NAMES.findall(question)
        if question.startswith("what"):
            named = words + [answer]
        elif answer in ("yes", "no") and len(words) == 1:
            affirmed = (answer == "yes") != bool(_NEGATED.search(question))
            named = words if affirmed else []
            denied.update([] if affirmed else words)
        else:
            named = []
        for word in named:
            found["color" if word in COLORS else "shape"].add(word)
    if not found["shape"] and len(denied.intersection(SHAPES)) == 2:
        found["shape"] = set(SHAPES) - denied
    return found


def shape_mask(image):
    """Boolean `[H, W]` mask of the pixels that are not background.

    The background is the image's most common colour; a pixel belongs to
    the shape when its distance to the background is more than half the
    largest distance in the image (anti-aliased edges split half-way).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"`image` must be `[H, W, 3]`. Received shape: {image.shape}")
    distance = _distance_to_mode(image.reshape(-1, 3))
    return (distance > distance.max() / 2).reshape(image.shape[:2])


def _mode_color(pixels):
    """The most common row of `[N, 3]` uint8 pixels, as int32 `[3]`."""
    packed = pixels.astype(np.int32) @ np.array([65536, 256, 1], np.int32)
    values, counts = np.unique(packed, return_counts=True)
    mode = values[np.argmax(counts)]
    return np.array([mode >> 16, (mode >> 8) & 255, mode & 255], np.int32)


def _distance_to_mode(pixels):
    """Each pixel's L1 distance to the most common pixel value."""
    return np.abs(pixels.astype(np.int32) - _mode_color(pixels)).sum(-1)


def mask_box(mask):
    """`(x1, y1, x2, y2)` pixel box of a boolean mask (`x2`, `y2` exclusive)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError("The mask is empty: no shape found in the image.")
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def pixel_color(image, mask):
    """The colour name of the mask's most common pixel value."""
    rgb = _mode_color(np.asarray(image)[mask])
    names = list(COLOR_RGB)
    table = np.array([COLOR_RGB[n] for n in names])
    return names[int(np.argmin(np.abs(table - rgb).sum(-1)))]


def shape_name(image, mask):
    """`"rectangle"`, `"circle"` or `"triangle"` from the mask box's corners.

    With `coverage` = each pixel's distance to the background over the
    largest (1 inside the shape, fractions on anti-aliased edges): a
    rectangle covers all four corner pixels of its box, a triangle two of
    them (its base), a circle none.
    """
    image = np.asarray(image).astype(np.int32)
    distance = np.abs(image - _mode_color(image[~mask])).sum(-1)
    coverage = distance / max(distance.max(), 1)
    x1, y1, x2, y2 = mask_box(mask).astype(int)
    corners = np.sort(coverage[[y1, y1, y2 - 1, y2 - 1], [x1, x2 - 1, x1, x2 - 1]])
    if corners[0] >= 0.2:
        return "rectangle"
    return "triangle" if corners[2:].mean() >= 0.33 else "circle"


def load_records(split, limit=None):
    """The images of a split with their labels, in image-id order.

    Args:
        split: `"train"` (4000 images) or `"test"` (1000).
        limit: optional int, keep the first `limit` images.

    Returns:
        A list of dicts: `image_id`, `image` (uint8 `[64, 64, 3]`), `color`,
        `shape`, `mask` (bool `[64, 64]`), `box` (float64 `[4]`),
        `caption`, `questions` (list of `(question, answer)`).
    """
    from PIL import Image

    _check_split(split)
    ev = _easy_vqa()
    if split == "train":
        questions, answers, image_ids = ev.get_train_questions()
        paths = ev.get_train_image_paths()
    else:
        questions, answers, image_ids = ev.get_test_questions()
        paths = ev.get_test_image_paths()
    per_image = {}
    for q, a, i in zip(questions, answers, image_ids):
        per_image.setdefault(i, []).append((q, a))
    ids = sorted(paths)
    if limit is not None:
        ids = ids[: int(limit)]
    records = []
    for i in ids:
        qas = per_image.get(i, [])
        with Image.open(paths[i]) as im:
            image = np.asarray(im.convert("RGB"))
        mask = shape_mask(image)
        color, shape = pixel_color(image, mask), shape_name(image, mask)
        facts = _facts(qas)
        if facts["color"] - {color} or facts["shape"] - {shape}:
            raise ValueError(
                f"easy-vqa {split} image {i}: its pixels show a {color} "
                f"{shape} but its questions name colours "
                f"{sorted(facts['color'])} and shapes {sorted(facts['shape'])}."
            )
        records.append(
            {
                "image_id": i,
                "image": image,
                "color": color,
                "shape": shape,
                "mask": mask,
                "box": mask_box(mask),
                "caption": caption(color, shape),
                "questions": qas,
            }
        )
    return records


def caption(color, shape):
    """The caption of an easy-vqa image, e.g. `"a blue triangle"`."""
    return f"a {color} {shape}"


def task_examples(records, tasks=TASK_NAMES):
    """Training examples of each task, as `keras_uio.tasks` expect them.

    Args:
        records: output of `load_records`.
        tasks: the task names to build (a subset of `TASK_NAMES`).

    Returns:
        dict task name -> list of example dicts (VQA has one example per
        question, the others one per image).
    """
    unknown = set(tasks) - set(TASK_NAMES)
    if unknown:
        raise ValueError(
            f"Unknown easy-vqa tasks {sorted(unknown)}. Known: {TASK_NAMES}"
        )
    builders = {
        "vqa": lambda r: [
            {"image": r["image"], "question": q, "answer": a} for q, a in r["questions"]
        ],
        "captioning": lambda r: [{"image": r["image"], "caption": r["caption"]}],
        "localization": lambda r: [
            {
                "image": r["image"],
                "object_name": r["shape"],
                "boxes": r["box"][None],
            }
        ],
        "object_detection": lambda r: [
            {
                "image": r["image"],
                "boxes": r["box"][None],
                "labels": [r["shape"]],
            }
        ],
        "segmentation": lambda r: [
            {
                "image": r["image"],
                "object_name": r["shape"],
                "masks": r["mask"][None],
            }
        ],
        "image_classification": lambda r: [
            {
                "image": r["image"],
                "label": r["shape"],
                "answer_options": list(SHAPES),
            }
        ],
        "text_to_image": lambda r: [
            {
                "description": r["caption"],
                "target_image": r["image"],
            }
        ],
    }
    return {name: [ex for r in records for ex in builders[name](r)] for name in tasks}


def text_corpus(records):
    """Every string the tasks write or read, for training a tokenizer."""
    from keras_uio.tasks import get_task

    texts = set()
    examples = task_examples(records[:50])
    for name, rows in examples.items():
        task = get_task(name)
        for ex in rows[:20]:
            encoded = task.encode_example(ex)
            texts.add(encoded["prompt"])
    for r in records:
        texts.add(r["caption"])
        texts.update(q for q, _ in r["questions"])
        texts.update(a for _, a in r["questions"])
    for color in COLORS:
        for shape in SHAPES:
            texts.add(caption(color, shape))
    return sorted(texts)


def reconstruction_agreement(vqgan, images):
    """How often a tokenizer's reconstructions keep colour and shape.

    Each image goes through `vqgan.encode` and `vqgan.decode`; the
    reconstruction counts as keeping the colour when the most common colour
    of its pixels under the original's shape mask names the same colour
    (`pixel_color`), and as keeping the shape when the shape found in the
    reconstruction (`shape_mask`, `shape_name`) is the original's.

    Args:
        vqgan: a `keras_uio.VQGAN`.
        images: float `[N, R, R, 3]` in `[-1, 1]` at the tokenizer's size
            (e.g. a target converter's output for easy-vqa images).

    Returns:
        A dict of floats: `color` and `shape`, fractions of the images.
    """
    import keras

    images = np.asarray(images, "float32")
    reconstructions = keras.ops.convert_to_numpy(vqgan.decode(vqgan.encode(images)))
    reconstructions = reconstructions.astype("float32")
    color, shape = [], []
    for original, rebuilt in zip(_to_uint8(images), _to_uint8(reconstructions)):
        mask = shape_mask(original)
        color.append(pixel_color(original, mask) == pixel_color(rebuilt, mask))
        rebuilt_mask = shape_mask(rebuilt)
        shape.append(
            rebuilt_mask.any()
            and shape_name(rebuilt, rebuilt_mask) == shape_name(original, mask)
        )
    return {"color": float(np.mean(color)), "shape": float(np.mean(shape))}


def _to_uint8(images):
    return np.clip(np.round((images + 1) * 127.5), 0, 255).astype(np.uint8)
