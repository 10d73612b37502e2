"""The Unified-IO id layout: text, location bins, sentinels, image tokens.

Everything in Unified-IO is a token id in one vocabulary. This module is the
only place that knows which id means what; every other module asks a
`Vocabulary` instance.

Layout (defaults = the released checkpoints, 49536 ids in all):

| ids                  | meaning                                         |
|----------------------|-------------------------------------------------|
| 0, 1, 2              | padding, EOS `</s>`, unk                        |
| 3 .. 31999           | SentencePiece pieces (`sentencepiece_size`)     |
| 32000 .. 32999       | location bin `b` is id `32999 - b`              |
| 33000 .. 33099       | sentinels, `<extra_id_n>` is id `33099 - n`     |
| 33100 .. 33150       | unused                                          |
| 33151                | image decoder start (`text_vocab_size - 1`)     |
| 33152 .. 49535       | VQ-GAN code `c` is id `33152 + c`               |

The extra ids follow the T5 convention (`<extra_id_n>` -> the n-th id counted
down from the top of the extra-id block); location bin `b` is written
`<extra_id_{b + num_sentinels}>`.

Boxes are `(x1, y1, x2, y2)` in pixels of the original image. They become four
location tokens in the order y1, x1, y2, x2 with
`bin = int((num_bins - 1) * (coord / max(W, H)))`; decoding follows the
original code and maps bin `b` back to `(b + 1) * max(W, H) / num_bins`
(**quirk**: the `+ 1`, kept so that converted checkpoints decode as trained;
`decode_offset=0.5` gives the bin centre instead).
"""

import dataclasses
import re

import keras
import numpy as np

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

_EXTRA_ID_RE = re.compile(r"<extra_id_(\d+)>")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. "
            f"Received: {name}={value!r} (type {type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. Received: {name}={value}"
        )
    return int(value)


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


@keras.saving.register_keras_serializable(package="keras_uio")
class Vocabulary:
    """The Unified-IO token id layout for any vocabulary size.

    Args:
        text_vocab_size: int. Size of the text + location part of the
            vocabulary (the model's `vocab_size`; 33152 for the released
            checkpoints). The image decoder start token is
            `text_vocab_size - 1` and VQ-GAN code `c` is
            `text_vocab_size + c`.
        image_vocab_size: int. Number of VQ-GAN codes (16384).
        sentencepiece_size: int or `None`. Number of SentencePiece pieces
            (32000 for T5). The extra-id block starts right after them. If
            `None`, it is chosen so that `num_unused` ids lie between the
            extra ids and the image start token, as in the original
            (`33152 - 1 - 51 - 1100 = 32000`).
        num_location_bins: int. Number of location bins (1000).
        num_sentinels: int. Number of T5 sentinels (100); location bin `b` is
            `<extra_id_{b + num_sentinels}>`.
        num_unused: int. Only used when `sentencepiece_size` is `None`.

    Example:
    >>> vocab = Vocabulary()
    >>> vocab.location_id(0), vocab.sentinel_id(0), vocab.image_start_id
    (32999, 33099, 33151)
    >>> vocab.box_to_ids([226.56, 160.64, 476.16, 316.16], image_size=(480, 640))
    [32749, 32646, 32506, 32256]
    >>> vocab.ids_to_boxes([32749, 32646, 32506, 32256, 1], (480, 640)).boxes
    array([[226.56, 160.64, 476.16, 316.16]])
    """

    def __init__(
        self,
        text_vocab_size=33152,
        image_vocab_size=16384,
        sentencepiece_size=None,
        num_location_bins=1000,
        num_sentinels=100,
        num_unused=51,
    ):
        self.text_vocab_size = _check_int("text_vocab_size", text_vocab_size, 5)
        self.image_vocab_size = _check_int(
            "image_vocab_size", image_vocab_size, 1
        )
        self.num_location_bins = _check_int(
            "num_location_bins", num_location_bins, 2
        )
        self.num_sentinels = _check_int("num_sentinels", num_sentinels, 0)
        self.num_unused = _check_int("num_unused", num_unused, 0)
        num_extra = self.num_extra_ids
        if sentencepiece_size is None:
            sentencepiece_size = (
                self.text_vocab_size - 1 - self.num_unused - num_extra
            )
            if sentencepiece_size < 3:
                raise ValueError(
                    f"`text_vocab_size={text_vocab_size}` is too small for "
                    f"{num_extra} extra ids (num_location_bins="
                    f"{num_location_bins} + num_sentinels={num_sentinels}), "
                    f"{num_unused} unused ids and the image start token. "
                    "Pass a larger `text_vocab_size` or fewer location bins."
                )
        else:
            sentencepiece_size = _check_int(
                "sentencepiece_size", sentencepiece_size, 3
            )
            if sentencepiece_size + num_extra > self.text_vocab_size - 1:
                raise ValueError(
                    "`sentencepiece_size + num_location_bins + num_sentinels` "
                    f"must be <= text_vocab_size - 1 = {self.text_vocab_size - 1}"
                    " (the image start token is the last text id). Received: "
                    f"sentencepiece_size={sentencepiece_size}, "
                    f"num_location_bins={num_location_bins}, "
                    f"num_sentinels={num_sentinels}"
                )
            self.num_unused = (
                self.text_vocab_size - 1 - sentencepiece_size - num_extra
            )
        self.sentencepiece_size = int(sentencepiece_size)

    # ------------------------------------------------------------------ ids
    pad_id = 0
    eos_id = 1
    unk_id = 2

    @property
    def num_extra_ids(self):
        """Number of `<extra_id_n>` tokens (sentinels + location bins)."""
        return self.num_sentinels + self.num_location_bins

    @property
    def extra_ids_end(self):
        """One past the last extra id (33100 by default)."""
        return self.sentencepiece_size + self.num_extra_ids

    @property
    def vocab_size(self):
        """Total number of ids: text + image (49536 by default)."""
        return self.text_vocab_size + self.image_vocab_size

    @property
    def image_start_id(self):
        """First input of the image decoder (33151 by default)."""
        return self.text_vocab_size - 1

    @property
    def image_offset(self):
        """VQ-GAN code `c` has id `image_offset + c`."""
        return self.text_vocab_size

    def extra_id(self, n):
        """Id of `<extra_id_n>`: `extra_ids_end - 1 - n`."""
        n = np.asarray(n)
        if np.any((n < 0) | (n >= self.num_extra_ids)):
            raise ValueError(
                f"`n` must be in [0, {self.num_extra_ids - 1}]. Received: {n}"
            )
        out = self.extra_ids_end - 1 - n
        return int(out) if out.ndim == 0 else out

    def extra_id_number(self, token_id):
        """Inverse of `extra_id`: the `n` of `<extra_id_n>` for an id."""
        return self.extra_ids_end - 1 - np.asarray(token_id)

    def location_id(self, bin_index):
        """Id of location bin `bin_index` (`<extra_id_{bin + num_sentinels}>`)."""
        b = np.asarray(bin_index)
        if np.any((b < 0) | (b >= self.num_location_bins)):
            raise ValueError(
                f"`bin_index` must be in [0, {self.num_location_bins - 1}]. "
                f"Received: {bin_index}"
            )
        return self.extra_id(b + self.num_sentinels)

    def location_bin(self, token_id):
        """Bin of a location id (no range check; see `is_location`)."""
        out = self.extra_id_number(token_id) - self.num_sentinels
        return int(out) if np.ndim(out) == 0 else out

    def sentinel_id(self, n):
        """Id of sentinel `<extra_id_n>`, `0 <= n < num_sentinels`."""
        n = np.asarray(n)
        if np.any((n < 0) | (n >= self.num_sentinels)):
            raise ValueError(
                f"`n` must be in [0, {self.num_sentinels - 1}]. Received: {n}"
            )
        return self.extra_id(n)

    def image_id(self, code):
        """Id of VQ-GAN code `code`."""
        c = np.asarray(code)
        if np.any((c < 0) | (c >= self.image_vocab_size)):
            raise ValueError(
                f"`code` must be in [0, {self.image_vocab_size - 1}]. "
                f"Received: {code}"
            )
        out = c + self.image_offset
        return int(out) if out.ndim == 0 else out

    # Ranges as `(start, stop)` half-open pairs.
    @property
    def location_range(self):
        start = self.sentencepiece_size
        return (start, start + self.num_location_bins)

    @property
    def sentinel_range(self):
        start = self.sentencepiece_size + self.num_location_bins
        return (start, start + self.num_sentinels)

    @property
    def unused_range(self):
        return (self.extra_ids_end, self.image_start_id)

    @property
    def image_range(self):
        return (self.image_offset, self.vocab_size)

    def _in(self, token_id, rng):
        t = np.asarray(token_id)
        return (t >= rng[0]) & (t < rng[1])

    def is_text(self, token_id):
        """SentencePiece pieces proper (not pad/eos)."""
        t = np.asarray(token_id)
        return (t > self.eos_id) & (t < self.sentencepiece_size)

    def is_location(self, token_id):
        return self._in(token_id, self.location_range)

    def is_sentinel(self, token_id):
        return self._in(token_id, self.sentinel_range)

    def is_image(self, token_id):
        return self._in(token_id, self.image_range)

    def token_string(self, token_id):
        """Printable name of a non-SentencePiece id (never fails).

        Extra ids print as `<extra_id_n>` (so text round trips through the
        tokenizer), the rest as `<image_start>`, `<image_{code}>`,
        `<unused_{id}>` or `<invalid_{id}>`.
        """
        t = int(token_id)
        if self.sentencepiece_size <= t < self.extra_ids_end:
            return f"<extra_id_{self.extra_ids_end - 1 - t}>"
        if t == self.image_start_id:
            return "<image_start>"
        if self.image_offset <= t < self.vocab_size:
            return f"<image_{t - self.image_offset}>"
        if self.extra_ids_end <= t < self.image_start_id:
            return f"<unused_{t}>"
        return f"<invalid_{t}>"

    # ---------------------------------------------------- boxes and points
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
            raise ValueError(
                f"coordinates must be finite numbers. Received: {coords}"
            )
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
        return " ".join(
            f"<extra_id_{b + self.num_sentinels}>" for b in bins
        )

    def point_to_ids(self, point, image_size):
        """`(x, y)` pixels -> 2 location ids in the order (y, x)."""
        point = np.asarray(point, dtype=np.float64)
        if point.shape[-1:] != (2,):
            raise ValueError(
                "`point` must have shape `[..., 2]` `(x, y)`. "
                f"Received shape: {point.shape}"
            )
        ids = self.location_id(
            self.coordinates_to_bins(point[..., ::-1], image_size)
        )
        return ids.tolist() if np.ndim(ids) == 1 else ids

    def point_to_text(self, point, image_size):
        ids = np.asarray(self.point_to_ids(point, image_size)).reshape(-1)
        return " ".join(
            f"<extra_id_{n}>" for n in self.extra_id_number(ids)
        )

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
                    "keypoint visibility must be 0, 1 or 2 (COCO). "
                    f"Received: {v}"
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
            f"{self.box_to_text(b, image_size)} {l}"
            for b, l in zip(boxes, labels)
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

    def _parse(self, token_ids, image_size, per_region, decode_offset,
               detokenize, check_order):
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

    def ids_to_boxes(self, token_ids, image_size, decode_offset=1.0,
                     detokenize=None, check_order=True):
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
        return self._parse(token_ids, image_size, 4, decode_offset,
                           detokenize, check_order)

    def ids_to_points(self, token_ids, image_size, decode_offset=1.0,
                      detokenize=None):
        """Parse `[y id, x id][label ids]...`; `boxes` holds `[n, 2]` `(x, y)`."""
        return self._parse(token_ids, image_size, 2, decode_offset,
                           detokenize, False)

    def ids_to_keypoints(self, token_ids, image_size, detokenize,
                         num_keypoints=17, decode_offset=1.0):
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

    # ------------------------------------------------------------ config
    def get_config(self):
        return {
            "text_vocab_size": self.text_vocab_size,
            "image_vocab_size": self.image_vocab_size,
            "sentencepiece_size": self.sentencepiece_size,
            "num_location_bins": self.num_location_bins,
            "num_sentinels": self.num_sentinels,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and (
            self.get_config() == other.get_config()
        )

    def __hash__(self):
        return hash(tuple(sorted(self.get_config().items())))

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"Vocabulary({args})"


def as_str(x):
    """A detokenizer's output (str, bytes, 0-d or one-element array or
    tensor, one-element list) as a Python string."""
    if hasattr(x, "numpy"):
        x = x.numpy()
    if isinstance(x, np.ndarray):
        x = x.item() if x.ndim == 0 else x.tolist()
    if isinstance(x, list) and len(x) == 1:
        x = x[0]
    if isinstance(x, bytes):
        x = x.decode("utf-8")
    return str(x)


def parse_extra_id(text):
    """`'<extra_id_12>'` -> 12, else `None`."""
    m = _EXTRA_ID_RE.fullmatch(text.strip())
    return int(m.group(1)) if m else None
