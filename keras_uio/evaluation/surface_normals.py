"""Surface normals (NYU Depth v2): mean and median angular error.

The image folder holds the RGB images; the annotation folder holds, for
each image, its true normals under the same name stem: `.npy` (float
`[H, W, 3]`, any length; zero vectors are unlabelled) or an RGB `.png`
with each component drawn as `(n + 1) / 2` (mid-grey: unlabelled). The
angular error is pooled over every labelled pixel of every image
(`dense_metrics.normal_metrics`).

Predicted normals are written as RGB PNGs in the same encoding,
`surface_normals/{image stem}.png`.

Example:
>>> import os, tempfile
>>> import numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "a.png")
>>> write_normals_png(path, np.tile([0.0, 0.0, 1.0], (2, 2, 1)))
>>> read_normals_file(path)[0, 0].round(2).tolist()
[0.0, 0.0, 1.0]
"""

import os

import numpy as np

from keras_uio.errors import UserInputError
from keras_uio.evaluation.benchmark import Benchmark
from keras_uio.evaluation.dense_metrics import angle_summary
from keras_uio.evaluation.dense_metrics import normal_angles
from keras_uio.evaluation.dense_metrics import normal_metrics
from keras_uio.evaluation.files import prediction_record
from keras_uio.evaluation.files import save_result
from keras_uio.evaluation.files import stem_examples


def read_normals_file(path):
    """Normals `[H, W, 3]` float64 from `.npy` or an RGB `.png`."""
    path = os.fspath(path)
    if path.endswith(".npy"):
        normals = np.load(path).astype(np.float64)
    else:
        from PIL import Image

        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), np.float64)
        normals = rgb / 255.0 * 2.0 - 1.0
        grey = np.all(np.abs(rgb - 127.5) <= 1.0, axis=-1)
        normals[grey] = 0.0
    if normals.ndim != 3 or normals.shape[-1] != 3:
        raise UserInputError(
            f"Normals file {path!r} must hold [H, W, 3] "
            f"vectors. Received shape: {normals.shape}"
        )
    return normals


def write_normals_png(path, normals):
    """Writes normals as an RGB PNG, `(n + 1) / 2` per component."""
    from PIL import Image

    values = (
        np.clip(np.nan_to_num(np.asarray(normals, np.float64)), -1, 1) + 1.0
    ) / 2.0
    Image.fromarray((values * 255.0).round().astype(np.uint8)).save(path)


class SurfaceNormalsBenchmark(Benchmark):
    """Normal maps against true normals, pooled over pixels.

    `from_files(annotations, images)`: `annotations` is the folder of
    true normal files.

    Metrics: `mean_angle_error`, `median_angle_error` (degrees),
    `within_11.25`, `within_22.5`, `within_30.0` (share of pixels),
    `num_images`.
    """

    task = "surface_normals"
    results_folder = "surface_normals"

    @classmethod
    def from_files(cls, annotations, images):
        examples = stem_examples(
            images, annotations, (".npy", ".png"), "normals", "normals_file"
        )
        return cls(examples, f"normals folder {annotations!r}")

    def to_record(self, example, result, out_dir):
        name = save_result(
            out_dir,
            self.results_folder,
            f"{example['id']}.png",
            write_normals_png,
            result["normals"],
        )
        angles = normal_angles(
            result["normals"], read_normals_file(example["normals_file"])
        )
        return prediction_record(example, result, **angle_summary(angles), file=name)

    def score(self, records, out_dir):
        return {**normal_metrics(records), "num_images": len(records)}
