"""Training: the token loss, its metrics, and the paper's optimiser."""

import keras
import numpy as np
import pytest

from keras_uio import UnifiedIO
from keras_uio import UnifiedIOBackbone
from keras_uio import UnifiedIOPreprocessor
from keras_uio import UnifiedIOTokenizer
from keras_uio.models.unified_io.unified_io_presets import unified_io_presets
from keras_uio.training import Adafactor
from keras_uio.training import InverseSquareRootSchedule
from keras_uio.training import paper_optimizer


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


def test_adafactor_equals_keras_adafactor_with_factored_state_only():
    def train(optimizer):
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(5), keras.layers.Dense(3)]
        )
        model.compile(optimizer, "mse")
        model.initial = model.get_weights()
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((32, 6)), rng.standard_normal((32, 3))
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        return model, optimizer

    arguments = {"learning_rate": 1e-2, "beta_2_decay": -0.8, "global_clipnorm": 1.0}
    reference, keras_optimizer = train(keras.optimizers.Adafactor(**arguments))
    ours, optimizer = train(Adafactor(**arguments))
    for a, b in zip(reference.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    assert not np.allclose(ours.get_weights()[0], ours.initial[0])  # it trained

    def state_size(optimizer):
        return sum(int(np.prod(v.shape)) for v in optimizer.variables)

    kernels = sum(
        int(np.prod(v.shape)) for v in ours.trainable_variables if len(v.shape) == 2
    )
    # Keras keeps a kernel-sized velocity per matrix; ours only its row and
    # column statistics.
    assert state_size(keras_optimizer) - state_size(optimizer) >= kernels
    assert isinstance(
        keras.optimizers.deserialize(keras.optimizers.serialize(optimizer)), Adafactor
    )
    assert isinstance(paper_optimizer(), Adafactor)


@pytest.fixture(scope="module")
def batch_and_model(tiny_proto):
    keras.utils.set_random_seed(1)
    tokenizer = UnifiedIOTokenizer(proto=tiny_proto, image_vocab_size=256)
    config = {
        **unified_io_presets["uio_tiny"]["config"],
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
    mixed = (
        logs["text_loss"][0] * text_tokens + logs["image_loss"][0] * image_tokens
    ) / (text_tokens + image_tokens)
    assert logs["loss"][0] == pytest.approx(mixed, rel=1e-3)


def test_compile_rejects_custom_loss(batch_and_model):
    _, model = batch_and_model
    with pytest.raises(ValueError, match="computes its own token loss"):
        model.compile(loss="mse")


def _one_layer_config(tokenizer, **overrides):
    """`uio_tiny` with one encoder and one decoder layer, for `tokenizer`."""
    return {
        **unified_io_presets["uio_tiny"]["config"],
        "vocabulary_size": tokenizer.vocab.text_vocab_size,
        "num_encoder_layers": 1,
        "num_decoder_layers": 1,
        **overrides,
    }


def _fresh_model(tiny_proto, seed=3):
    keras.utils.set_random_seed(seed)
    tokenizer = UnifiedIOTokenizer(proto=tiny_proto, image_vocab_size=256)
    return UnifiedIO(UnifiedIOBackbone(**_one_layer_config(tokenizer)))


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
        v.path
        for v in model.variables
        if not np.array_equal(before[v.path], np.asarray(v))
        and "iteration" not in v.path
    }
    assert changed and changed <= trainable


@pytest.mark.slow  # a training option against plain training; .ci/run runs it
def test_interrupted_and_resumed_run_equals_uninterrupted(
    batch_and_model, tiny_proto, tmp_path
):
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
            model.fit(
                x,
                y,
                sample_weight=sw,
                batch_size=1,
                epochs=epochs,
                shuffle=False,
                callbacks=callbacks,
                verbose=0,
            )
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
    from keras_uio.models.vqgan.vqgan_presets import vqgan_presets as vq

    model = UnifiedIO(
        _fresh_model(tiny_proto).backbone, VQGAN(**vq["vqgan_tiny"]["config"])
    )
    assert not model.vqgan.trainable
    vqgan_ids = {id(v) for v in model.vqgan.weights}
    assert vqgan_ids and not vqgan_ids & {id(v) for v in model.trainable_variables}


def _small_model_and_batch(tiny_proto, dtype=None, seed=5):
    """A 1+1-layer model on 64x64 images (16 patches, 16 image codes) and a
    4-example batch whose halves hold equally many target tokens."""
    from keras_uio import UnifiedIOImageConverter

    keras.utils.set_random_seed(seed)
    tokenizer = UnifiedIOTokenizer(proto=tiny_proto, image_vocab_size=256)
    config = _one_layer_config(tokenizer, image_size=64, max_decoder_image_length=16)
    preprocessor = UnifiedIOPreprocessor(
        tokenizer,
        image_converter=UnifiedIOImageConverter(image_size=64),
        encoder_sequence_length=24,
        decoder_sequence_length=16,
    )
    rng = np.random.default_rng(seed)
    x, y, sw = preprocessor(
        {
            "prompt": ["what color is the shape ?"] * 4,
            "image": list(rng.integers(0, 255, (4, 40, 64, 3), dtype=np.uint8)),
            "target_text": ["a blue triangle", "red circle"] * 2,
            "target_codes": rng.integers(0, 256, (4, 16)),
        }
    )
    return UnifiedIO(UnifiedIOBackbone(**config, dtype=dtype)), (x, y, sw)


@pytest.mark.slow  # a training option against plain training; .ci/run runs it
def test_gradient_accumulation_equals_one_large_batch(tiny_proto):
    """2 accumulated steps of batch 2 == 1 step of batch 4 (SGD).

    `compile(gradient_accumulation_steps=k)` only sets the optimiser's own
    `gradient_accumulation_steps` (checked below and in the next test), so
    this covers an optimiser built with it too."""
    model, (x, y, sw) = _small_model_and_batch(tiny_proto)
    text = np.asarray(sw["text_decoder_targets"])
    assert text[:2].sum() == text[2:].sum()  # same token count per half
    initial = model.get_weights()

    def train(steps, batch_size):
        model.set_weights(initial)
        if steps == 1:
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        else:
            model.compile(
                optimizer=keras.optimizers.SGD(0.5),
                gradient_accumulation_steps=steps,
            )
            assert model.optimizer.gradient_accumulation_steps == steps
        model.fit(
            x,
            y,
            sample_weight=sw,
            batch_size=batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        assert int(model.optimizer.iterations) == 1  # one update either way
        return [np.asarray(v) for v in model.trainable_variables]

    large = train(1, batch_size=4)
    accumulated = train(2, batch_size=2)
    moved = max(np.abs(a - b).max() for a, b in zip(large, initial))
    assert moved > 1e-3  # the update is not trivially zero
    for a, b in zip(large, accumulated):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_gradient_accumulation_argument_is_checked(tiny_proto):
    model, _ = _small_model_and_batch(tiny_proto)
    with pytest.raises(ValueError, match="int >= 2"):
        model.compile(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="already accumulates 3"):
        model.compile(
            optimizer=keras.optimizers.SGD(gradient_accumulation_steps=3),
            gradient_accumulation_steps=2,
        )
    model.compile(optimizer="sgd", gradient_accumulation_steps=4)
    assert model.optimizer.gradient_accumulation_steps == 4
    model.compile(optimizer=keras.optimizers.SGD(gradient_accumulation_steps=3))
    assert model.optimizer.gradient_accumulation_steps == 3


def test_fit_on_an_iterator_of_ready_batches(tiny_proto):
    """`fit` takes an iterator of preprocessed `(x, y, sample_weight)`
    batches, as `Mixture.batches` yields them, without preprocessing again."""
    model, (x, y, sw) = _small_model_and_batch(tiny_proto)

    def batches():
        while True:
            yield x, y, sw

    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(batches(), steps_per_epoch=2, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="do not pass them separately"):
        model.fit(batches(), y, steps_per_epoch=1)


@pytest.mark.slow  # a training option against plain training; .ci/run runs it
def test_mixed_bfloat16_training(tiny_proto):
    import ml_dtypes

    model, (x, y, sw) = _small_model_and_batch(tiny_proto, dtype="mixed_bfloat16")
    backbone = model.backbone
    assert all(v.dtype == "float32" for v in model.variables)
    for layer in (
        backbone.encoder_layers[0],
        backbone.decoder_layers[0],
        backbone.modality_logits,
    ):
        assert layer.compute_dtype == "bfloat16"
    outputs = model.predict(x, verbose=0)
    for key in (
        "text_logits",
        "image_logits",
        "text_token_logits",
        "image_code_logits",
    ):
        assert outputs[key].dtype == np.float32
    # The output matmul itself runs in bfloat16: before the 1/sqrt(64) = 1/8
    # scale (exact in binary) every logit is a bfloat16 number.
    raw = np.asarray(outputs["text_token_logits"]) * 8.0
    np.testing.assert_array_equal(raw, raw.astype(ml_dtypes.bfloat16).astype("float32"))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    loss = model.compute_loss(x, y, outputs, sw)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    history = model.fit(x, y, sample_weight=sw, batch_size=4, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0]
    assert all(v.dtype == "float32" for v in model.variables)


@pytest.mark.slow  # a training option against plain training; .ci/run runs it
def test_training_on_a_patch_subset_equals_masking_the_rest(tiny_proto):
    """Batches with `image_input_indices` (the paper's patch subset, what
    `Mixture(num_image_patches=n)` yields) give the loss of the full batch
    with the other patches masked, and fit on them."""
    from keras_uio.data import select_patches

    model, (x, y, sw) = _small_model_and_batch(tiny_proto)
    indices, kept = select_patches(x["image_input_masks"], 6, np.random.default_rng(0))
    masked = dict(x, image_input_masks=np.zeros_like(x["image_input_masks"]))
    for row, (index, keep) in enumerate(zip(indices, kept)):
        masked["image_input_masks"][row, index[keep > 0]] = 1
    subset = dict(x, image_input_indices=indices, image_input_masks=kept)
    full_loss = model.compute_loss(masked, y, model(masked), sw)
    subset_loss = model.compute_loss(subset, y, model(subset), sw)
    np.testing.assert_allclose(float(subset_loss), float(full_loss), rtol=1e-5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(subset, y, sample_weight=sw, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.slow  # a training option against plain training; .ci/run runs it
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's custom gradient")
def test_recomputing_in_backward_leaves_the_gradients_unchanged(
    tiny_proto, monkeypatch
):
    """The training path recomputes norms, gated products, attention weights
    and the output logits (in chunks) in the backward pass; its gradients
    equal those of the same model storing everything (the wrappers replaced
    by identity, the loss by the plain formula on whole logits)."""
    import jax

    from keras_uio.layers import attention
    from keras_uio.layers import gated_gelu_mlp
    from keras_uio.layers import modality_logits
    from keras_uio.layers import projected_cross_entropy as pce

    model, (x, y, sw) = _small_model_and_batch(tiny_proto)
    variables = model.trainable_variables

    def gradients():
        def loss(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return model.compute_loss(x, y, model(x, training=True), sw)

        return jax.jit(jax.grad(loss))([v.value for v in variables])

    recomputed = gradients()
    for module in (attention, gated_gelu_mlp):
        monkeypatch.setattr(module, "recompute_in_backward", lambda fn, **kwargs: fn)
    monkeypatch.setattr(
        modality_logits,
        "projected_cross_entropy",
        lambda rows, table, targets, first_id, num_ids: pce._terms(
            pce._logits(rows, table[first_id : first_id + (num_ids or len(table))]),
            targets,
        )[:2],
    )
    stored = gradients()
    assert max(float(np.abs(g).max()) for g in stored) > 0
    for variable, a, b in zip(variables, recomputed, stored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=variable.path)
