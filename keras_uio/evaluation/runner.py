"""`run_evaluation`: a model over a benchmark, resumable, then scored.

Files written to the output folder:

- `predictions.jsonl`: one JSON line per example (`"id"` and what the
  metric needs), appended and flushed batch by batch. A rerun into the
  same folder skips the ids already there, so an interrupted run goes on
  where it stopped (a line cut short by the interruption is dropped).
- `run.json`: the task, preset, data and decoding options; a rerun with
  different ones is refused rather than mixed into the same predictions.
- the benchmark's results file in its metric library's format (e.g.
  `captions_results.json`, COCO `detection_results.json`).
- `metrics.json`: the metrics, the counts, and notes on how they were
  computed.

Example:
>>> import tempfile
>>> from keras_uio.evaluation.benchmark import Benchmark
>>> class Parrot:                       # stands in for a UnifiedIO
...     preprocessor = object()
...     def predict_tasks(self, examples, **kwargs):
...         return [{"answer": ex["question"]} for ex in examples]
>>> class Echo(Benchmark):
...     task = "vqa"
...     def model_input(self, example):
...         return {"task": "vqa", **example["inputs"]}
...     def to_record(self, example, result, out_dir):
...         return {"id": example["id"], "answer": result["answer"]}
...     def score(self, records, out_dir):
...         return {"right": sum(r["answer"] == "yes" for r in records)}
>>> bench = Echo([{"id": str(i), "image": None,
...                "inputs": {"question": q}} for i, q in enumerate(["yes", "no"])],
...              "two questions")
>>> metrics = run_evaluation(Parrot(), bench, tempfile.mkdtemp(), progress=False)
>>> metrics["right"], metrics["num_examples"], metrics["num_predicted"]
(1, 2, 2)
"""

import os
import sys
import time

from keras_uio.errors import UserInputError
from keras_uio.evaluation.files import append_jsonl
from keras_uio.evaluation.files import load_json
from keras_uio.evaluation.files import read_jsonl
from keras_uio.evaluation.files import write_json

PREDICTIONS_FILE = "predictions.jsonl"
METRICS_FILE = "metrics.json"
RUN_FILE = "run.json"


def _check_count(value, name, minimum):
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < minimum:
        raise UserInputError(
            f"`{name}` must be an int >= {minimum}. Received: {value!r}"
        )
    return value


def _check_run(out_dir, run):
    """Writes `run.json`, or checks a previous run's against it."""
    path = os.path.join(out_dir, RUN_FILE)
    if os.path.exists(path) and os.path.exists(os.path.join(out_dir, PREDICTIONS_FILE)):
        before = load_json(path, "Run file")
        changed = {k: (before.get(k), v) for k, v in run.items() if before.get(k) != v}
        if changed:
            what = "; ".join(
                f"{k}: {a!r} before, {b!r} now" for k, (a, b) in changed.items()
            )
            raise UserInputError(
                f"{out_dir!r} holds predictions of another run ({what}). "
                "Choose another output folder, or delete "
                f"{PREDICTIONS_FILE} there to start over."
            )
    write_json(path, run)


def _batches(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _progress_bar(total, progress):
    if progress is None:
        progress = sys.stdout.isatty()
    if not progress or not total:
        return None
    import keras

    return keras.utils.Progbar(total, unit_name="example")


def predict_pending(
    model, benchmark, examples, out_dir, batch_size=8, progress=None, **predict_kwargs
):
    """Predicts the `examples` not yet in `predictions.jsonl`, appending
    one line each, batch by batch.

    Returns:
        `(records, count)`: `{id: record}` of every line, and how many
        examples this call predicted.
    """
    path = os.path.join(out_dir, PREDICTIONS_FILE)
    done = read_jsonl(path)
    pending = [ex for ex in examples if ex["id"] not in done]
    bar = _progress_bar(len(pending), progress)
    for batch in _batches(pending, batch_size):
        inputs = [benchmark.model_input(ex) for ex in batch]
        results = model.predict_tasks(inputs, **predict_kwargs)
        records = [
            benchmark.to_record(ex, res, out_dir) for ex, res in zip(batch, results)
        ]
        append_jsonl(path, records)
        done.update((r["id"], r) for r in records)
        if bar is not None:
            bar.add(len(batch))
    return done, len(pending)


def run_evaluation(
    model,
    benchmark,
    out_dir,
    batch_size=8,
    limit=None,
    greedy=False,
    num_decodes=1,
    seed=0,
    progress=None,
    run_info=None,
):
    """Runs `model` on `benchmark` and scores it; returns the metrics.

    Args:
        model: a `keras_uio.UnifiedIO` with a preprocessor.
        benchmark: a `Benchmark` (see `load_benchmark`).
        out_dir: the output folder (created; see the module doc).
        batch_size: examples per `predict_tasks` call.
        limit: evaluate only the first `limit` examples.
        greedy, num_decodes, seed: passed to `predict_tasks`.
        progress: show a `keras.utils.Progbar`; `None` (default) shows it
            when stdout is a terminal.
        run_info: extra facts that identify the run (e.g. the preset),
            kept in `run.json` and `metrics.json`.

    Returns:
        the metrics dict also written to `out_dir/metrics.json`, with
        `task`, `num_examples`, `num_predicted` (examples predicted in
        this call; 0 when every prediction was already there),
        `examples_with_errors` (outputs the task's parser complained
        about), `notes` and `seconds`.
    """
    if getattr(model, "preprocessor", None) is None:
        raise UserInputError(
            "The model has no tokenizer: convert its preset with "
            "`--vocabulary spiece.model`."
        )
    _check_count(batch_size, "batch_size", 1)
    if limit is not None:
        _check_count(limit, "limit", 1)
    start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    run = {
        "task": benchmark.task,
        "source": benchmark.source,
        "greedy": bool(greedy),
        "num_decodes": num_decodes,
        "seed": seed,
        **(run_info or {}),
    }
    _check_run(out_dir, run)
    examples = benchmark.examples[:limit]
    done, predicted = predict_pending(
        model,
        benchmark,
        examples,
        out_dir,
        batch_size,
        progress,
        greedy=greedy,
        num_decodes=num_decodes,
        seed=seed,
    )
    records = [done[ex["id"]] for ex in examples]
    metrics = {
        "task": benchmark.task,
        **(run_info or {}),
        **benchmark.score(records, out_dir),
        "num_examples": len(records),
        "num_predicted": predicted,
        "examples_with_errors": sum(bool(r.get("errors")) for r in records),
        "notes": list(benchmark.notes),
        "seconds": round(time.time() - start, 1),
    }
    write_json(os.path.join(out_dir, METRICS_FILE), metrics)
    return metrics
