"""Layers that read weights directly, after `quantize("int8")`: the same
result as the quantized layer's own call (attention output projection), or
as the dequantized table (tied output embeddings)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_uio.layers.attention import UnifiedIOAttention
from keras_uio.layers.attention import _heads_first
from keras_uio.layers.modality_logits import ModalityLogits
from keras_uio.layers.modality_logits import QuantizedTable

WEIGHT_ONLY = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
CONFIGS = {"weight_only": WEIGHT_ONLY, "default": None}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_attention_output_uses_the_int8_kernel_and_scale(config):
    rng = np.random.default_rng(0)
    layer = UnifiedIOAttention(num_heads=4, head_dim=16)
    x = rng.normal(size=(2, 5, 64)).astype("float32")
    layer(x, x, np.zeros((2, 1, 5, 5), "float32"))
    attended = rng.normal(size=(2, 4, 5, 16)).astype("float32")
    float_out = np.asarray(layer._output(attended))
    layer.output_dense.quantize("int8", config=config)
    out = np.asarray(layer._output(attended))
    own = np.asarray(layer.output_dense(_heads_first(attended)))
    np.testing.assert_allclose(out, own, atol=1e-5)
    assert np.abs(out - float_out).max() < 0.02 * np.abs(float_out).max()


def _embedding(rng, rows=12, dim=8):
    embedding = keras.layers.ReversibleEmbedding(rows, dim, tie_weights=True)
    embedding.build()
    embedding.embeddings.assign(rng.normal(size=(rows, dim)).astype("float32"))
    return embedding


def test_float_embedding_layer_reads_as_its_table():
    rng = np.random.default_rng(1)
    embedding = _embedding(rng)
    layer = ModalityLogits(vocabulary_size=8, hidden_dim=8)
    hidden = rng.normal(size=(2, 5, 8)).astype("float32")
    by_layer = layer.project(hidden, embedding, 3)
    by_table = layer.project(hidden, embedding.embeddings, 3)
    for a, b in zip(by_layer, by_table):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_int8_embedding_logits_match_the_dequantized_table(config):
    rng = np.random.default_rng(2)
    embedding = _embedding(rng)
    float_table = np.asarray(embedding.embeddings)
    embedding.quantize("int8", config=config, type_check=False)
    dequantized = (
        np.asarray(embedding._embeddings, "float32")
        / np.asarray(embedding.embeddings_scale)[:, None]
    )
    layer = ModalityLogits(vocabulary_size=8, hidden_dim=8)
    hidden = rng.normal(size=(1, 5, 8)).astype("float32")
    expected = layer.project(hidden, dequantized, 3)
    tol = 1e-5 if config is WEIGHT_ONLY else 0.05
    for a, b in zip(layer.project(hidden, embedding, 3), expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=tol)
    # The decode loop's form keeps the int8 values.
    table = layer.output_table(embedding, image_mode=False)
    assert isinstance(table, QuantizedTable) and table[0].dtype == "int8"
    # The reverse projection of the layer itself agrees (its own scaling).
    reverse = np.asarray(
        embedding(ops.convert_to_tensor(hidden[0] / 8**0.5), reverse=True)
    )
    np.testing.assert_allclose(
        np.asarray(layer.logits(hidden[0], table)), reverse[:, :8], atol=tol
    )
    # Cross-entropy reads the dequantized table; a bare int8 table is refused.
    targets = np.array([[0, 3, 7, 1, 2]], "int32")
    losses, _ = layer.cross_entropy(hidden, embedding, targets, False)
    expected_losses, _ = layer.cross_entropy(hidden, dequantized, targets, False)
    np.testing.assert_allclose(
        np.asarray(losses), np.asarray(expected_losses), atol=tol
    )
    with pytest.raises(ValueError, match="embedding layer"):
        layer.cross_entropy(hidden, embedding.embeddings, targets, False)
    assert np.abs(dequantized - float_table).max() < 0.01 * np.abs(float_table).max()
