"""VQA v2: a question file and an annotation file, scored by VQA accuracy.

The files are the official JSON pair, e.g.
`v2_OpenEnded_mscoco_val2014_questions.json`:
`{"data_subtype": "val2014", "questions": [{"question_id": 1,
"image_id": 42, "question": "What color is the bus?"}]}` and
`v2_mscoco_val2014_annotations.json`: `{"annotations": [{"question_id":
1, "image_id": 42, "answer_type": "other", "answers": [{"answer":
"red"}, ... 10 answers]}]}`. Images are found in the image folder as
`COCO_{data_subtype}_{image_id:012d}.jpg` (the VQA / COCO 2014 names),
`{image_id:012d}.jpg` (COCO 2017) or `{image_id}.jpg`, each also `.png`.

Predictions are written as the official results file, `vqa_results.json`:
`[{"question_id": 1, "answer": "red"}]` (what the evaluation server and
`vqaEval.py` read).

Example:
>>> import json, os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> folder = tempfile.mkdtemp()
>>> Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(
...     os.path.join(folder, "COCO_val2014_000000000042.png"))
>>> questions = {"data_subtype": "val2014", "questions": [
...     {"question_id": 1, "image_id": 42, "question": "What color?"}]}
>>> answers = {"annotations": [{"question_id": 1, "image_id": 42,
...     "answer_type": "other", "answers": [{"answer": "Red"}] * 10}]}
>>> for name, data in (("q.json", questions), ("a.json", answers)):
...     with open(os.path.join(folder, name), "w") as f:
...         json.dump(data, f)
>>> bench = VQABenchmark.from_files(os.path.join(folder, "a.json"), folder,
...                                 questions=os.path.join(folder, "q.json"))
>>> bench.examples[0]["inputs"]
{'question': 'What color?'}
>>> bench.score([{"id": "1", "question_id": 1, "answer": "red"}], folder)
{'vqa_accuracy': 1.0, 'vqa_accuracy_other': 1.0, 'num_questions': 1}
"""

import os

import numpy as np

from keras_uio.errors import UserInputError
from keras_uio.evaluation.benchmark import Benchmark
from keras_uio.evaluation.files import field
from keras_uio.evaluation.files import find_image
from keras_uio.evaluation.files import load_json
from keras_uio.evaluation.files import prediction_record
from keras_uio.evaluation.files import result_text
from keras_uio.evaluation.files import write_fields
from keras_uio.evaluation.vqa_metrics import vqa_accuracy

QUESTIONS_EXAMPLE = (
    '{"data_subtype": "val2014", "questions": [{"question_id":'
    ' 1, "image_id": 42, "question": "What color?"}]}'
)
ANNOTATIONS_EXAMPLE = (
    '{"annotations": [{"question_id": 1, "answer_type": '
    '"other", "answers": [{"answer": "red"}, ...]}]}'
)


def image_names(image_id, data_subtype=None):
    """The file names an image of VQA v2 may have, most likely first.

    Example:
    >>> image_names(42, "val2014")[:2]
    ['COCO_val2014_000000000042.jpg', 'COCO_val2014_000000000042.png']
    """
    stems = [str(image_id)]
    if isinstance(image_id, int) or str(image_id).isdigit():
        padded = f"{int(image_id):012d}"
        stems.insert(0, padded)
        if data_subtype:
            stems.insert(0, f"COCO_{data_subtype}_{padded}")
    return [stem + ext for stem in stems for ext in (".jpg", ".png")]


def default_questions_file(annotations_file, annotations):
    """The question file the VQA release puts beside `annotations_file`.

    `v2_mscoco_val2014_annotations.json` goes with
    `v2_OpenEnded_mscoco_val2014_questions.json` (from the annotation
    file's `data_type` and `data_subtype`).
    """
    subtype = annotations.get("data_subtype")
    if not subtype:
        return None
    folder = os.path.dirname(os.fspath(annotations_file))
    data_type = annotations.get("data_type", "mscoco")
    for prefix in ("v2_OpenEnded", "OpenEnded"):
        path = os.path.join(folder, f"{prefix}_{data_type}_{subtype}_questions.json")
        if os.path.isfile(path):
            return path
    return None


def read_vqa(questions_file, annotations_file, images_dir):
    """Examples of a VQA v2 question / annotation pair, in question order.

    Returns:
        list of dicts: `id` (the question id as a string), `image`,
        `inputs` (`{"question": ...}`), `question_id`, `answers` (the
        human answers), `answer_type`.
    """
    questions = load_json(
        questions_file, "VQA question file", ("questions",), QUESTIONS_EXAMPLE
    )
    annotations = load_json(
        annotations_file, "VQA annotation file", ("annotations",), ANNOTATIONS_EXAMPLE
    )
    subtype = questions.get("data_subtype") or annotations.get("data_subtype")
    truth = {}
    for k, entry in enumerate(annotations["annotations"]):
        where = f"VQA annotation file {annotations_file!r} annotations[{k}]"
        truth[field(entry, "question_id", where)] = (entry, where)
    images, examples = {}, []
    for k, entry in enumerate(questions["questions"]):
        where = f"VQA question file {questions_file!r} questions[{k}]"
        question_id = field(entry, "question_id", where)
        image_id = field(entry, "image_id", where)
        if question_id not in truth:
            raise UserInputError(
                f"{where}: question {question_id} has no entry in the "
                f"annotation file {annotations_file!r}."
            )
        answer, answer_where = truth[question_id]
        if image_id not in images:
            images[image_id] = find_image(
                images_dir, image_names(image_id, subtype), f"{where} image"
            )
        examples.append(
            {
                "id": str(question_id),
                "image": images[image_id],
                "inputs": {"question": field(entry, "question", where)},
                "question_id": question_id,
                "answers": [
                    field(a, "answer", f"{answer_where} answers")
                    for a in field(answer, "answers", answer_where)
                ],
                "answer_type": answer.get("answer_type"),
            }
        )
    return examples


class VQABenchmark(Benchmark):
    """VQA v2 (or any data in its JSON format), scored by VQA accuracy.

    `from_files(annotations, images, questions=None)`: without
    `questions`, the question file the VQA release names after the
    annotation file is looked for beside it.

    Metrics: `vqa_accuracy` (mean over questions, in [0, 1]; papers
    report it x 100), `vqa_accuracy_{answer type}` (`yes_no`, `number`,
    `other` in VQA v2) and `num_questions`.
    """

    task = "vqa"
    options = ("questions",)
    results_file = "vqa_results.json"

    @classmethod
    def from_files(cls, annotations, images, questions=None):
        if questions is None:
            data = load_json(
                annotations,
                "VQA annotation file",
                ("annotations",),
                ANNOTATIONS_EXAMPLE,
            )
            questions = default_questions_file(annotations, data)
            if questions is None:
                raise UserInputError(
                    f"No VQA question file found beside {annotations!r}: "
                    "pass it with --questions (e.g. "
                    "v2_OpenEnded_mscoco_val2014_questions.json)."
                )
        examples = read_vqa(questions, annotations, images)
        return cls(examples, f"VQA files {questions!r} + {annotations!r}")

    def to_record(self, example, result, out_dir):
        answer = result_text(result, "answer")
        return prediction_record(
            example,
            result,
            question_id=example["question_id"],
            answer=str(answer).strip(),
        )

    def score(self, records, out_dir):
        write_fields(
            os.path.join(out_dir, self.results_file), records, ("question_id", "answer")
        )
        truth = {ex["id"]: ex for ex in self.examples}
        by_type = {}
        scores = []
        for record in records:
            example = truth[record["id"]]
            score = vqa_accuracy(record["answer"], example["answers"])
            scores.append(score)
            if example.get("answer_type"):
                by_type.setdefault(example["answer_type"], []).append(score)
        metrics = {"vqa_accuracy": float(np.mean(scores))}
        for name, values in sorted(by_type.items()):
            key = name.replace("/", "_").replace(" ", "_")
            metrics[f"vqa_accuracy_{key}"] = float(np.mean(values))
        metrics["num_questions"] = len(records)
        return metrics
