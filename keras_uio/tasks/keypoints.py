"""Human keypoints, in two stages: find people, then 17 joints per person.

Stage 1 localises `"person"` (the localisation prompt) and gives person
boxes; stage 2 asks, for each box, for the 17 COCO joints, the box written
as location tokens in the prompt. Each joint comes back as
`[y token, x token][visibility text]` with visibility written `1`/`2`/`3`
(COCO `v + 1`); a joint with no coordinates is the invisible marker pair.
"""

import numpy as np

from keras_uio.tasks.localization import LocalizationTask
from keras_uio.tasks.task import Task
from keras_uio.tasks.task import register_task
from keras_uio.vocab import KEYPOINT_NAMES

FILL_MODES = ("nan", "mean")


@register_task
class KeypointTask(Task):
    """17 COCO keypoints of the person in `region`.

    Inputs: `image`, `region` (the person box). Training target:
    `keypoints`, `[17, 3]` `(x, y, v)` in pixels with COCO visibility `v`
    (0 not labelled, 1 occluded, 2 visible).

    Result: `"keypoints"` float64 `[17, 3]` `(x, y, v)` in input pixels
    (`v` in 0/1/2; coordinates `nan` where the output gave none),
    `"visibility"` int `[17]` as parsed (`-1` unreadable or missing),
    `"region"`, `"valid"` (no parse errors) and `"errors"`.

    Stage 1: `encode_person_inputs(image)` and `decode_people(text, meta)`
    (boxes of `"person"`); `stack_people(results)` stacks the per-person
    results into `[n, 17, 3]`.

    Args:
        fill_invisible: `"nan"` (default) leaves joints without a readable
            position `nan`; `"mean"` puts every joint whose visibility is 0
            or unreadable at the mean of the labelled ones (the original).
        person_name: class name localised in stage 1.
        **kwargs: see `Task`.

    Example:
    >>> import numpy as np
    >>> task = KeypointTask()
    >>> image = np.zeros((480, 640, 3), "uint8")
    >>> task.build_prompt(image=image, region=[1, 112, 266, 533])
    'Find the human joints in the region " <extra_id_274> <extra_id_101> <extra_id_931> <extra_id_515> " .'
    >>> kp = np.tile([[100.0, 200.0, 2.0]], (17, 1))
    >>> example = task.encode_example(
    ...     {"image": image, "region": [1, 112, 266, 533], "keypoints": kp})
    >>> r = task.decode(example["target_text"], meta={"image_size": (480, 640)})
    >>> r["keypoints"][0].round(2).tolist(), r["valid"]
    ([100.48, 200.32, 2.0], True)
    """

    name = "keypoints"
    required = ("image", "region")
    targets = ("keypoints",)
    prompt_template = 'Find the human joints in the region " {} " .'
    max_text_length = 128
    num_keypoints = len(KEYPOINT_NAMES)
    keypoint_names = KEYPOINT_NAMES

    def __init__(self, fill_invisible="nan", person_name="person", **kwargs):
        super().__init__(**kwargs)
        if fill_invisible not in FILL_MODES:
            raise ValueError(
                f"`fill_invisible` must be one of {FILL_MODES}. "
                f"Received: {fill_invisible!r}"
            )
        self.fill_invisible = fill_invisible
        self.person_name = person_name
        self.person_task = LocalizationTask(
            vocab=self.vocab, detokenize=self._detokenize,
        )

    # ------------------------------------------------------- stage 1
    def encode_person_inputs(self, image):
        """Stage 1 inputs: localise `person_name` in `image`."""
        return self.person_task.encode_inputs(
            image=image, object_name=self.person_name
        )

    def decode_people(self, text, meta):
        """Stage 1 output -> `LocalizationTask` result (`"boxes"`)."""
        return self.person_task.decode(text, meta=meta)

    @staticmethod
    def stack_people(results):
        """Per-person results -> float64 `[n, 17, 3]` keypoints."""
        if not results:
            return np.zeros((0, len(KEYPOINT_NAMES), 3))
        return np.stack([r["keypoints"] for r in results])

    # ------------------------------------------------------- stage 2
    def _prompt_args(self, inputs, meta):
        return (self.region_text(inputs["region"], meta["image_size"]),)

    def _targets(self, targets, inputs, meta):
        kp = np.asarray(targets["keypoints"], dtype=np.float64)
        if kp.shape != (self.num_keypoints, 3):
            raise ValueError(
                f"`keypoints` must be `[{self.num_keypoints}, 3]` (x, y, "
                f"visibility). Received shape: {kp.shape}"
            )
        text = self.vocab.keypoints_to_text(kp, meta["image_size"])
        return {"target_text": text}

    def _decode(self, raw, result, meta):
        size = self._need_image_size(meta)
        detok = raw["parse_detokenize"]
        if detok is None:
            self.detokenize([])  # raises: visibility needs text
        parsed = self.vocab.ids_to_keypoints(
            raw["parse_ids"], size, detok, num_keypoints=self.num_keypoints
        )
        result["errors"].extend(parsed.errors)
        points = parsed.points.copy()
        vis = parsed.visibility
        if self.fill_invisible == "mean":
            labelled = (vis > 0) & np.isfinite(points).all(-1)
            if labelled.any():
                points[~labelled] = points[labelled].mean(0)
            else:
                result["errors"].append(
                    "no labelled joint to fill the others with"
                )
        keypoints = np.concatenate(
            [points, np.maximum(vis, 0)[:, None].astype(np.float64)], -1
        )
        result["keypoints"] = keypoints
        result["visibility"] = vis
        result["region"] = meta.get("region")
        result["valid"] = not result["errors"]
