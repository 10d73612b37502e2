"""Training: the token loss, its metrics, and the paper's optimiser."""

import keras
import numpy as np
import pytest

from keras_uio import UnifiedIO, UnifiedIOBackbone, UnifiedIOPreprocessor
from keras_uio import UnifiedIOTokenizer
from keras_uio.models.unified_io.unified_io_presets import backbone_presets
from keras_uio.training import InverseSquareRootSchedule, paper_optimizer


def test_schedule_matches_t5_inverse_square_root():
    schedule = InverseSquareRootSchedule()
    for step, expected in ((0, 1e-2), (10000, 1e-2), (40000, 5e-3), (1e6, 1e-3)):
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-6)
    optimizer = paper_optimizer()
    assert optimizer.beta_2_decay == -0.8 and optimizer.global_clipnorm == 1.0
    config = keras.optimizers.serialize(optimizer)["config"]["learning_rate"]
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, InverseSquareRootSchedule)
    assert float(restored(40000)) == pytest.approx(5e-3)


@pytest.fixture(scope="module")
def batch_and_model(tiny_proto):
    keras.utils.set_random_seed(1)
    tokenizer = UnifiedIOTokenizer(proto=tiny_proto, image_vocab_size=256)
    config = {
        **backbone_presets["uio_tiny"]["config"],
        "vocabulary_size": tokenizer.vocab.text_vocab_size,
    }
    preprocessor = UnifiedIOPreprocessor(
        tokenizer, encoder_sequence_length=32, decoder_sequence_length=16
    )
    rng = np.random.default_rng(0)
    x, y, sw = preprocessor(
        {
            "prompt": ["What does the image describe ?"] * 2,
            "image": [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)] * 2,
            "target_text": ["a blue triangle", "red circle"],
            "target_codes": rng.integers(0, 256, (2, 256)),
        }
    )
    return (x, y, sw), UnifiedIO(UnifiedIOBackbone(**config))


def test_fit_lowers_text_and_image_loss(batch_and_model):
    (x, y, sw), model = batch_and_model
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x, y, sample_weight=sw, batch_size=2, epochs=12, verbose=0)
    logs = history.history
    for key in ("loss", "text_loss", "image_loss", "text_accuracy", "image_accuracy"):
        assert key in logs
    assert logs["text_loss"][-1] < 0.7 * logs["text_loss"][0]
    assert logs["image_loss"][-1] < logs["image_loss"][0]
    # the loss is the token-weighted mean of both parts
    text_tokens = float(np.sum(sw["text_decoder_targets"]))
    image_tokens = float(np.sum(sw["image_decoder_targets"]))
    mixed = (logs["text_loss"][0] * text_tokens + logs["image_loss"][0] * image_tokens) / (
        text_tokens + image_tokens
    )
    assert logs["loss"][0] == pytest.approx(mixed, rel=1e-3)


def test_compile_rejects_custom_loss(batch_and_model):
    _, model = batch_and_model
    with pytest.raises(ValueError, match="computes its own token loss"):
        model.compile(loss="mse")
