"""COCO Captions: a COCO-format caption file, scored by BLEU and CIDEr-D.

The annotation file is `captions_val2014.json` (or the Karpathy test
split in the same format): `{"images": [{"id", "file_name"}],
"annotations": [{"image_id", "caption"}]}`. One example per image with
at least one caption, in the file's image order.

Predictions are written as `captions_results.json`, `[{"image_id": 42,
"caption": "..."}]`, the results format of the COCO caption evaluation.

Example:
>>> import json, os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> folder = tempfile.mkdtemp()
>>> Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(
...     os.path.join(folder, "a.png"))
>>> data = {"images": [{"id": 7, "file_name": "a.png"}],
...         "annotations": [{"id": 1, "image_id": 7,
...                          "caption": "A black square."}]}
>>> with open(os.path.join(folder, "captions.json"), "w") as f:
...     json.dump(data, f)
>>> bench = CaptioningBenchmark.from_files(
...     os.path.join(folder, "captions.json"), folder)
>>> bench.examples[0]["references"]
['A black square.']
"""

import os

from keras_uio.errors import UserInputError
from keras_uio.evaluation.benchmark import Benchmark
from keras_uio.evaluation.caption_scorers import caption_metrics
from keras_uio.evaluation.coco import images_by_id
from keras_uio.evaluation.coco import load_coco
from keras_uio.evaluation.files import field
from keras_uio.evaluation.files import prediction_record
from keras_uio.evaluation.files import result_text
from keras_uio.evaluation.files import write_fields


def read_coco_captions(annotations, images_dir):
    """Examples of a COCO caption file: `id`, `image`, `inputs` ({}),
    `image_id`, `references` (its captions)."""
    what = "COCO captions file"
    data = load_coco(annotations, what, ("images", "annotations"))
    files = images_by_id(data, images_dir, annotations, what)
    captions = {}
    for k, entry in enumerate(data["annotations"]):
        where = f"{what} {annotations!r} annotations[{k}]"
        image_id = field(entry, "image_id", where)
        if image_id not in files:
            raise UserInputError(
                f"{where}: image_id {image_id} is not in its 'images'."
            )
        captions.setdefault(image_id, []).append(str(field(entry, "caption", where)))
    return [
        {
            "id": str(image_id),
            "image": path,
            "inputs": {},
            "image_id": image_id,
            "references": captions[image_id],
        }
        for image_id, path in files.items()
        if image_id in captions
    ]


class CaptioningBenchmark(Benchmark):
    """COCO captions, scored by `caption_metrics` (BLEU-1..4, CIDEr-D;
    with Java the PTB tokenizer, METEOR and SPICE as well).

    Args:
        use_java: see `caption_metrics` (`None`: when `java` is found).
    """

    task = "captioning"
    results_file = "captions_results.json"

    def __init__(self, examples, source, use_java=None):
        super().__init__(examples, source)
        self.use_java = use_java

    @classmethod
    def from_files(cls, annotations, images):
        return cls(
            read_coco_captions(annotations, images),
            f"COCO captions file {annotations!r}",
        )

    def to_record(self, example, result, out_dir):
        caption = result_text(result, "caption")
        return prediction_record(
            example, result, image_id=example["image_id"], caption=str(caption).strip()
        )

    def score(self, records, out_dir):
        write_fields(
            os.path.join(out_dir, self.results_file), records, ("image_id", "caption")
        )
        truth = {ex["id"]: ex for ex in self.examples}
        references = {r["image_id"]: truth[r["id"]]["references"] for r in records}
        candidates = {r["image_id"]: r["caption"] for r in records}
        scores, notes = caption_metrics(references, candidates, use_java=self.use_java)
        self.notes.extend(notes)
        return {**scores, "num_images": len(records)}
