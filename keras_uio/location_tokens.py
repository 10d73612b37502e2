"""Boxes, points and keypoints as location tokens, and back.

`LocationTokens` is the part of `keras_uio.Vocabulary` that writes pixel
coordinates as location ids (or their `<extra_id_N>` text) and parses
generated ids back into `ParsedRegions` / `ParsedKeypoints`. It only needs
the id layout of the class it is mixed into (`location_id`,
`location_bin`, `is_location`, ...), so it is not used on its own.

Boxes are `(x1, y1, x2, y2)` in pixels of the original image. They become four
location tokens in the order y1, x1, y2, x2 with
`bin = int((num_bins - 1) * (coord / max(W, H)))`; decoding follows the
original code and maps bin `b` back to `(b + 1) * max(W, H) / num_bins`
(**quirk**: the `+ 1`, kept so that converted checkpoints decode as trained;
`decode_offset=0.5` gives the bin centre instead).
"""

import numpy as np

from keras_uio.parsed_regions import ParsedKeypoints
from keras_uio.parsed_regions import ParsedRegions
from keras_uio.token_text import as_str

# COCO order of the 17 human keypoints (the order Unified-IO generates them in).
KEYPOINT_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


def _check_image_size(image_size):
    """`image_size` is `(height, width)`; returns two positive floats."""
    try:
        h, w = (float(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(
            "`image_size` must be a `(height, width)` pair of positive numbers. "
            f"Received: image_size={image_size!r}"
        ) from None
    if not (h > 0 and w > 0) or not np.isfinite([h, w]).all():
        raise ValueError(
            "`image_size` must be a `(height, width)` pair of positive numbers. "
            f"Received: image_size={image_size!r}"
        )
    return h, w


class LocationTokens:
    """Mixin of `Vocabulary`: pixel coordinates <-> location tokens.

    Example:
    >>> from keras_uio.vocab import Vocabulary
    >>> vocab = Vocabulary()
    >>> vocab.box_to_text([0, 0, 640, 480], image_size=(480, 640))
    '<extra_id_100> <extra_id_100> <extra_id_849> <extra_id_1099>'
    >>> vocab.ids_to_points(vocab.point_to_ids((320, 240), (480, 640)),
    ...                     (480, 640)).boxes
    array([[320., 240.]])
    """

    @property
    def invisible_point_id(self):
        """Marker written twice in place of an invisible keypoint.

        The original inference code masks this token and never produces it;
        it is `<extra_id_0>` (a sentinel, never used in keypoint targets) so
        that targets stay expressible as text. This is our choice: the
        released inference code does not contain the training encoder.
        """
        return self.sentinel_id(0) if self.num_sentinels else self.pad_id

    def coordinates_to_bins(self, coords, image_size):
        """Quantise pixel coordinates: `int((num_bins-1) * c / max(H, W))`.

        Values are clipped to `[0, num_bins - 1]` (the original emits invalid
        ids for coordinates outside the image).
        """
        h, w = _check_image_size(image_size)
        coords = np.asarray(coords, dtype=np.float64)
        if not np.all(np.isfinite(coords)):
            raise ValueError(f"coordinates must be finite numbers. Received: {coords}")
        scaled = (self.num_location_bins - 1) * (coords / max(h, w))
        bins = scaled.astype(np.int32)  # truncation toward zero, as original
        return np.clip(bins, 0, self.num_location_bins - 1)

    def bins_to_coordinates(self, bins, image_size, decode_offset=1.0):
        """Inverse of `coordinates_to_bins` in the original's convention.

        `coord = (bin + decode_offset) * max(H, W) / num_bins`, with
        `decode_offset=1.0` reproducing the original (**quirk**).
        """
        h, w = _check_image_size(image_size)
        bins = np.asarray(bins, dtype=np.float64)
        return (bins + decode_offset) * (max(h, w) / self.num_location_bins)

    def box_to_bins(self, box, image_size):
        """`(x1, y1, x2, y2)` -> the 4 bins in token order `(y1, x1, y2, x2)`."""
        box = np.asarray(box, dtype=np.float64)
        if box.shape[-1:] != (4,):
            raise ValueError(
                "`box` must have shape `[..., 4]` `(x1, y1, x2, y2)`. "
                f"Received shape: {box.shape}"
            )
        yx = box[..., [1, 0, 3, 2]]
        return self.coordinates_to_bins(yx, image_size)

    def box_to_ids(self, box, image_size):
        """`(x1, y1, x2, y2)` pixels -> 4 location ids (y1, x1, y2, x2).

        A `[n, 4]` array gives `[n, 4]` ids; one box gives a list of 4 ints.
        """
        ids = self.location_id(self.box_to_bins(box, image_size))
        return ids.tolist() if np.ndim(ids) == 1 else ids

    def box_to_text(self, box, image_size):
        """Box as the `<extra_id_N>` text the original puts in prompts."""
        bins = np.asarray(self.box_to_bins(box, image_size)).reshape(-1)
        return " ".join(f"<extra_id_{b + self.num_sentinels}>" for b in bins)

    def point_to_ids(self, point, image_size):
        """`(x, y)` pixels -> 2 location ids in the order (y, x)."""
        point = np.asarray(point, dtype=np.float64)
        if point.shape[-1:] != (2,):
            raise ValueError(
                "`point` must have shape `[..., 2]` `(x, y)`. "
                f"Received shape: {point.shape}"
            )
        ids = self.location_id(self.coordinates_to_bins(point[..., ::-1], image_size))
        return ids.tolist() if np.ndim(ids) == 1 else ids

    def point_to_text(self, point, image_size):
        ids = np.asarray(self.point_to_ids(point, image_size)).reshape(-1)
        return " ".join(f"<extra_id_{n}>" for n in self.extra_id_number(ids))

    def keypoints_to_text(self, keypoints, image_size):
        """17 keypoints -> the keypoint target text.

        Args:
            keypoints: `[17, 3]` array of `(x, y, v)` with COCO visibility `v`
                (0 not labelled, 1 occluded, 2 visible).
            image_size: `(height, width)` of the image.

        Returns:
            `"<y> <x> v+1 <y> <x> v+1 ..."`: each point as two location
            tokens then its visibility written `1`/`2`/`3` (the original's
            decoder subtracts 1); a point with `v == 0` is written with the
            invisible marker pair instead of coordinates.
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        if kp.ndim != 2 or kp.shape[1] != 3:
            raise ValueError(
                "`keypoints` must have shape `[num_points, 3]` (x, y, "
                f"visibility). Received shape: {kp.shape}"
            )
        parts = []
        marker = self.token_string(self.invisible_point_id)
        for x, y, v in kp:
            if v not in (0, 1, 2):
                raise ValueError(
                    f"keypoint visibility must be 0, 1 or 2 (COCO). Received: {v}"
                )
            if v == 0:
                parts.append(f"{marker} {marker}")
            else:
                parts.append(self.point_to_text((x, y), image_size))
            parts.append(str(int(v) + 1))
        return " ".join(parts)

    def labels_to_text(self, boxes, labels, image_size):
        """Detection target: `"<y1> <x1> <y2> <x2> label ..."` per object."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(labels) != len(boxes):
            raise ValueError(
                "`boxes` and `labels` must have the same length. Received: "
                f"{len(boxes)} boxes and {len(labels)} labels"
            )
        return " ".join(
            f"{self.box_to_text(b, image_size)} {l}" for b, l in zip(boxes, labels)
        )

    # ----------------------------------------------------------- parsing
    def _tokens(self, token_ids):
        ids = np.asarray(token_ids)
        if ids.ndim != 1:
            raise ValueError(
                "`token_ids` must be a 1-D sequence of ids (one example). "
                f"Received shape: {ids.shape}"
            )
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                f"`token_ids` must be integers. Received dtype: {ids.dtype}"
            )
        ids = ids.astype(np.int64)
        stop = np.flatnonzero((ids == self.eos_id) | (ids == self.pad_id))
        return ids[: stop[0]] if stop.size else ids

    def _split_regions(self, ids, per_region):
        """Split ids into `(start, location ids, label ids)` runs + errors."""
        errors, runs = [], []
        is_loc = self.is_location(ids)
        i, n = 0, len(ids)
        while i < n:
            if not is_loc[i]:
                k = i
                while k < n and not is_loc[k]:
                    k += 1
                errors.append(
                    f"position {i}: {k - i} token(s) where location tokens "
                    "were expected; skipped"
                )
                i = k
                continue
            j = i
            while j < n and j - i < per_region and is_loc[j]:
                j += 1
            if j - i < per_region:
                errors.append(
                    f"position {i}: {j - i} location token(s) where "
                    f"{per_region} were expected; skipped"
                )
                i = j
                continue
            k = j
            while k < n and not is_loc[k]:
                k += 1
            runs.append((i, ids[i:j], ids[j:k].tolist()))
            i = k
        return runs, errors

    def _parse(
        self, token_ids, image_size, per_region, decode_offset, detokenize, check_order
    ):
        _check_image_size(image_size)
        ids = self._tokens(token_ids)
        runs, errors = self._split_regions(ids, per_region)
        if runs:
            bins = self.location_bin(np.stack([r[1] for r in runs]))
            coords = self.bins_to_coordinates(bins, image_size, decode_offset)
            # token order is (y, x) pairs -> (x, y)
            coords = coords.reshape(len(runs), -1, 2)[..., ::-1]
            coords = coords.reshape(len(runs), per_region)
        else:
            coords = np.zeros((0, per_region))
        label_ids = [r[2] for r in runs]
        keep = np.ones(len(runs), bool)
        if check_order and per_region == 4:
            for r, (x1, y1, x2, y2) in enumerate(coords):
                if x2 < x1 or y2 < y1:
                    keep[r] = False
                    errors.append(
                        f"region {r}: corners out of order "
                        f"(x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}); dropped"
                    )
        coords = coords[keep]
        label_ids = [l for l, k in zip(label_ids, keep) if k]
        labels = None
        if detokenize is not None:
            labels = [str(as_str(detokenize(l))).strip() for l in label_ids]
        return ParsedRegions(coords, label_ids, labels, errors)

    def ids_to_boxes(
        self,
        token_ids,
        image_size,
        decode_offset=1.0,
        detokenize=None,
        check_order=True,
    ):
        """Parse `[4 location ids][label ids]...` back into boxes.

        Reading stops at the first EOS or padding id. Nothing raises on a
        malformed sequence: incomplete regions, text where locations belong
        and (with `check_order`) boxes with `x2 < x1` or `y2 < y1` are
        skipped and described in `errors`.

        Args:
            token_ids: 1-D ids of one generated sequence.
            image_size: `(height, width)` of the original image.
            decode_offset: 1.0 reproduces the original (`(bin + 1)`).
            detokenize: optional function ids -> text for the labels.
            check_order: drop boxes whose corners are out of order.

        Returns:
            `ParsedRegions` with `boxes` `[n, 4]` `(x1, y1, x2, y2)`.
        """
        return self._parse(
            token_ids, image_size, 4, decode_offset, detokenize, check_order
        )

    def ids_to_points(self, token_ids, image_size, decode_offset=1.0, detokenize=None):
        """Parse `[y id, x id][label ids]...`; `boxes` holds `[n, 2]` `(x, y)`."""
        return self._parse(token_ids, image_size, 2, decode_offset, detokenize, False)

    def ids_to_keypoints(
        self, token_ids, image_size, detokenize, num_keypoints=17, decode_offset=1.0
    ):
        """Parse a keypoint output into `ParsedKeypoints`.

        Each point is `[y, x][visibility text]` with visibility `1`..`3`
        (COCO `v + 1`). The invisible marker pair gives `nan` coordinates.
        Missing points are `nan` with visibility `-1`; extra points are
        dropped; both are reported in `errors`.

        Args:
            detokenize: function ids -> text, used to read the visibility.
        """
        _check_image_size(image_size)
        ids = self._tokens(token_ids)
        marker = self.invisible_point_id
        # The marker pair parses as a (placeholder) location pair.
        is_marker = ids == marker
        marked = np.where(is_marker, self.location_id(0), ids)
        runs, errors = self._split_regions(marked, 2)
        points = np.full((num_keypoints, 2), np.nan)
        vis = np.full((num_keypoints,), -1, np.int64)
        count = len(runs)
        if count > num_keypoints:
            errors.append(
                f"{count} points where {num_keypoints} were expected; "
                "extra points dropped"
            )
        elif count < num_keypoints:
            errors.append(
                f"{count} points where {num_keypoints} were expected; "
                "missing points are nan with visibility -1"
            )
        for k, (start, loc, label) in enumerate(runs[:num_keypoints]):
            text = str(as_str(detokenize(label))).strip()
            try:
                v = int(text) - 1
                if not 0 <= v <= 2:
                    raise ValueError
            except ValueError:
                errors.append(f"point {k}: unreadable visibility {text!r}")
                v = -1
            vis[k] = v
            if is_marker[start] and is_marker[start + 1]:
                continue  # invisible: no coordinates
            yx = self.bins_to_coordinates(
                self.location_bin(loc), image_size, decode_offset
            )
            points[k] = yx[::-1]
        return ParsedKeypoints(points, vis, errors)
