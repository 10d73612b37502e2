"""Depth estimation (NYU Depth v2): RMSE, abs-rel and delta < 1.25.

The image folder holds the RGB images; the annotation folder holds, for
each image, its true depth under the same name stem: `.npy` (float
`[H, W]` in metres) or a 16-bit `.png` in millimetres (value / 1000; the
usual export of the NYU v2 labelled set). Zero, negative or non-finite
depth is "no measurement". Errors are computed per image on the valid
pixels (`dense_metrics.depth_errors`, depth range (0.001, 10] m) and
averaged over images.

Predicted depth maps are written as 16-bit PNGs in millimetres,
`depth/{image stem}.png`, readable as annotations of the same format.

Example:
>>> import os, tempfile
>>> import numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "a.png")
>>> write_depth_png(path, np.full((2, 3), 1.5))
>>> read_depth_file(path).tolist()
[[1.5, 1.5, 1.5], [1.5, 1.5, 1.5]]
>>> bench = DepthBenchmark([{"id": "a", "image": "a.png", "inputs": {},
...                          "depth_file": "a.npy"}], "hand-made")
>>> bench.score([{"id": "a", "rmse": 0.5, "abs_rel": 0.1, "delta1": 0.9,
...               "valid_pixels": 10}], ".")["depth_rmse"]
0.5
"""

import os

import numpy as np

from keras_uio.errors import UserInputError
from keras_uio.evaluation.benchmark import Benchmark
from keras_uio.evaluation.dense_metrics import depth_errors
from keras_uio.evaluation.files import prediction_record
from keras_uio.evaluation.files import save_result
from keras_uio.evaluation.files import stem_examples

PNG_DEPTH_SCALE = 1000.0  # 16-bit PNG depth is in millimetres


def read_depth_file(path, png_scale=PNG_DEPTH_SCALE):
    """Depth `[H, W]` float64 (metres) from `.npy` or a 16-bit `.png`."""
    path = os.fspath(path)
    if path.endswith(".npy"):
        depth = np.load(path)
        if depth.ndim == 3 and depth.shape[-1] == 1:
            depth = depth[..., 0]
        if depth.ndim != 2:
            raise UserInputError(
                f"Depth file {path!r} must hold an [H, W] "
                f"array. Received shape: {depth.shape}"
            )
        return depth.astype(np.float64)
    from PIL import Image

    with Image.open(path) as image:
        if image.mode not in ("I;16", "I;16B", "I"):
            raise UserInputError(
                f"Depth PNG {path!r} must be 16-bit (depth in millimetres); "
                f"it is PIL mode {image.mode!r}."
            )
        return np.asarray(image, np.float64) / png_scale


def read_depth_folder(images_dir, depth_dir):
    """Examples of an image folder + depth folder: `id` (the image's name
    stem), `image`, `inputs` ({}), `depth_file`."""
    return stem_examples(images_dir, depth_dir, (".npy", ".png"), "depth", "depth_file")


def write_depth_png(path, depth, png_scale=PNG_DEPTH_SCALE):
    """Writes depth (metres) as a 16-bit PNG (millimetres)."""
    from PIL import Image

    values = np.clip(np.nan_to_num(np.asarray(depth, np.float64)) * png_scale, 0, 65535)
    Image.fromarray(values.round().astype(np.uint16)).save(path)


def mean_of(records, key):
    """Mean of `record[key]` over the records where it is not `None`."""
    values = [r[key] for r in records if r.get(key) is not None]
    return float(np.mean(values)) if values else None


class DepthBenchmark(Benchmark):
    """Depth maps against true depth, per image then averaged.

    `from_files(annotations, images)`: `annotations` is the folder of
    true depth files.

    Metrics: `depth_rmse` (metres), `depth_abs_rel`, `depth_delta1`
    (share of pixels with max(p/t, t/p) < 1.25), `num_images`,
    `images_without_valid_pixels`.
    """

    task = "depth"
    results_folder = "depth"

    @classmethod
    def from_files(cls, annotations, images):
        return cls(
            read_depth_folder(images, annotations), f"depth folder {annotations!r}"
        )

    def to_record(self, example, result, out_dir):
        name = save_result(
            out_dir,
            self.results_folder,
            f"{example['id']}.png",
            write_depth_png,
            result["depth"],
        )
        errors = depth_errors(result["depth"], read_depth_file(example["depth_file"]))
        return prediction_record(example, result, **errors, file=name)

    def score(self, records, out_dir):
        return {
            "depth_rmse": mean_of(records, "rmse"),
            "depth_abs_rel": mean_of(records, "abs_rel"),
            "depth_delta1": mean_of(records, "delta1"),
            "num_images": len(records),
            "images_without_valid_pixels": sum(not r["valid_pixels"] for r in records),
        }
