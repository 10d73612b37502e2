"""Grounded VQA: image + question -> answer text and the answer's mask.

Prompt source: no published prompt found; ours. The released inference
code (allenai/unified-io-inference, `uio/runner.py`) has no grounded-VQA
method, and we found no prompt for it in the paper (arXiv 2206.08916):
its appendix was not available to check, so nothing here is claimed to be
the paper's. Ours is `What is the answer to " {question} " and where is
it ?` (question lower-cased as in VQA): a distinct prompt keeps the task
apart from plain VQA, and the quoted span follows the runner's prompts.
The mask is generated as an image: white where the answer is, black
elsewhere.
"""

import numpy as np

from keras_uio.preprocessing.dense import remove_small_components
from keras_uio.tasks.checks import check_text
from keras_uio.tasks.outputs import to_input_frame
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


def check_mask(mask, image_size, name="mask"):
    """A binary `[H, W]` mask of the input image's size -> bool array."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2 or (image_size is not None and mask.shape != tuple(image_size)):
        raise ValueError(
            f"`{name}` must be a binary `[H, W]` mask of the image's size "
            f"{tuple(image_size) if image_size else ''}. Received shape: "
            f"{mask.shape}"
        )
    return mask.astype(bool)


def mask_to_image(mask):
    """Bool `[H, W]` -> float32 white-on-black `[H, W, 3]`."""
    return np.repeat(mask[..., None], 3, -1).astype(np.float32)


def image_to_mask(image, threshold=0.5, min_size=8):
    """Grey level above `threshold`, small components removed."""
    return remove_small_components(image.mean(-1) > threshold, min_size)


@register_task
class GroundedVQATask(TextTask):
    """Answer a question and segment the part of the image that answers it.

    Inputs: `image`, `question`. Training targets: `answer`, `mask`
    (`[H, W]` booleans). Result: `"answer"`, `"mask"` (bool `[H, W]`, input
    size), `"image"` (the mask image at input size).

    Args:
        threshold: grey level above which a pixel is in the mask.
        min_size: components with fewer pixels are dropped.
        **kwargs: see `Task`.

    Example:
    >>> import numpy as np
    >>> task = GroundedVQATask()
    >>> inputs, meta = task.encode_inputs(image=np.zeros((32, 64, 3), "uint8"),
    ...                                   question="What is this?")
    >>> inputs["prompt"]
    'What is the answer to " what is this? " and where is it ?'
    >>> out = np.zeros((256, 256, 3), "float32"); out[:64, :64] = 1
    >>> r = task.decode("a can", out, meta)
    >>> r["answer"], r["mask"].shape, int(r["mask"].sum())
    ('a can', (32, 64), 256)
    """

    name = "grounded_vqa"
    output_mode = "text_and_image"
    required = ("image", "question")
    targets = ("answer", "mask")
    prompt_template = 'What is the answer to " {} " and where is it ?'
    answer_key = "answer"

    def __init__(self, threshold=0.5, min_size=8, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)
        self.min_size = int(min_size)

    def _prompt_args(self, inputs, meta):
        return (check_text(inputs["question"], "question").lower(),)

    def _targets(self, targets, inputs, meta):
        mask = check_mask(targets["mask"], meta["image_size"])
        return {
            "target_text": check_text(targets["answer"], "answer"),
            "target_image": mask_to_image(mask),
        }

    def _decode(self, raw, result, meta):
        super()._decode(raw, result, meta)
        image = to_input_frame(
            result["raw_image"], meta.get("image_size"), self.interpolation
        )
        result["image"] = image
        result["mask"] = image_to_mask(image, self.threshold, self.min_size)
        if not result["mask"].any():
            result["errors"].append("empty mask")
