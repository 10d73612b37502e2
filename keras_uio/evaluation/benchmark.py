"""`Benchmark`: a labelled dataset of one task and how to score it.

Example:
>>> class Echo(Benchmark):
...     task = "captioning"
...     def to_record(self, example, result, out_dir):
...         return {"id": example["id"], "caption": result["caption"]}
...     def score(self, records, out_dir):
...         return {"num_captions": len(records)}
>>> bench = Echo([{"id": "1", "image": "a.png", "inputs": {}}], "here")
>>> len(bench), bench.examples[0]["id"]
(1, '1')
"""

from keras_uio.errors import UserInputError


class Benchmark:
    """A dataset in a standard format, read into task examples.

    Subclasses set `task` (the `predict_tasks` task name) and implement
    `from_files` (the reader), `to_record` and `score`; `run_evaluation`
    does the rest.

    Args:
        examples: list of dicts, each with `"id"` (a unique string: the
            key of its line in `predictions.jsonl`), `"image"` (the image
            file) and `"inputs"` (the task's other inputs, e.g.
            `{"question": ...}`), plus whatever the subclass keeps to
            score it (answers, boxes, ...).
        source: where the examples come from, for messages.

    Attributes:
        task: the task name given to `predict_tasks`.
        options: names of the extra `from_files` options it accepts.
        notes: remarks `score` adds to `metrics.json` (e.g. which caption
            scorers ran).
    """

    task = None
    options = ()

    def __init__(self, examples, source):
        self.examples = list(examples)
        self.source = source
        self.notes = []
        seen = set()
        for example in self.examples:
            if example["id"] in seen:
                raise UserInputError(
                    f"{source}: the example id {example['id']!r} occurs "
                    "twice; ids must be unique."
                )
            seen.add(example["id"])
        if not self.examples:
            raise UserInputError(f"{source}: no examples to evaluate.")

    def __len__(self):
        return len(self.examples)

    @classmethod
    def from_files(cls, annotations, images, **options):
        """Reads the benchmark from its annotation file and image folder."""
        raise NotImplementedError

    def model_input(self, example):
        """The `predict_tasks` dict of `example` (its image read)."""
        from keras_uio.preprocessing.images import read_image

        return {
            "task": self.task,
            "image": read_image(example["image"]),
            **example["inputs"],
        }

    def to_record(self, example, result, out_dir):
        """A JSON-safe line of `predictions.jsonl`: `"id"` and what
        `score` needs of the `predict_tasks` result."""
        raise NotImplementedError

    def score(self, records, out_dir):
        """Metrics (a dict) of `records`, one per example in order; writes
        the predictions in the metric library's own format to `out_dir`."""
        raise NotImplementedError
