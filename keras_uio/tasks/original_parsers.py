"""The original runner's output parsers, reproduced rule for rule.

The original (`uio/utils.py` in allenai/unified-io-inference) reads model
outputs with `tokens_to_regions`, `extract_keypoints` and
`extract_segmentation_masks`. Their quirks are kept here on purpose, so
that a converted checkpoint gives the original's answers:

- regions: an id is a location only if it is above the last SentencePiece
  id (so bin 999, id 32000, is not one), a label is the run of ids in
  `(1, sentencepiece_size]` after the locations, reading stops only at an
  EOS that falls where a region would start, and anything else raises
  `ValueError`;
- keypoints: visibility text `1..3` becomes a label `0..2`; labels that do
  not parse become 0 and mark the output invalid; points with label 0 are
  moved to the mean of the labelled ones, missing points are the mean of
  all, extra points are dropped; no labelled point gives `None`;
- segmentation ("coarse colour"): components are found on the flattened
  image (runs of pixels in raster order, not 2-D blobs), and a pixel can
  belong to several masks (the original's "already used" set stays empty).

The tasks use these by default (`parser="original"`) and keep their more
forgiving readers as the documented alternative.
"""

import numpy as np


def _layout(vocab):
    """`(bin_start, location_end)`: ids above `bin_start` are locations and
    the coordinate of id `t` is `(location_end - t) / 1000 * max(H, W)`."""
    bin_start = vocab.sentencepiece_size
    return bin_start, bin_start + vocab.num_location_bins


def tokens_to_regions(token_ids, image_size, vocab, per_region=4):
    """`[per_region location ids][label ids]...` -> `(label ids, coords)`.

    Args:
        token_ids: 1-D generated ids (from the first generated token on).
        image_size: `(height, width)` of the input image.
        vocab: the model's `Vocabulary`.
        per_region: 4 for boxes, 2 for points.

    Returns:
        `(labels, coords)`: a list of label id arrays and float64
        `[n, per_region]` coordinates in `(x, y)` order, input pixels.

    Raises:
        ValueError: where the original raises (a non-location id where a
            region should start, or too few location ids).
    """
    ids = np.asarray(token_ids, np.int64).reshape(-1)
    bin_start, location_end = _layout(vocab)
    locations, labels, cur = [], [], 0
    while cur < len(ids) and ids[cur] != vocab.eos_id:
        window = ids[cur : cur + per_region]
        if not np.all(window > bin_start):
            raise ValueError(
                f"position {cur}: ids {window.tolist()} where "
                f"{per_region} location ids were expected"
            )
        locations.append(location_end - window)
        cur += per_region
        end = cur
        while end < len(ids) and 1 < ids[end] <= bin_start:
            end += 1
        labels.append(ids[cur:end])
        cur = end
    try:
        coords = np.array(locations, np.float64).reshape(-1, 2)[:, ::-1]
        coords = coords.reshape(-1, per_region)
    except ValueError:  # a last region cut short by the end of the ids
        raise ValueError(
            f"the ids end inside a region of {per_region} location ids"
        ) from None
    return labels, coords * (max(image_size) / 1000)


def extract_keypoints(token_ids, image_size, vocab, detokenize, num_keypoints=17):
    """The original's keypoint reader.

    Returns:
        `(points [17, 2] or None, labels [17] int or None, invalid)`;
        labels are 0 (not visible), 1 (occluded), 2 (visible).

    Raises:
        ValueError: where `tokens_to_regions` raises.
    """
    labels, points = tokens_to_regions(token_ids, image_size, vocab, 2)
    invalid = False
    values = []
    for label in labels:
        try:
            value = int(str(detokenize([int(i) for i in label])).strip()) - 1
        except ValueError:
            value, invalid = 0, True
        if not 0 <= value <= 2:
            value, invalid = 0, True
        values.append(value)
    labels = np.asarray(values, np.int64)
    if labels.sum() == 0:
        return None, None, invalid
    points = points.copy()
    points[labels == 0] = points[labels != 0].mean(0)
    if len(points) > num_keypoints:
        invalid = True
        points, labels = points[:num_keypoints], labels[:num_keypoints]
    elif len(points) < num_keypoints:
        invalid = True
        missing = num_keypoints - len(points)
        points = np.concatenate(
            [points, np.tile(points.mean(0, keepdims=True), (missing, 1))]
        )
        labels = np.concatenate([labels, np.zeros(missing, np.int64)])
    return points, labels, invalid


def _drop_short_runs(mask, min_size):
    """Keep runs of `mask` (1-D) longer than `min_size`; `None` if none."""
    from scipy import ndimage

    label, count = ndimage.label(mask)
    if count == 0:
        return None
    sizes = np.bincount(label)[1:]
    keep = np.flatnonzero(sizes > min_size) + 1
    return np.isin(label, keep) if keep.size else None


def extract_segmentation_masks(image, min_size=10):
    """The original's "coarse colour" masks of a generated image.

    Args:
        image: the generated image, float `[S, S, 3]` in [0, 1] (scaled to
            uint8 by truncation, as the original) or uint8.

    Returns:
        list of bool `[S, S]` masks: the white/grey instance first, then
        one per dominant channel (red, green, blue) that has pixels.
    """
    return [mask for _, mask in coarse_color_instances(image, min_size)]


def coarse_color_instances(image, min_size=10):
    """`extract_segmentation_masks` with each mask's colour name:
    a list of `(name, mask)`, names from white, red, lime, blue."""
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.integer):
        image = (image * 255).astype(np.uint8)
    shape = image.shape[:2]
    rgb = image.reshape(-1, 3).astype(np.float64)
    diff = rgb - rgb.mean(-1, keepdims=True)
    foreground = rgb.mean(-1) > 30
    found = []
    grey = _drop_short_runs(foreground & (np.abs(diff).sum(-1) < 100), min_size)
    if grey is not None:
        found.append(("white", grey))
    dominant = rgb.argmax(-1)
    for c, name in enumerate(("red", "lime", "blue")):
        mask = _drop_short_runs((dominant == c) & (np.abs(diff[:, c]) > 40), min_size)
        if mask is not None:
            found.append((name, mask))
    return [(name, m.reshape(shape)) for name, m in found]
