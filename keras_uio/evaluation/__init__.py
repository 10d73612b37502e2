"""Measure like the paper: a preset over a benchmark, standard metrics.

`load_benchmark(task, annotations, images)` reads a dataset in its
community format (COCO captions / instances / keypoints, RefCOCO-style
refs, VQA v2 question + annotation files, a class-per-folder image
folder, depth or normal maps beside their images), `run_evaluation`
runs a `UnifiedIO` over it through `predict_tasks` (batched, resumable)
and scores it with the reference metric code where there is one
(`pycocotools` for COCO AP, `pycocoevalcap` for BLEU / CIDEr-D / METEOR /
SPICE) and the published definitions elsewhere (VQA accuracy, RefCOCO
accuracy at IoU 0.5, NYU depth and normal errors). `keras-uio evaluate`
is the command-line form.

Example:
```python
# not run: needs a converted checkpoint, COCO annotations and the val2014/ images
import keras_uio
from keras_uio.evaluation import load_benchmark, run_evaluation

model = keras_uio.UnifiedIO.from_preset("uio_tiny_easyvqa")
bench = load_benchmark("captioning", "captions_val2014.json", "val2014/")
metrics = run_evaluation(model, bench, "eval_captions", limit=100)
metrics["cider_d"]
```
"""

from keras_uio.evaluation.benchmark import Benchmark
from keras_uio.evaluation.benchmarks import BENCHMARKS
from keras_uio.evaluation.benchmarks import load_benchmark
from keras_uio.evaluation.caption_scorers import caption_metrics
from keras_uio.evaluation.coco import coco_ap
from keras_uio.evaluation.dense_metrics import depth_errors
from keras_uio.evaluation.dense_metrics import mask_iou
from keras_uio.evaluation.dense_metrics import normal_angles
from keras_uio.evaluation.dense_metrics import normal_metrics
from keras_uio.evaluation.referring_expression import refexp_accuracy
from keras_uio.evaluation.runner import run_evaluation
from keras_uio.evaluation.vqa_metrics import normalize_answer
from keras_uio.evaluation.vqa_metrics import vqa_accuracy
