"""What `Vocabulary` reads back from generated ids: regions and keypoints."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class ParsedRegions:
    """Structures read back from generated ids.

    Attributes:
        boxes: float64 array `[n, 4]` of `(x1, y1, x2, y2)` pixel boxes (or
            `[n, 2]` `(x, y)` points when parsing points).
        label_ids: list of `n` lists of the text ids that followed each region.
        labels: list of `n` strings when a `detokenize` function was given,
            else `None`.
        errors: human-readable descriptions of everything that did not
            parse (skipped tokens, incomplete regions, out-of-order boxes).
    """

    boxes: np.ndarray
    label_ids: list
    labels: list = None
    errors: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ParsedKeypoints:
    """Keypoints read back from generated ids.

    Attributes:
        points: float64 `[17, 2]` `(x, y)` pixel coordinates; `nan` for points
            written with the invisible marker or missing from the output.
        visibility: int `[17]` COCO visibility (0 = not labelled,
            1 = labelled but occluded, 2 = visible), `-1` where unreadable.
        errors: what did not parse; empty for a well-formed output.
    """

    points: np.ndarray
    visibility: np.ndarray
    errors: list = dataclasses.field(default_factory=list)

    @property
    def valid(self):
        return not self.errors
