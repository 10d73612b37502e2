"""Every layer: config round trip, shapes, bfloat16; plus a few exact checks."""

import keras
import numpy as np
import pytest

from keras_uio.layers.absolute_position_bias import AbsolutePositionBias
from keras_uio.layers.attention_bias import AttentionBias
from keras_uio.layers.decoder_embedding import DecoderEmbedding
from keras_uio.layers.decoder_layer import UnifiedIODecoderLayer
from keras_uio.layers.encoder_embedding import EncoderEmbedding
from keras_uio.layers.encoder_layer import UnifiedIOEncoderLayer
from keras_uio.layers.gated_gelu_mlp import GatedGeluMLP
from keras_uio.layers.modality_logits import ModalityLogits
from keras_uio.layers.patch_embedding import PatchEmbedding
from keras_uio.layers.rms_norm import RMSNorm

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.normal(size=shape).astype("float32")


CASES = {
    "rms_norm": (RMSNorm, {}, lambda: (_x(2, 3, 8),)),
    "mlp": (GatedGeluMLP, {"intermediate_dim": 12}, lambda: (_x(2, 3, 8),)),
    "patch": (
        PatchEmbedding,
        {"patch_size": 4, "hidden_dim": 8},
        lambda: (_x(1, 8, 12, 3),),
    ),
    "absolute": (
        AbsolutePositionBias,
        {"num_heads": 2, "head_dim": 3},
        lambda: (_x(1, 5, 8),),
    ),
    "encoder_layer": (
        UnifiedIOEncoderLayer,
        {"num_heads": 2, "head_dim": 3, "intermediate_dim": 12},
        lambda: (_x(2, 5, 8), np.zeros((1, 1, 5, 5), "float32")),
    ),
    "decoder_layer": (
        UnifiedIODecoderLayer,
        {"num_heads": 2, "head_dim": 3, "intermediate_dim": 12},
        lambda: (
            _x(2, 3, 8),
            _x(2, 5, 8),
            np.zeros((1, 1, 3, 3), "float32"),
            np.zeros((2, 1, 3, 5), "float32"),
        ),
    ),
    "encoder_embedding": (
        EncoderEmbedding,
        {
            "hidden_dim": 8,
            "patch_size": 4,
            "max_text_length": 6,
            "max_image_length": 4,
            "num_segments": 2,
        },
        lambda: (_x(2, 3, 8), _x(2, 8, 8, 3)),
    ),
    "decoder_embedding": (
        DecoderEmbedding,
        {
            "hidden_dim": 8,
            "max_text_length": 6,
            "max_image_length": 4,
            "num_segments": 2,
        },
        lambda: (_x(2, 3, 8), _x(2, 4, 8)),
    ),
    "attention_bias": (
        AttentionBias,
        {"num_heads": 2, "head_dim": 3, "image_grid_width": 2, "causal": True},
        lambda: (_x(1, 7, 8), np.ones((2, 3), "int32"), np.ones((2, 4), "int32")),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trip_and_identical_outputs(case):
    cls, kwargs, make_inputs = CASES[case]
    inputs = make_inputs()
    layer = cls(**kwargs)
    out = layer(*inputs)
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(clone) is cls and clone.get_config() == layer.get_config()
    clone(*inputs)
    clone.set_weights(layer.get_weights())
    for a, b in zip(keras.tree.flatten(out), keras.tree.flatten(clone(*inputs))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bfloat16_is_finite_and_close(case):
    cls, kwargs, make_inputs = CASES[case]
    inputs = make_inputs()
    ref = cls(**kwargs)
    out32 = ref(*inputs)
    half = cls(**kwargs, dtype="bfloat16")
    half(*inputs)
    half.set_weights(ref.get_weights())
    for a, b in zip(keras.tree.flatten(out32), keras.tree.flatten(half(*inputs))):
        a = np.asarray(a, "float32")
        b = np.asarray(keras.ops.cast(b, "float32"))
        assert np.isfinite(b[a > -1e9]).all()
        scale = np.abs(a[a > -1e9]).max() + 1e-3
        assert np.abs(a - b)[a > -1e9].max() <= 0.05 * scale


def test_rms_norm_math_in_float32():
    x = np.array([[3.0, 4.0]], "float32")
    norm = RMSNorm(epsilon=0.0)
    norm(x)
    norm.scale.assign([2.0, 1.0])
    expected = x / np.sqrt(12.5) * [2.0, 1.0]
    np.testing.assert_allclose(np.asarray(norm(x)), expected, rtol=1e-6)
    half = RMSNorm(dtype="bfloat16")
    big = np.full((1, 4), 300.0, "float32")  # squares overflow nothing in f32
    assert np.isfinite(np.asarray(keras.ops.cast(half(big), "float32"))).all()


def test_patch_layout_matches_original():
    # feature index (dy * p + dx) * C + c, patch index row * cols + col
    layer = PatchEmbedding(patch_size=2, hidden_dim=12)
    images = np.arange(1 * 4 * 6 * 3, dtype="float32").reshape(1, 4, 6, 3)
    layer(images)
    layer.projection.kernel.assign(np.eye(12, dtype="float32"))
    patches = np.asarray(layer(images))
    assert patches.shape == (1, 6, 12)
    row, col, dy, dx, c = 1, 2, 1, 0, 2
    value = images[0, row * 2 + dy, col * 2 + dx, c]
    assert patches[0, row * 3 + col, (dy * 2 + dx) * 3 + c] == value


def test_mlp_uses_tanh_gelu():
    mlp = GatedGeluMLP(intermediate_dim=1)
    x = np.array([[[1.5]]], "float32")
    mlp(x)
    for dense in (mlp.gate, mlp.up, mlp.down):
        dense.kernel.assign([[1.0]])
    g = 0.5 * 1.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (1.5 + 0.044715 * 1.5**3)))
    np.testing.assert_allclose(np.asarray(mlp(x))[0, 0, 0], g * 1.5, rtol=1e-6)


def test_modality_logits_mask_and_scale():
    """Logits are `states . embeddings^T / sqrt(hidden_dim)`, each position
    over its own modality's ids, the other modality's ids at -1e10."""
    layer = ModalityLogits(vocabulary_size=2, hidden_dim=4)
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(1, 3, 4)).astype("float32")
    embeddings = rng.normal(size=(5, 4)).astype("float32")
    expected = hidden @ embeddings.T / 2.0  # sqrt(4)
    text, image = layer(hidden, embeddings, text_length=1)
    text, image = np.asarray(text), np.asarray(image)
    np.testing.assert_allclose(text[0, 0, :2], expected[0, 0, :2], rtol=1e-6)
    assert (text[0, 0, 2:] == -1e10).all() and (image[0, :, :2] == -1e10).all()
    np.testing.assert_allclose(image[0, :, 2:], expected[0, 1:, 2:], rtol=1e-6)


def test_encoder_embedding_rejects_long_text_and_wrong_image():
    layer = EncoderEmbedding(
        8, 4, max_text_length=2, max_image_length=4, num_segments=2
    )
    with pytest.raises(ValueError, match="at most 2"):
        layer(_x(1, 3, 8), _x(1, 8, 8, 3))
    with pytest.raises(ValueError, match="expects 4"):
        layer(_x(1, 2, 8), _x(1, 12, 8, 3))
