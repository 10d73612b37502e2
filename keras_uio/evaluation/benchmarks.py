"""Which `Benchmark` reads the data of each task: `load_benchmark`.

| task | annotations | images |
| --- | --- | --- |
| `vqa` | VQA v2 annotation JSON (+ `questions`) | COCO images |
| `captioning` | COCO captions JSON | COCO images |
| `object_detection` | COCO instances JSON | COCO images |
| `keypoints` | COCO person-keypoints JSON | COCO images |
| `referring_expression` | COCO-like JSON with `refs` (+ `split`) | COCO images |
| `segmentation` | COCO instances JSON | COCO images |
| `image_classification` | optional class-name JSON | one subfolder per class |
| `depth` | folder of `.npy` / 16-bit `.png` depth | RGB images |
| `surface_normals` | folder of `.npy` / RGB `.png` normals | RGB images |

Example:
>>> sorted(BENCHMARKS)[:3]
['captioning', 'depth', 'image_classification']
>>> load_benchmark("inpainting", "x.json", ".")
Traceback (most recent call last):
...
keras_uio.errors.UserInputError: No benchmark reader for task 'inpainting'. ...
"""

import os

from keras_uio.errors import UserInputError
from keras_uio.evaluation.captioning import CaptioningBenchmark
from keras_uio.evaluation.classification import ClassificationBenchmark
from keras_uio.evaluation.depth import DepthBenchmark
from keras_uio.evaluation.detection import DetectionBenchmark
from keras_uio.evaluation.files import check_folder
from keras_uio.evaluation.keypoints import KeypointsBenchmark
from keras_uio.evaluation.referring_expression import ReferringExpressionBenchmark
from keras_uio.evaluation.segmentation import SegmentationBenchmark
from keras_uio.evaluation.surface_normals import SurfaceNormalsBenchmark
from keras_uio.evaluation.vqa import VQABenchmark

BENCHMARKS = {
    cls.task: cls
    for cls in (
        VQABenchmark,
        CaptioningBenchmark,
        DetectionBenchmark,
        KeypointsBenchmark,
        ReferringExpressionBenchmark,
        SegmentationBenchmark,
        ClassificationBenchmark,
        DepthBenchmark,
        SurfaceNormalsBenchmark,
    )
}
# Tasks that can run without an annotation file.
ANNOTATIONS_OPTIONAL = ("image_classification",)


def load_benchmark(task, annotations, images, **options):
    """Reads a dataset in its standard format for `task`.

    Args:
        task: a key of `BENCHMARKS`.
        annotations: the annotation file (or folder, for depth and
            normals); `None` only for `image_classification`.
        images: the image folder.
        **options: task-specific options, `None` meaning unset:
            `questions` (vqa), `split` (referring_expression).

    Returns:
        a `Benchmark`.

    Raises:
        UserInputError: unknown task, an option the task does not take,
            or bad files (the message names the file and field).
        FileNotFoundError: a missing file or image.
    """
    if task not in BENCHMARKS:
        raise UserInputError(
            f"No benchmark reader for task {task!r}. Tasks with one: "
            f"{', '.join(sorted(BENCHMARKS))}."
        )
    cls = BENCHMARKS[task]
    given = {k: v for k, v in options.items() if v is not None}
    unused = sorted(set(given) - set(cls.options))
    if unused:
        raise UserInputError(
            f"Task {task!r} takes no {', '.join(unused)} option"
            f"{'s' if len(unused) > 1 else ''}."
        )
    if annotations is None and task not in ANNOTATIONS_OPTIONAL:
        raise UserInputError(f"Task {task!r} needs an annotation file (--annotations).")
    check_folder(images, "Image folder")
    # Absolute paths: a rerun from another folder is the same run.
    given = {k: os.path.abspath(v) if k == "questions" else v for k, v in given.items()}
    if annotations is not None:
        annotations = os.path.abspath(os.fspath(annotations))
    return cls.from_files(annotations, os.path.abspath(images), **given)
