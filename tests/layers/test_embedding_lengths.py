"""Position-length checks see real inputs only, not shape-tracing placeholders.

Keras' PyTorch backend infers a functional model's output shapes by calling
layers on placeholder tensors whose unknown dimensions are 83 and 89, inside
a `keras.SymbolicScope`; the embeddings must neither reject those lengths
nor gather outside their position tables there. The PyTorch end-to-end case
(`from_preset("uio_tiny_easyvqa")`) is in `tests/backends/`.
"""

import keras
import numpy as np
import pytest

from keras_uio.layers.decoder_embedding import DecoderEmbedding
from keras_uio.layers.encoder_embedding import EncoderEmbedding
from keras_uio.layers.encoder_embedding import check_length
from keras_uio.layers.encoder_embedding import position_rows

PLACEHOLDER = 83  # keras/src/backend/torch/core.py, compute_output_spec


def test_check_length_raises_for_real_inputs_only():
    with pytest.raises(
        ValueError, match="`x` has 83 tokens; the encoder .* at most 32"
    ):
        check_length("x", PLACEHOLDER, 32, "encoder")
    check_length("x", 32, 32, "encoder")  # at the limit
    with keras.SymbolicScope():
        check_length("x", PLACEHOLDER, 32, "encoder")


def test_position_rows_stay_inside_the_table_while_tracing():
    table = np.arange(12, dtype="float32").reshape(4, 3)
    ids = np.arange(6)
    with keras.SymbolicScope():
        rows = np.asarray(keras.ops.convert_to_numpy(position_rows(table, ids)))
    np.testing.assert_array_equal(rows, table[[0, 1, 2, 3, 3, 3]])
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(position_rows(table, ids[:4])), table
    )


def test_embeddings_accept_placeholder_lengths_while_tracing():
    encoder = EncoderEmbedding(
        8, 4, max_text_length=2, max_image_length=4, num_segments=2
    )
    decoder = DecoderEmbedding(8, max_text_length=2, max_image_length=4, num_segments=2)
    text = keras.ops.zeros((1, PLACEHOLDER, 8))
    encoder(text[:, :2], keras.ops.zeros((1, 8, 8, 3)))  # build
    decoder(text[:, :2], text[:, :4])
    with keras.SymbolicScope():
        embedded, positions = encoder.embed_text(text)
        assert tuple(embedded.shape) == (1, PLACEHOLDER, 8)
        assert tuple(positions.shape) == (PLACEHOLDER, 8)
        tokens, rows = decoder(text, text)
        assert tuple(tokens.shape) == (1, 2 * PLACEHOLDER, 8)
        assert tuple(rows.shape) == (1, 2 * PLACEHOLDER, 8)
    with pytest.raises(ValueError, match="at most 2"):
        encoder.embed_text(text)
    with pytest.raises(ValueError, match="at most 2"):
        decoder(text, text[:, :4])
