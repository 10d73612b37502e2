"""The decoder's image target mask against the original implementation.

`tests/data/reference/uio_tiny/image_mask.npz` holds the original's
(allenai/unified-io-inference ee0bd9d, `Transformer.decode`) teacher-forced
logits on `uio_tiny` with padded text targets and padded image targets
(`image_decoder_masks`: row 0 a landscape image's target mask, the last
quarter of the codes padded; row 1 a portrait image's, the right columns
padded); made by `scripts/make_image_mask_reference.py`, with the other
inputs from `io.npz`. Logits are compared on valid (mask 1) positions only:
the original masks padded query rows entirely (they attend uniformly) and
nothing reads them.
"""

import numpy as np
import pytest

from tests.conftest import REFERENCE

TOL = 1e-4


@pytest.fixture(scope="module")
def image_mask_io():
    return dict(np.load(REFERENCE / "uio_tiny" / "image_mask.npz"))


@pytest.fixture(scope="module")
def encoded(converted_tiny, reference_io):
    backbone, _ = converted_tiny
    io = reference_io
    return backbone.encode(
        io["in/text_encoder_inputs"],
        io["in/image_encoder_inputs"],
        io["in/image_input_masks"],
    )


def _decode(backbone, encoded, io, text_masks, image_masks, full_vocabulary=False):
    text, image = backbone.decode(
        *encoded,
        io["in/text_decoder_inputs"],
        text_masks,
        io["in/image_decoder_inputs"],
        full_vocabulary=full_vocabulary,
        image_decoder_masks=image_masks,
    )
    return np.asarray(text, "float64"), np.asarray(image, "float64")


def test_padded_image_target_matches_original(
    converted_tiny, reference_io, encoded, image_mask_io
):
    backbone, _ = converted_tiny
    ref = image_mask_io
    text_masks = ref["in/text_decoder_masks"]
    image_masks = ref["in/image_decoder_masks"]
    # The case: trailing padding (row 0) and padding between valid codes (row 1).
    assert image_masks[0, 192:].sum() == 0 and image_masks[0, :192].all()
    assert (
        not image_masks[1].all() and image_masks[1, -1] == 0 and image_masks[1, 0] == 1
    )
    assert (text_masks == 0).any()

    text, image = _decode(backbone, encoded, reference_io, text_masks, image_masks)
    valid_text, valid_image = text_masks.astype(bool), image_masks.astype(bool)
    assert np.abs(text - ref["out/text_logits"])[valid_text].max() <= TOL
    assert np.abs(image - ref["out/image_logits"])[valid_image].max() <= TOL

    # Full-width logits: the other modality's ids hold -1e10, as the original's.
    text_full, image_full = _decode(
        backbone, encoded, reference_io, text_masks, image_masks, True
    )
    vocab = backbone.vocabulary_size
    np.testing.assert_array_equal(text_full[..., :vocab], text)
    np.testing.assert_array_equal(image_full[..., vocab:], image)
    assert (image_full[..., :vocab] <= -1e9).all() and (
        text_full[..., vocab:] <= -1e9
    ).all()


def test_image_target_mask_changes_valid_positions(
    converted_tiny, reference_io, encoded, image_mask_io
):
    """Without the mask, valid codes after a padded one read it: the
    logits move (in ours as in the original: `io.npz` holds the original's
    unmasked logits for the same inputs); before any padding, and for the
    text, nothing changes (causal attention)."""
    backbone, _ = converted_tiny
    ref = image_mask_io
    text_masks = ref["in/text_decoder_masks"]
    image_masks = ref["in/image_decoder_masks"]
    valid = image_masks.astype(bool)
    masked_text, masked = _decode(
        backbone, encoded, reference_io, text_masks, image_masks
    )
    text, unmasked = _decode(backbone, encoded, reference_io, text_masks, None)
    ones_text, ones = _decode(
        backbone, encoded, reference_io, text_masks, np.ones_like(image_masks)
    )
    np.testing.assert_array_equal(ones, unmasked)  # None means all ones

    vocab = backbone.vocabulary_size
    theirs_unmasked = reference_io["out/dec_image_logits"][..., vocab:]
    theirs_masked = ref["out/image_logits"]
    assert np.abs(unmasked - theirs_unmasked).max() <= TOL
    first_pad = int(np.argmin(image_masks[1]))  # row 1: first padded code
    after = valid[1].copy()
    after[: first_pad + 1] = False  # valid codes that follow a padded one
    assert after.any()
    changed_ours = np.abs(masked[1] - unmasked[1])[after].max()
    changed_theirs = np.abs(theirs_masked[1] - theirs_unmasked[1])[after].max()
    assert changed_ours > 0.1 and changed_theirs > 0.1, (changed_ours, changed_theirs)
    # Positions before the first padded code see no padding either way.
    np.testing.assert_allclose(
        masked[1, :first_pad], unmasked[1, :first_pad], atol=1e-5
    )
    np.testing.assert_allclose(masked[0][valid[0]], unmasked[0][valid[0]], atol=1e-5)
    np.testing.assert_allclose(
        masked_text[text_masks.astype(bool)], text[text_masks.astype(bool)], atol=1e-5
    )


def test_image_mask_shape_is_checked(converted_tiny, reference_io, encoded):
    backbone, _ = converted_tiny
    io = reference_io
    with pytest.raises(ValueError, match="image_decoder_masks"):
        backbone.decode(
            *encoded,
            io["in/text_decoder_inputs"],
            (io["in/text_decoder_targets"] > 0).astype("int32"),
            io["in/image_decoder_inputs"],
            image_decoder_masks=np.ones((2, 255), "int32"),
        )
