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


def _fresh_model(tiny_proto, seed=3):
    keras.utils.set_random_seed(seed)
    tokenizer = UnifiedIOTokenizer(proto=tiny_proto, image_vocab_size=256)
    config = {
        **backbone_presets["uio_tiny"]["config"],
        "vocabulary_size": tokenizer.vocab.text_vocab_size,
        "num_encoder_layers": 1,
        "num_decoder_layers": 1,
    }
    return UnifiedIO(UnifiedIOBackbone(**config))


def test_lora_trains_only_the_adapters(batch_and_model, tiny_proto):
    (x, y, sw), _ = batch_and_model
    model = _fresh_model(tiny_proto)
    model.backbone.enable_lora(rank=2)
    trainable = {v.path for v in model.trainable_variables}
    assert trainable and all("lora" in path for path in trainable)
    before = {v.path: np.asarray(v) for v in model.variables}
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(x, y, sample_weight=sw, batch_size=2, epochs=2, verbose=0)
    changed = {
        v.path for v in model.variables
        if not np.array_equal(before[v.path], np.asarray(v)) and "iteration" not in v.path
    }
    assert changed and changed <= trainable


def test_interrupted_and_resumed_run_equals_uninterrupted(batch_and_model, tiny_proto, tmp_path):
    (x, y, sw), _ = batch_and_model

    def run(epochs, backup=None, stop_after=None):
        model = _fresh_model(tiny_proto)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        callbacks = []
        if backup is not None:
            callbacks.append(keras.callbacks.BackupAndRestore(str(backup)))

        class Interrupt(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if stop_after is not None and epoch + 1 == stop_after:
                    raise KeyboardInterrupt

        callbacks.append(Interrupt())
        try:
            model.fit(x, y, sample_weight=sw, batch_size=1, epochs=epochs,
                      shuffle=False, callbacks=callbacks, verbose=0)
        except KeyboardInterrupt:
            return None
        return [np.asarray(v) for v in model.trainable_variables]

    reference = run(4)
    assert run(4, tmp_path / "backup", stop_after=2) is None
    resumed = run(4, tmp_path / "backup")  # a new process would do the same
    for a, b in zip(reference, resumed):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_vqgan_is_frozen_by_default(tiny_proto):
    from keras_uio import VQGAN
    from keras_uio.models.vqgan.vqgan_presets import backbone_presets as vq

    model = UnifiedIO(
        _fresh_model(tiny_proto).backbone, VQGAN(**vq["vqgan_tiny"]["config"])
    )
    assert not model.vqgan.trainable
    vqgan_ids = {id(v) for v in model.vqgan.weights}
    assert vqgan_ids and not vqgan_ids & {id(v) for v in model.trainable_variables}
