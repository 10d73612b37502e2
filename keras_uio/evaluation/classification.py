"""Image classification from an image folder, top-1 accuracy with options.

The image folder has one subfolder per class, named after it (the
layout of ImageNet's `val/` once sorted into class folders, and of
`torchvision.datasets.ImageFolder`): `val/n01440764/x.JPEG`. The model
scores every class name as an answer option and picks the one with the
lowest loss (`predict_tasks` with `answer_options`, as the original).

Class names are the folder names, or, with an annotation file, what it
maps them to: a JSON object `{"n01440764": "tench", ...}` or a list of
names in the sorted order of the folders. Predictions are written as
`classification_results.json`: `[{"file", "label", "truth"}]`.

Example:
>>> import os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> root = tempfile.mkdtemp()
>>> for name in ("cat", "dog"):
...     os.makedirs(os.path.join(root, name))
...     Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(
...         os.path.join(root, name, "1.png"))
>>> bench = ClassificationBenchmark.from_files(None, root)
>>> [(ex["id"], ex["label"]) for ex in bench.examples]
[('cat/1.png', 'cat'), ('dog/1.png', 'dog')]
>>> bench.examples[0]["inputs"]["answer_options"]
['cat', 'dog']
"""

import json
import os

import numpy as np

from keras_uio.errors import UserInputError
from keras_uio.evaluation.benchmark import Benchmark
from keras_uio.evaluation.files import check_file
from keras_uio.evaluation.files import check_folder
from keras_uio.evaluation.files import list_images
from keras_uio.evaluation.files import prediction_record
from keras_uio.evaluation.files import result_text
from keras_uio.evaluation.files import write_json


def class_names(folders, annotations=None):
    """`{folder: class name}`: the folder names, or as `annotations` (a
    JSON file: an object folder -> name, or a list of names in folder
    order) maps them."""
    if annotations is None:
        return {f: f for f in folders}
    path = check_file(annotations, "Class-name file")
    with open(path, encoding="utf-8") as f:
        try:
            names = json.load(f)
        except json.JSONDecodeError as e:
            raise UserInputError(
                f"Class-name file {path!r} is not valid JSON: {e}"
            ) from None
    if isinstance(names, list):
        if len(names) != len(folders):
            raise UserInputError(
                f"Class-name file {path!r} lists {len(names)} names for "
                f"{len(folders)} class folders."
            )
        return {f: str(n) for f, n in zip(folders, names)}
    if not isinstance(names, dict):
        raise UserInputError(
            f"Class-name file {path!r} must be a JSON "
            'object {"folder": "name"} or a list of names.'
        )
    missing = [f for f in folders if f not in names]
    if missing:
        raise UserInputError(
            f"Class-name file {path!r} has no name for the class folders {missing[:5]}."
        )
    return {f: str(names[f]) for f in folders}


def read_image_folder(images_dir, annotations=None):
    """Examples of a class-per-subfolder image folder: `id` (the path
    under `images_dir`), `image`, `inputs` (`{"answer_options": names}`),
    `label`."""
    root = check_folder(images_dir, "Image folder")
    folders = sorted(
        d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
    )
    if not folders:
        raise UserInputError(
            f"Image folder {root!r} has no class "
            "subfolders (one per class, e.g. cat/, dog/)."
        )
    names = class_names(folders, annotations)
    if len(set(names.values())) != len(names):
        raise UserInputError(
            "Two class folders have the same class name: "
            "answer options must be distinct."
        )
    options = [names[f] for f in folders]
    examples = []
    for folder in folders:
        for name in list_images(os.path.join(root, folder)):
            examples.append(
                {
                    "id": f"{folder}/{name}",
                    "image": os.path.join(root, folder, name),
                    "inputs": {"answer_options": options},
                    "label": names[folder],
                }
            )
    return examples


class ClassificationBenchmark(Benchmark):
    """Top-1 accuracy choosing among every class name.

    `from_files(annotations, images)`: `annotations` is optional (class
    names; see `class_names`).

    Metrics: `top1_accuracy`, `num_images`, `num_classes`.
    """

    task = "image_classification"
    results_file = "classification_results.json"

    @classmethod
    def from_files(cls, annotations, images):
        return cls(read_image_folder(images, annotations), f"image folder {images!r}")

    def to_record(self, example, result, out_dir):
        label = result_text(result, "label")
        return prediction_record(example, result, label=str(label))

    def score(self, records, out_dir):
        truth = {ex["id"]: ex["label"] for ex in self.examples}
        write_json(
            os.path.join(out_dir, self.results_file),
            [
                {"file": r["id"], "label": r["label"], "truth": truth[r["id"]]}
                for r in records
            ],
        )
        hits = [r["label"] == truth[r["id"]] for r in records]
        return {
            "top1_accuracy": float(np.mean(hits)),
            "num_images": len(records),
            "num_classes": len(self.examples[0]["inputs"]["answer_options"]),
        }
