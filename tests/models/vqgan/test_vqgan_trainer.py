"""Training a VQ-GAN tokenizer with `VQGANTrainer` and Keras `fit`.

The images are real photographs bundled with scikit-image
(`skimage.data.astronaut()`, `coffee()`, `chelsea()` and `rocket()`, files
shipped inside the package, no download): each is rescaled to 64 pixels
on its short side and 8 random 16x16 patches are cut from it, scaled to
`[-1, 1]`. The VQ-GAN is the smallest the config allows (32 channels, the
group-norm group count; levels (1, 2), so an 8x8 grid of codes from a
64 x 8 codebook), small enough to train on two CPU cores in well under a
minute.
"""

import keras
import numpy as np
import pytest

from keras_uio.models.vqgan import VQGAN
from keras_uio.models.vqgan import CodebookRestart
from keras_uio.models.vqgan import VQGANTrainer
from keras_uio.models.vqgan import codebook_statistics

skimage_data = pytest.importorskip("skimage.data")
skimage_transform = pytest.importorskip("skimage.transform")

SIZE = 16
TINY = dict(
    image_size=SIZE,
    channels=32,
    channel_multipliers=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(),
    z_channels=8,
    codebook_size=64,
    embed_dim=8,
)
STEPS = 120
BATCH = 8


def skimage_patches(per_image=8, size=SIZE, seed=0):
    """`[4 * per_image, size, size, 3]` float32 patches in `[-1, 1]`."""
    rng = np.random.default_rng(seed)
    patches = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        image = getattr(skimage_data, name)().astype("float32") / 255.0
        image = skimage_transform.rescale(
            image,
            64 / min(image.shape[:2]),
            channel_axis=-1,
            anti_aliasing=True,
        )
        for _ in range(per_image):
            y = rng.integers(0, image.shape[0] - size + 1)
            x = rng.integers(0, image.shape[1] - size + 1)
            patches.append(image[y : y + size, x : x + size])
    patches = np.clip(np.stack(patches), 0.0, 1.0)
    return (patches * 2.0 - 1.0).astype("float32")


@pytest.fixture(scope="module")
def images():
    return skimage_patches()


@pytest.fixture(scope="module")
def trained(images):
    """`(trainer, history, metrics before, metrics after)` of one run."""
    keras.utils.set_random_seed(0)
    trainer = VQGANTrainer(VQGAN(**TINY), reconstruction_loss="l2")
    trainer.compile(optimizer=keras.optimizers.Adam(2e-3))
    before = trainer.evaluate(
        images, batch_size=len(images), verbose=0, return_dict=True
    )
    history = trainer.fit(
        images,
        batch_size=BATCH,
        epochs=STEPS * BATCH // len(images),
        shuffle=True,
        verbose=0,
    )
    after = trainer.evaluate(
        images, batch_size=len(images), verbose=0, return_dict=True
    )
    return trainer, history, before, after


@pytest.mark.slow  # trains a VQ-GAN (~50 s); .ci/run runs it
def test_training_reconstructs_real_images_much_better(trained, images):
    _, _, before, after = trained
    # With "l2" the reconstruction loss is the mean squared error.
    assert after["reconstruction_loss"] <= 0.5 * before["reconstruction_loss"]
    # Better than the best flat patch (each patch's mean colour): the codes
    # carry the patches' structure, not only their colour.
    flat = images.mean(axis=(1, 2), keepdims=True)
    assert after["reconstruction_loss"] < np.mean((images - flat) ** 2)


@pytest.mark.slow  # trains a VQ-GAN (~50 s); .ci/run runs it
def test_history_has_all_metrics(trained):
    _, history, _, after = trained
    names = (
        "loss",
        "reconstruction_loss",
        "codebook_loss",
        "commitment_loss",
        "codebook_usage",
        "perplexity",
    )
    epochs = STEPS * BATCH // 32
    for name in names:
        assert len(history.history[name]) == epochs, name
        assert np.all(np.isfinite(history.history[name])), name
        assert name in after
    losses = history.history
    assert losses["loss"][-1] < 0.25 * losses["loss"][0]
    assert losses["codebook_loss"][-1] < losses["codebook_loss"][0]


@pytest.mark.slow  # trains a VQ-GAN (~50 s); .ci/run runs it
def test_codebook_usage_is_reported(trained):
    _, history, _, after = trained
    usage = np.asarray(history.history["codebook_usage"])
    perplexity = np.asarray(history.history["perplexity"])
    assert np.all((usage > 0) & (usage <= 1))
    assert np.all((perplexity >= 1) & (perplexity <= 64))
    # 32 images x 64 codes: a healthy codebook uses much of its 64 rows.
    assert after["codebook_usage"] >= 0.25
    assert after["perplexity"] >= 8


def test_codebook_statistics():
    usage, perplexity = codebook_statistics(np.array([[0, 1, 1, 3]]), 8)
    assert float(usage) == pytest.approx(3 / 8)
    probs = np.array([0.25, 0.5, 0.25])
    entropy = -np.sum(probs * np.log(probs))
    assert float(perplexity) == pytest.approx(np.exp(entropy), rel=1e-5)
    usage, perplexity = codebook_statistics(np.zeros((2, 5), "int32"), 4)
    assert float(usage) == pytest.approx(0.25)
    assert float(perplexity) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def tiny_vqgan():
    keras.utils.set_random_seed(1)
    return VQGAN(**TINY)


def _fake_outputs(rng, batch=2):
    return {
        "reconstruction": rng.uniform(-1, 1, (batch, SIZE, SIZE, 3)).astype("float32"),
        "codes": rng.integers(0, 64, (batch, 64)).astype("int32"),
        "codebook_loss": np.full((batch,), 0.3, "float32"),
        "commitment_loss": np.full((batch,), 0.3, "float32"),
    }


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_loss_is_reconstruction_plus_weighted_quantizer_terms(tiny_vqgan, kind):
    rng = np.random.default_rng(0)
    trainer = VQGANTrainer(
        tiny_vqgan,
        reconstruction_loss=kind,
        codebook_weight=0.5,
        commitment_weight=0.25,
    )
    images = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    outputs = _fake_outputs(rng)
    error = outputs["reconstruction"] - images
    expected = np.mean(np.abs(error) if kind == "l1" else error**2)
    loss = trainer.compute_loss(x=images, y_pred=outputs)
    assert float(loss) == pytest.approx(expected + 0.5 * 0.3 + 0.25 * 0.3)
    # An explicit target replaces the inputs.
    loss = trainer.compute_loss(x=images, y=images * 0, y_pred=outputs)
    recon = outputs["reconstruction"]
    expected = np.mean(np.abs(recon) if kind == "l1" else recon**2)
    assert float(loss) == pytest.approx(expected + 0.5 * 0.3 + 0.25 * 0.3)
    assert float(trainer.reconstruction_tracker.result()) > 0


def test_foreground_term_averages_the_error_over_the_shape(tiny_vqgan):
    rng = np.random.default_rng(0)
    images = np.tile(
        np.array([0.8, 0.9, 0.7], "float32"), (2, SIZE, SIZE, 1)
    )  # a flat light background ...
    images[0, 2:5, 3:7] = [1.0, -1.0, -1.0]  # ... a red 3x4 rectangle
    images[1, 1:2, 1:3] = [-1.0, -1.0, 1.0]  # ... a blue 1x2 one
    outputs = _fake_outputs(rng)
    error = np.abs(outputs["reconstruction"] - images)
    shape = np.zeros((2, SIZE, SIZE), bool)
    shape[0, 2:5, 3:7] = shape[1, 1:2, 1:3] = True
    expected = error[shape].mean()  # 14 pixels x 3 channels
    trainer = VQGANTrainer(tiny_vqgan, foreground_weight=2.0)
    base = VQGANTrainer(tiny_vqgan).compute_loss(x=images, y_pred=outputs)
    loss = trainer.compute_loss(x=images, y_pred=outputs)
    assert float(loss) == pytest.approx(float(base) + 2.0 * expected, rel=1e-5)
    assert float(trainer.foreground_tracker.result()) == pytest.approx(
        expected, rel=1e-5
    )
    # A flat image has no foreground and adds nothing.
    flat = np.tile(np.array([0.8, 0.9, 0.7], "float32"), (2, SIZE, SIZE, 1))
    base = VQGANTrainer(tiny_vqgan).compute_loss(x=flat, y_pred=outputs)
    loss = trainer.compute_loss(x=flat, y_pred=outputs)
    assert float(loss) == pytest.approx(float(base), rel=1e-6)


def test_perceptual_term_is_frozen_feature_distance(tiny_vqgan):
    rng = np.random.default_rng(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    first = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    second = keras.layers.AveragePooling2D(2)(first)
    features = keras.Model(inputs, [first, second])
    trainer = VQGANTrainer(tiny_vqgan, perceptual_model=features, perceptual_weight=2.0)
    assert not features.trainable
    images = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    outputs = _fake_outputs(rng)
    real = features(images)
    fake = features(outputs["reconstruction"])
    perceptual = np.mean(
        [np.mean((np.asarray(a) - np.asarray(b)) ** 2) for a, b in zip(real, fake)]
    )
    base = VQGANTrainer(tiny_vqgan).compute_loss(x=images, y_pred=outputs)
    loss = trainer.compute_loss(x=images, y_pred=outputs)
    assert float(loss) == pytest.approx(float(base) + 2.0 * perceptual, rel=1e-5)
    assert float(trainer.perceptual_tracker.result()) == pytest.approx(
        perceptual, rel=1e-5
    )


def _discriminator():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(1, 3)(x))


@pytest.mark.skipif(
    keras.config.backend() != "jax", reason="gradients taken with jax.grad"
)
def test_adversarial_terms_train_the_right_weights(tiny_vqgan):
    import jax

    discriminator = _discriminator()
    trainer = VQGANTrainer(tiny_vqgan, discriminator=discriminator)
    rng = np.random.default_rng(0)
    target = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    fake = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    variables = discriminator.trainable_variables
    values = [v.value for v in variables]

    def terms(values, reconstruction):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return trainer._adversarial_losses(target, reconstruction)

    def generator_term(values, reconstruction):
        return terms(values, reconstruction)[0]

    def discriminator_loss(values, reconstruction):
        return terms(values, reconstruction)[2]

    def plain_generator_loss(reconstruction):
        return -keras.ops.mean(discriminator(reconstruction))

    term, reported, d_loss = terms(values, fake)
    assert float(term) == pytest.approx(0.0, abs=1e-6)
    assert float(reported) == pytest.approx(float(plain_generator_loss(fake)))
    # The generator term moves the reconstruction like -mean(D(x_hat)) and
    # leaves the discriminator alone ...
    d_values, d_fake = jax.grad(generator_term, argnums=(0, 1))(values, fake)
    for grad in d_values:
        np.testing.assert_allclose(np.asarray(grad), 0.0, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(d_fake),
        np.asarray(jax.grad(plain_generator_loss)(fake)),
        atol=1e-6,
    )
    # ... and the discriminator loss trains only the discriminator.
    d_values, d_fake = jax.grad(discriminator_loss, argnums=(0, 1))(values, fake)
    assert any(np.abs(np.asarray(g)).max() > 0 for g in d_values)
    np.testing.assert_allclose(np.asarray(d_fake), 0.0)
    assert float(d_loss) >= 0


def test_restart_dead_codes_moves_unused_rows_onto_latents(images):
    keras.utils.set_random_seed(2)
    vqgan = VQGAN(**TINY)
    trainer = VQGANTrainer(vqgan)
    sample = images[:4]
    # Send all but the first 4 codes far away: none can be chosen.
    embedding = np.array(vqgan.quantize.embedding.numpy())
    embedding[4:] += 1e3
    vqgan.quantize.embedding.assign(embedding)
    latents = np.asarray(vqgan.quant_conv(vqgan.encoder(sample)))
    latents = latents.reshape(-1, 8)
    used = np.unique(np.asarray(vqgan.quantize(latents)[0]))
    assert set(used) <= {0, 1, 2, 3}
    moved = trainer.restart_dead_codes(sample, seed=0)
    assert moved == 64 - len(used)
    table = np.asarray(vqgan.quantize.embedding.numpy())
    np.testing.assert_array_equal(table[used], embedding[used])
    dead = np.setdiff1d(np.arange(64), used)
    distances = ((table[dead, None, :] - latents[None]) ** 2).sum(-1)
    assert distances.min(axis=1).max() < 1e-8  # each moved row is a latent
    assert len(np.unique(table[dead], axis=0)) == len(dead)
    # The moved codes are now chosen.
    assert len(np.unique(np.asarray(vqgan.quantize(latents)[0]))) > len(used)


def test_validation_errors(tiny_vqgan):
    with pytest.raises(ValueError, match="keras_uio.VQGAN"):
        VQGANTrainer(keras.Sequential())
    with pytest.raises(ValueError, match="reconstruction_loss"):
        VQGANTrainer(tiny_vqgan, reconstruction_loss="l3")
    with pytest.raises(ValueError, match="commitment_weight"):
        VQGANTrainer(tiny_vqgan, commitment_weight=-1)
    with pytest.raises(ValueError, match="foreground_weight"):
        VQGANTrainer(tiny_vqgan, foreground_weight=-0.5)
    with pytest.raises(ValueError, match="adversarial_start"):
        VQGANTrainer(tiny_vqgan, adversarial_start=1.5)
    with pytest.raises(ValueError, match="every_n_steps"):
        CodebookRestart(np.zeros((1, SIZE, SIZE, 3)), every_n_steps=0)


def test_config_round_trip(tiny_vqgan):
    trainer = VQGANTrainer(
        tiny_vqgan,
        reconstruction_loss="l2",
        codebook_weight=0.25,
        commitment_weight=1.0,
        foreground_weight=1.5,
        discriminator=_discriminator(),
        adversarial_start=5,
    )
    config = trainer.get_config()
    restored = VQGANTrainer.from_config(config)
    assert restored.vqgan.get_config() == tiny_vqgan.get_config()
    assert restored.reconstruction_loss == "l2"
    assert (restored.codebook_weight, restored.commitment_weight) == (0.25, 1.0)
    assert restored.adversarial_start == 5
    assert restored.foreground_weight == 1.5
    assert restored.perceptual_model is None
    assert isinstance(restored.discriminator, keras.Model)


@pytest.mark.slow
def test_fit_with_every_hook(images):
    """Perceptual, adversarial and restart hooks together in `fit`."""
    keras.utils.set_random_seed(3)
    vqgan = VQGAN(**TINY)
    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same")(inputs))
    discriminator = _discriminator()
    trainer = VQGANTrainer(
        vqgan,
        perceptual_model=features,
        discriminator=discriminator,
        adversarial_start=2,
    )
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    d_before = [np.array(v.numpy()) for v in discriminator.trainable_variables]
    f_before = [np.array(v.numpy()) for v in features.weights]
    restart = CodebookRestart(images[:8], every_n_steps=4)
    history = trainer.fit(
        images, batch_size=8, epochs=2, verbose=0, callbacks=[restart]
    )
    for name in (
        "perceptual_loss",
        "generator_adversarial_loss",
        "discriminator_loss",
        "codebook_usage",
    ):
        assert np.all(np.isfinite(history.history[name])), name
    assert int(trainer.adversarial_step.numpy()) == 8
    assert len(restart.restarted) == 2
    d_after = [np.array(v.numpy()) for v in discriminator.trainable_variables]
    assert any(np.abs(a - b).max() > 0 for a, b in zip(d_before, d_after))
    for a, b in zip(f_before, features.weights):
        np.testing.assert_array_equal(a, np.asarray(b.numpy()))
