"""Human keypoints, in two stages: find people, then 17 joints per person.

Stage 1 localises `"person"` (the localisation prompt) and gives person
boxes; stage 2 asks, for each box, for the 17 COCO joints, the box written
as location tokens in the prompt. Each joint comes back as
`[y token, x token][visibility text]` with visibility written `1`/`2`/`3`
(COCO `v + 1`); a joint with no coordinates is the invisible marker pair.
"""

import numpy as np

from keras_uio.location_tokens import KEYPOINT_NAMES
from keras_uio.tasks import original_parsers
from keras_uio.tasks.box_task import check_parser
from keras_uio.tasks.localization import LocalizationTask
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.task import Task


@register_task
class KeypointTask(Task):
    """17 COCO keypoints of the person in `region`.

    Inputs: `image`, `region` (the person box). Training target:
    `keypoints`, `[17, 3]` `(x, y, v)` in pixels with COCO visibility `v`
    (0 not labelled, 1 occluded, 2 visible).

    Result (`parser="original"`, the default, as the original's
    `extract_keypoints`): `"points"` float64 `[17, 2]` `(x, y)` in input
    pixels, `"point_labels"` int `[17]` (0 not visible, 1 occluded, 2
    visible), `"invalid"` (the output did not follow the format: unreadable
    labels, too many or too few points); points with label 0 sit at the
    mean of the labelled ones and missing points at the mean of all.
    With no labelled point both are `None`. `"keypoints"` `[17, 3]`
    `(x, y, label)` stacks them (`nan` coordinates when `None`).
    With `parser="lenient"`: `"keypoints"` has `nan` where the output
    gave no position, `"visibility"` int `[17]` as parsed (`-1` unreadable
    or missing). Both add `"region"`, `"valid"` (no parse errors) and
    `"errors"`.

    Stage 1: `encode_person_inputs(image)` and `decode_people(text, meta)`
    (boxes of `"person"`); `stack_people(results)` stacks the per-person
    results into `[n, 17, 3]`.

    Args:
        parser: `"original"` or `"lenient"` (see above).
        person_name: class name localised in stage 1.
        **kwargs: see `Task`.

    Example:
    >>> import numpy as np
    >>> task = KeypointTask()
    >>> image = np.zeros((480, 640, 3), "uint8")
    >>> task.build_prompt(image=image, region=[1, 112, 266, 470])
    'Find the human joints in the region " <extra_id_274> <extra_id_101> <extra_id_833> <extra_id_515> " .'
    >>> kp = np.tile([[100.0, 200.0, 2.0]], (17, 1))
    >>> example = task.encode_example(
    ...     {"image": image, "region": [1, 112, 266, 470], "keypoints": kp})
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

    def __init__(self, parser="original", person_name="person", **kwargs):
        super().__init__(**kwargs)
        self.parser = check_parser(parser)
        self.person_name = person_name
        self.person_task = LocalizationTask(
            vocab=self.vocab,
            detokenize=self._detokenize,
            parser=parser,
        )

    # ------------------------------------------------------- stage 1
    def encode_person_inputs(self, image):
        """Stage 1 inputs: localise `person_name` in `image`."""
        return self.person_task.encode_inputs(image=image, object_name=self.person_name)

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
        result["region"] = meta.get("region")
        if self.parser == "original":
            self._decode_original(raw, result, size, detok)
        else:
            parsed = self.vocab.ids_to_keypoints(
                raw["parse_ids"], size, detok, num_keypoints=self.num_keypoints
            )
            result["errors"].extend(parsed.errors)
            vis = parsed.visibility
            result["keypoints"] = np.concatenate(
                [parsed.points, np.maximum(vis, 0)[:, None].astype(np.float64)],
                -1,
            )
            result["visibility"] = vis
        result["valid"] = not result["errors"]

    def _decode_original(self, raw, result, size, detok):
        points = labels = None
        invalid = True
        try:
            points, labels, invalid = original_parsers.extract_keypoints(
                raw["region_ids"], size, self.vocab, detok, self.num_keypoints
            )
        except ValueError as e:
            result["errors"].append(
                f"{e}: the original's extract_keypoints rejects this output"
            )
        if invalid and not result["errors"]:
            result["errors"].append(
                "the output does not follow the keypoint format (unreadable "
                f"labels or not {self.num_keypoints} points)"
            )
        if points is None and not result["errors"]:
            result["errors"].append("no visible keypoint in the output")
        result["points"], result["point_labels"] = points, labels
        result["invalid"] = bool(invalid)
        if points is None:
            result["keypoints"] = np.full((self.num_keypoints, 3), np.nan)
            result["keypoints"][:, 2] = 0
        else:
            result["keypoints"] = np.concatenate(
                [points, labels[:, None].astype(np.float64)], -1
            )
