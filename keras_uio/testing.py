"""Comparing discrete outputs (VQ-GAN codes, argmax/greedy tokens) with a reference.

A discrete output is the best of several candidates: a VQ-GAN code is the
codebook row at the smallest distance, a greedy token the id with the largest
logit. When the two best candidates are within float32 rounding of each other
(a *tie*), which one wins depends on the order of float operations, which
changes between machines, XLA versions and backends. On the reference
`uio_tiny` image, code (row 0, position 184) is such a tie: its two nearest
codebook rows are at 33.396885 and 33.39689, one float32 spacing apart, and
some CPUs pick 120 where the reference has 218.

Exact equality is the wrong test at such a position, and "almost equal" is the
wrong test everywhere else. The helpers here demand equality everywhere
except where a tie is *proven from the numbers*: at every differing position
both the reference's candidate and ours must score within
`ulps * np.spacing(np.float32(magnitude))` of the best score there (so the
reference's best two candidates are within a few float32 roundings of each
other), and at most `max_ties` such positions may occur. Anything else fails
with the position, both candidates and their gap in float32 units.

`TIE_ULPS = 4`: a dot product over a few dozen float32 terms, summed in a
different order, moves its result by a handful of ulps of the result's
magnitude; the reference tie above is 0.55 ulps apart in float64 (0 in our
float32 computation), while the next-closest pair of candidates in that image
is 36 ulps apart, so 4 separates the two cleanly.

This module is a test utility: it uses NumPy and is not imported by
`keras_uio` itself.
"""

import numpy as np

TIE_ULPS = 4
"""Float32 spacings (of the scores' magnitude) within which two scores tie."""

MAX_TIES = 2
"""Default bound on the number of ties one comparison may tolerate."""

_SHOWN = 10  # differing positions listed in a failure message


def tie_tolerance(magnitude, ulps=TIE_ULPS):
    """`ulps` float32 spacings at `magnitude`: the largest gap called a tie.

    Args:
        magnitude: float. A score of the size of those compared.
        ulps: int. How many float32 spacings.

    Returns:
        float, the tolerance.
    """
    return float(ulps * np.spacing(np.abs(np.float32(magnitude))))


def tie_gap(scores, first, second, lower_is_better=True, ulps=TIE_ULPS):
    """How far candidates `first` and `second` are from the best score.

    Args:
        scores: 1-D array of one position's candidate scores (distances when
            `lower_is_better`, logits otherwise).
        first: int. A candidate index (e.g. the reference's code).
        second: int. Another candidate index (e.g. ours).
        lower_is_better: bool. Whether the best score is the smallest.
        ulps: int. Float32 spacings that make a tie.

    Returns:
        `(gap, tolerance)`: `gap` is the larger distance of the two
        candidates' scores from the best score (float64), `tolerance` is
        `tie_tolerance` at the largest magnitude involved. The two tie when
        `gap <= tolerance`.
    """
    scores = np.asarray(scores, "float64")
    best = scores.min() if lower_is_better else scores.max()
    if not all(0 <= int(i) < len(scores) for i in (first, second)):
        return float("inf"), tie_tolerance(best, ulps)  # not a candidate
    pair = scores[[int(first), int(second)]]
    gap = float(np.abs(pair - best).max())
    magnitude = max(float(np.abs(pair).max()), abs(float(best)))
    return gap, tie_tolerance(magnitude, ulps)


def _resolve(scores):
    """`scores`, calling it first when it is a zero-argument function."""
    return np.asarray(scores() if callable(scores) else scores)


def _check_same_shape(actual, expected, name):
    if actual.shape != expected.shape:
        raise ValueError(
            f"`{name}`: the actual values have shape {actual.shape} but the "
            f"reference has {expected.shape}."
        )


def _check_score_shape(expected, scores, name):
    if scores.shape[:-1] != expected.shape:
        raise ValueError(
            f"`{name}`: the candidate scores must have shape "
            f"{expected.shape + ('num_candidates',)} (one score per "
            f"candidate at each position). Received: {scores.shape}"
        )


def _describe(index, ours, theirs, gap, tolerance, ulps):
    units = gap / tolerance * ulps if tolerance else float("inf")
    return (
        f"  at {tuple(int(i) for i in index)}: ours {int(ours)}, reference "
        f"{int(theirs)}, gap to the best score {gap:.6g} "
        f"(~{units:.3g} float32 ulps; a tie needs <= {tolerance:.3g})"
    )


def _tied_positions(
    positions, scores, actual, expected, lower_is_better, ulps, message
):
    """The `positions` where `actual` and `expected` are a proven tie.

    Args:
        positions: index tuples where the two differ.
        scores, actual, expected, lower_is_better, ulps: as in
            `assert_codes_match`.
        message: function of the number of positions that are not a tie,
            returning the first line of the error.

    Returns:
        The tied positions (tuples of ints), in order.

    Raises:
        AssertionError: a position is not a tie; `message`, then the first
            such positions described.
    """
    ties, failures = [], []
    for index in positions:
        gap, tolerance = tie_gap(
            scores[index], expected[index], actual[index], lower_is_better, ulps
        )
        if gap <= tolerance:
            ties.append(tuple(int(i) for i in index))
        else:
            failures.append(
                _describe(index, actual[index], expected[index], gap, tolerance, ulps)
            )
    if failures:
        raise AssertionError(
            message(len(failures)) + "\n" + "\n".join(failures[:_SHOWN])
        )
    return ties


def _raise_if_too_many(name, ties, max_ties):
    if len(ties) > max_ties:
        where = ", ".join(str(t) for t in ties[:_SHOWN])
        raise AssertionError(
            f"`{name}`: {len(ties)} positions differ at float32 ties, more "
            f"than the {max_ties} allowed: {where}. Ties should be rare; "
            "this many points at a real numerical change."
        )


def assert_codes_match(
    actual,
    expected,
    scores,
    lower_is_better=True,
    ulps=TIE_ULPS,
    max_ties=MAX_TIES,
    name="codes",
):
    """Asserts discrete choices equal a reference except at proven ties.

    Args:
        actual: int array of our choices (e.g. VQ-GAN codes `[B, N]`).
        expected: int array of the reference's choices, same shape.
        scores: float array `expected.shape + (num_candidates,)`, each
            candidate's score at each position, computed from the reference
            data (e.g. `vqgan_code_distances`), or a zero-argument function
            returning it (called only when something differs).
        lower_is_better: bool. True for distances (codes), False for logits.
        ulps: int. Float32 spacings within which two scores tie.
        max_ties: int. How many tied positions are tolerated.
        name: str. What is compared, for the error message.

    Returns:
        The list of tied positions (index tuples) where `actual` differs.

    Raises:
        AssertionError: a differing position is not a tie, or more than
            `max_ties` positions are.
        ValueError: the shapes do not fit together.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    _check_same_shape(actual, expected, name)
    differing = np.argwhere(actual != expected)
    if not len(differing):
        return []
    scores = _resolve(scores)
    _check_score_shape(expected, scores, name)
    ties = _tied_positions(
        [tuple(index) for index in differing],
        scores,
        actual,
        expected,
        lower_is_better,
        ulps,
        lambda count: (
            f"`{name}`: {count} of {actual.size} positions differ from the "
            "reference where the two best candidates are NOT a float32 tie:"
        ),
    )
    _raise_if_too_many(name, ties, max_ties)
    return ties


def assert_argmax_match(actual, expected, logits, **kwargs):
    """`assert_codes_match` for argmax choices: the largest logit is best.

    Args:
        actual: int array of our choices.
        expected: int array of the reference's choices.
        logits: float array `expected.shape + (vocabulary,)` (or a function
            returning it).
        **kwargs: `ulps`, `max_ties`, `name` of `assert_codes_match`.

    Returns:
        The list of tied positions where `actual` differs.
    """
    return assert_codes_match(actual, expected, logits, lower_is_better=False, **kwargs)


def assert_greedy_tokens_match(
    actual, expected, logits, ulps=TIE_ULPS, max_ties=MAX_TIES, name="tokens"
):
    """Asserts greedily generated sequences equal a reference up to a tie.

    Each row is compared up to and including its first differing position,
    which must be a proven tie of the two largest logits there. After a
    tie the two sequences are conditioned on different tokens, so the
    continuation may legitimately differ and is NOT compared: callers should
    exclude such rows from comparisons of what follows (scores, images).

    Args:
        actual: int array `[B, T]` of our generated tokens.
        expected: int array `[B, T]` of the reference's.
        logits: float array `[B, T, vocabulary]`: the logits that choose
            each reference token given the reference prefix (a
            teacher-forced pass over `expected`), or a zero-argument
            function returning them (called only when something differs).
            Slice them so that index `i` scores token `i` (e.g. image codes:
            `image_logits[..., vocabulary_size:]`).
        ulps: int. Float32 spacings within which two logits tie.
        max_ties: int. How many rows may diverge at a tie.
        name: str. What is compared, for the error message.

    Returns:
        dict `{row: position}` of the rows that diverged at a tie, each
        compared only through `position`.

    Raises:
        AssertionError: a row first differs where the logits do not tie,
            or more than `max_ties` rows diverge.
        ValueError: the shapes do not fit together.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.ndim != 2 or actual.shape != expected.shape:
        raise ValueError(
            f"`{name}`: both token arrays must have the same [batch, length] "
            f"shape. Received: {actual.shape} and {expected.shape}"
        )
    differs = actual != expected
    if not differs.any():
        return {}
    first = np.where(differs.any(1), differs.argmax(1), -1)
    rows = np.flatnonzero(first >= 0)
    logits = _resolve(logits)
    _check_score_shape(expected, logits, name)
    ties = _tied_positions(
        [(int(row), int(first[row])) for row in rows],
        logits,
        actual,
        expected,
        False,
        ulps,
        lambda count: (
            f"`{name}`: generation departs from the reference where the two "
            "largest logits are NOT a float32 tie (first differing position "
            "of each row):"
        ),
    )
    diverged = dict(ties)
    _raise_if_too_many(name, sorted(diverged.items()), max_ties)
    return diverged


def vqgan_code_distances(vqgan, images):
    """Squared distances of each VQ-GAN latent to every codebook row.

    The latents are the model's float32 pre-quantization outputs
    (`quant_conv(encoder(images))`); the distances `|z - e|^2` are then
    computed in float64, so they are the exact distances of those float32
    vectors, free of the rounding of the quantizer's own
    `|z|^2 + |e|^2 - 2 z.e`.

    Args:
        vqgan: a `keras_uio.VQGAN`.
        images: float array `[B, R, R, C]` in `[-1, 1]`.

    Returns:
        float64 array `[B, grid**2, codebook_size]`.
    """
    import keras

    if vqgan.fsq_levels is not None:
        raise ValueError(
            "`vqgan_code_distances` needs a learned codebook; this VQ-GAN "
            f"quantizes with fsq_levels={vqgan.fsq_levels}."
        )
    latents = vqgan.quant_conv(vqgan.encoder(images))
    latents = np.asarray(keras.ops.convert_to_numpy(latents), "float64")
    latents = latents.reshape(latents.shape[0], -1, latents.shape[-1])
    codebook = keras.ops.convert_to_numpy(vqgan.quantize.embedding)
    codebook = np.asarray(codebook, "float64")
    # |z - e|^2 = sum((z - e)^2), by rows to bound memory.
    return np.stack(
        [((row[:, None, :] - codebook[None]) ** 2).sum(-1) for row in latents]
    )


def assert_vqgan_codes_match(vqgan, images, actual, expected, **kwargs):
    """`assert_codes_match` for the VQ-GAN codes of `images`.

    Args:
        vqgan: the `keras_uio.VQGAN` that produced `actual`.
        images: the images that were encoded, `[B, R, R, C]`.
        actual: int `[B, grid**2]` codes of `images` by `vqgan`.
        expected: int `[B, grid**2]` reference codes.
        **kwargs: `ulps`, `max_ties`, `name` of `assert_codes_match`.

    Returns:
        The list of tied `(row, position)` where `actual` differs.
    """
    kwargs.setdefault("name", "VQ-GAN codes")
    return assert_codes_match(
        actual,
        expected,
        lambda: vqgan_code_distances(vqgan, images),
        lower_is_better=True,
        **kwargs,
    )
