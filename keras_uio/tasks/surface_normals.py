"""Surface normal estimation: image -> RGB normal image -> unit vectors."""

from keras_uio.preprocessing.dense import image_to_normals
from keras_uio.preprocessing.dense import normals_to_image
from keras_uio.tasks.depth import check_dense
from keras_uio.tasks.outputs import to_input_frame
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.task import Task


@register_task
class SurfaceNormalsTask(Task):
    """Per-pixel surface normals, x/y/z drawn as r/g/b (`(n + 1) / 2`).

    Inputs: `image`. Training target: `normals` (`[H, W, 3]`, any length;
    zero vectors are missing and become grey). Result: `"normals"` float32
    `[H, W, 3]` unit vectors (zero where the colour is mid-grey), `"image"`
    (the normal image at input size), `"raw_image"`.

    Example:
    >>> import numpy as np
    >>> task = SurfaceNormalsTask()
    >>> inputs, meta = task.encode_inputs(image=np.zeros((48, 64, 3), "uint8"))
    >>> inputs["prompt"]
    'What is the surface normal of the image ?'
    >>> out = np.zeros((256, 256, 3), "float32"); out[..., 2] = 1.0
    >>> task.decode(image=out, meta=meta)["normals"][0, 0].tolist()
    [-0.5773502588272095, -0.5773502588272095, 0.5773502588272095]
    """

    name = "surface_normals"
    output_mode = "image"
    required = ("image",)
    targets = ("normals",)
    prompt_template = "What is the surface normal of the image ?"
    max_text_length = 1

    def _targets(self, targets, inputs, meta):
        normals = check_dense(
            targets["normals"], meta["image_size"], "normals", channels=3
        )
        return {"target_image": normals_to_image(normals)}

    def _decode(self, raw, result, meta):
        image = to_input_frame(
            result["raw_image"], meta.get("image_size"), self.interpolation
        )
        result["image"] = image
        result["normals"] = image_to_normals(image)
