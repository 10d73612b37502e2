"""UnifiedIO.generate / score against the original and against the backbone."""

import keras
import numpy as np
import pytest

from keras_uio.convert.convert_checkpoint import load_checkpoint
from keras_uio.models import backend_compile
from keras_uio.models.unified_io.unified_io import UnifiedIO
from keras_uio.models.unified_io.unified_io_sampler import UnifiedIOSampler
from keras_uio.testing import assert_argmax_match
from keras_uio.testing import assert_greedy_tokens_match
from keras_uio.testing import assert_vqgan_codes_match
from tests.conftest import backbone_inputs


@pytest.fixture(scope="module")
def model(converted_tiny):
    backbone, vqgan = converted_tiny
    return UnifiedIO(backbone, vqgan)


def _encoder_inputs(io):
    return {
        k: io["in/" + k]
        for k in ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")
    }


def _teacher_forced_logits(model, inputs, text, codes):
    """Our text logits and image-code logits along given token sequences.

    Position t scores the token chosen after `text[:, :t]` (`codes[:, :t]`);
    valid while `text` holds no EOS (the original masks keys after one).
    """
    b = model.backbone
    start = np.full((len(text), 1), b.image_start_id)
    forced = b(
        {
            **inputs,
            "text_decoder_inputs": np.pad(text[:, :-1], [(0, 0), (1, 0)]),
            "text_decoder_masks": np.ones_like(text),
            "image_decoder_inputs": np.concatenate(
                [start, codes[:, :-1] + b.vocabulary_size], 1
            ),
        }
    )
    image = np.asarray(forced["image_logits"])[..., b.vocabulary_size :]
    return np.asarray(forced["text_logits"]), image


def _reference_logits(model, io):
    """Zero-argument functions of our logits along the original's generation."""
    cache = []

    def logits():
        if not cache:
            cache.extend(
                _teacher_forced_logits(
                    model,
                    _encoder_inputs(io),
                    io["out/gen_text_tokens"],
                    io["out/gen_image_tokens"],
                )
            )
        return cache

    return (lambda: logits()[0]), (lambda: logits()[1])


def test_greedy_generation_reproduces_the_original(model, reference_io):
    io = reference_io
    out = model.generate(
        _encoder_inputs(io), max_text_length=8, image=True, stop_at_eos=False
    )
    # Equal up to a proven float32 tie of the two largest logits; a row that
    # diverges at one is compared up to that position only (keras_uio.testing).
    text_logits, image_logits = _reference_logits(model, io)
    diverged = assert_greedy_tokens_match(
        out["text_tokens"],
        io["out/gen_text_tokens"],
        text_logits,
        name="text tokens",
    )
    image_diverged = assert_greedy_tokens_match(
        out["image_tokens"],
        io["out/gen_image_tokens"],
        image_logits,
        name="image tokens",
    )
    same = np.ones(len(out["scores"]), bool)
    same[list(diverged) + list(image_diverged)] = False
    np.testing.assert_allclose(
        out["scores"][same], io["out/gen_scores"][same], atol=1e-3
    )
    rows = ~np.isin(np.arange(len(same)), list(image_diverged))
    assert np.abs(out["image"][rows] - io["out/gen_image"][rows]).max(initial=0) <= 1e-3


def _assert_generation_equals_teacher_forced_argmax(model, inputs):
    """Generated tokens are the backbone's teacher-forced argmax along them.

    The backbone's forward pass reads the variables directly; the decode
    loop reads them through its caches and output tables. Returns the
    generated text tokens.
    """
    out = model.generate(inputs, max_text_length=6, image=True, stop_at_eos=False)
    text, codes = out["text_tokens"], out["image_tokens"]
    b = model.backbone
    start = np.full((len(text), 1), b.image_start_id)
    forced = b(
        {
            **inputs,
            "text_decoder_inputs": np.pad(text[:, :-1], [(0, 0), (1, 0)]),
            "text_decoder_masks": np.ones_like(text),
            "image_decoder_inputs": np.concatenate(
                [start, codes[:, :-1] + b.vocabulary_size], 1
            ),
        }
    )
    # valid while no EOS was fed: the original masks keys after an EOS
    # argmax equal to what was generated, except at proven float32 ties
    text_logits = np.asarray(forced["text_logits"])
    assert_argmax_match(text_logits.argmax(-1), text, text_logits, name="text tokens")
    if not (text == 1).any():
        image_logits = np.asarray(forced["image_logits"])[..., b.vocabulary_size :]
        assert_argmax_match(
            image_logits.argmax(-1), codes, image_logits, name="image tokens"
        )
    return text


def test_cached_generation_equals_teacher_forced_argmax(model, reference_io):
    _assert_generation_equals_teacher_forced_argmax(
        model, _encoder_inputs(reference_io)
    )


def test_generation_reads_new_embedding_weights(reference_checkpoint, reference_io):
    # On JAX `generate` keeps the output tables between calls
    # (`unified_io_decoding.OutputTables`); new weights must replace them.
    backbone, vqgan = load_checkpoint(str(reference_checkpoint), progress=False)
    model = UnifiedIO(backbone, vqgan)
    inputs = _encoder_inputs(reference_io)
    before = _assert_generation_equals_teacher_forced_argmax(model, inputs)
    embeddings = backbone.token_embedding.embeddings
    embeddings.assign(keras.ops.flip(embeddings, axis=1))
    after = _assert_generation_equals_teacher_forced_argmax(model, inputs)
    assert not np.array_equal(before, after)


def test_stop_at_eos_pads_after_eos(model, reference_io):
    io = reference_io
    eos_everywhere = UnifiedIOSampler(
        "greedy",
        vocabulary_size=model.backbone.vocabulary_size,
        total_size=1408,
        allowed_ids=[],  # only EOS is left
    )
    out = model.generate(_encoder_inputs(io), max_text_length=5, sampler=eos_everywhere)
    np.testing.assert_array_equal(out["text_tokens"], [[1, 0, 0, 0, 0]] * 2)
    full = model.generate(
        _encoder_inputs(io),
        max_text_length=5,
        sampler=eos_everywhere,
        stop_at_eos=False,
    )
    np.testing.assert_array_equal(full["text_tokens"], np.ones((2, 5)))


def test_constrained_decoding_never_emits_forbidden_ids(model, reference_io):
    allowed = [7, 300, 512, 1100]
    out = model.generate(
        _encoder_inputs(reference_io),
        max_text_length=8,
        sampler="random",
        allowed_ids=allowed,
        seed=3,
        stop_at_eos=False,
    )
    assert np.isin(out["text_tokens"], allowed + [1]).all()


@pytest.mark.parametrize(
    "sampler, kwargs",
    [("top_k", {"k": 3}), ("top_p", {"p": 0.5}), ("random", {"temperature": 0.7})],
)
def test_random_samplers_are_seeded_and_valid(model, reference_io, sampler, kwargs):
    inputs = _encoder_inputs(reference_io)
    a = model.generate(
        inputs, max_text_length=6, sampler=sampler, seed=1, stop_at_eos=False, **kwargs
    )
    b = model.generate(
        inputs, max_text_length=6, sampler=sampler, seed=1, stop_at_eos=False, **kwargs
    )
    np.testing.assert_array_equal(a["text_tokens"], b["text_tokens"])
    tokens = a["text_tokens"]
    assert tokens.min() >= 0 and tokens.max() < model.backbone.vocabulary_size
    assert (a["scores"] < 0).all()


def test_text_option_scores_equal_summed_token_log_probs(model, reference_io):
    io = reference_io
    inputs = _encoder_inputs(io)
    options = np.array([[[5, 9, 0], [300, 0, 0]], [[17, 4, 8], [2, 2, 0]]])
    scores = model.score(inputs, options)
    averaged = model.score(inputs, options, average_loss=True)
    b = model.backbone
    for row in range(2):
        for n in range(2):
            option = options[row, n][options[row, n] > 0]
            targets = np.concatenate([option, [1]])
            forced = b(
                {
                    **{k: v[row : row + 1] for k, v in inputs.items()},
                    "text_decoder_inputs": np.concatenate([[0], targets[:-1]])[None],
                    "text_decoder_masks": np.ones((1, len(targets)), "int32"),
                    "image_decoder_inputs": np.full((1, 1), b.image_start_id),
                }
            )
            logits = np.asarray(forced["text_logits"], "float64")[0]
            log_probs = (
                logits
                - np.log(
                    np.exp(logits - logits.max(-1, keepdims=True)).sum(
                        -1, keepdims=True
                    )
                )
                - logits.max(-1, keepdims=True)
            )
            expected = log_probs[np.arange(len(targets)), targets].sum()
            np.testing.assert_allclose(-scores["loss"][row, n], expected, rtol=1e-4)
            np.testing.assert_allclose(
                -averaged["loss"][row, n], expected / len(targets), rtol=1e-4
            )
    np.testing.assert_array_equal(scores["best"], scores["loss"].argmin(-1))


def test_image_option_scores(model, reference_io):
    io = reference_io
    images = io["in/image_decoder_targets"][:, None]  # [2, 1, 256, 256, 3]
    options = np.concatenate([images, images[::-1]], axis=1)
    scores = model.score(_encoder_inputs(io), options)
    assert scores["loss"].shape == (2, 2) and np.isfinite(scores["loss"]).all()
    # Image options are scored as their VQ-GAN codes: the reference's, up
    # to proven float32 ties (where a flipped code changes the loss).
    image_codes = np.asarray(model.vqgan.encode(io["in/image_decoder_targets"]))
    assert_vqgan_codes_match(
        model.vqgan, io["in/image_decoder_targets"], image_codes, io["out/vae_codes"]
    )
    codes = np.stack([image_codes, image_codes[::-1]], 1)
    by_codes = model.score(
        _encoder_inputs(io), codes, option_masks=np.ones(codes.shape)
    )
    np.testing.assert_allclose(by_codes["loss"], scores["loss"], rtol=1e-5)


def test_masked_image_option_codes_are_hidden_from_the_decoder(model, reference_io):
    """As the original's `predict_with_answer_options`, an image option's
    mask both weights its loss and hides the masked codes from the decoder
    (a portrait image's mask: the right columns of the grid padded)."""
    io = reference_io
    b = model.backbone
    codes = io["out/vae_codes"][:, None].astype("int32")  # [2, 1, 256]
    mask = np.ones((16, 16), "int32")
    mask[:, 11:] = 0
    masks = np.broadcast_to(mask.reshape(1, 1, 256), codes.shape)
    scores = model.score(_encoder_inputs(io), codes, option_masks=masks)
    flat = codes[:, 0]
    image_inputs = np.concatenate(
        [np.full((2, 1), b.image_start_id), flat[:, :-1] + b.vocabulary_size], 1
    )
    encoded = b.encode(
        *(
            _encoder_inputs(io)[k]
            for k in (
                "text_encoder_inputs",
                "image_encoder_inputs",
                "image_input_masks",
            )
        )
    )
    expected = {}
    for name, decoder_masks in (("masked", masks[:, 0]), ("unmasked", None)):
        _, logits = b.decode(
            *encoded,
            np.zeros((2, 1), "int32"),
            np.ones((2, 1), "int32"),
            image_inputs.astype("int32"),
            full_vocabulary=False,
            image_decoder_masks=decoder_masks,
        )
        logits = np.asarray(logits, "float64")
        top = logits.max(-1, keepdims=True)
        log_probs = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, flat[..., None], -1)[..., 0]
        expected[name] = -(picked * masks[:, 0]).sum(-1)
    np.testing.assert_allclose(scores["loss"][:, 0], expected["masked"], rtol=1e-4)
    # The decoder mask matters here: the unmasked pass scores differently.
    assert np.abs(expected["masked"] - expected["unmasked"]).max() > 1e-2


@pytest.mark.parametrize("bad", [-1, 10**6])
def test_score_rejects_ids_outside_the_vocabulary(model, reference_io, bad):
    options = np.array([[[5, bad]], [[5, 9]]])
    with pytest.raises(ValueError, match="must be in \\[0, "):
        model.score(_encoder_inputs(reference_io), options)


def test_bad_generate_inputs(model, reference_io):
    inputs = _encoder_inputs(reference_io)
    with pytest.raises(ValueError, match="lacks \\['image_input_masks'\\]"):
        model.generate({k: v for k, v in inputs.items() if k != "image_input_masks"})
    with pytest.raises(ValueError, match="image_encoder_inputs` must have shape"):
        model.generate({**inputs, "image_encoder_inputs": np.zeros((2, 256, 256, 3))})
    with pytest.raises(ValueError, match="max_text_length` must be in"):
        model.generate(inputs, max_text_length=0)
    with pytest.raises(ValueError, match="`sampler` must be one of"):
        model.generate(inputs, sampler="beam_of_light")
    with pytest.raises(ValueError, match="allowed_ids"):
        model.generate(inputs, allowed_ids=[5000])
    with pytest.raises(ValueError, match="temperature"):
        model.generate(inputs, sampler="random", temperature=float("nan"))
    with pytest.raises(ValueError, match="text_encoder_inputs` ids must be in"):
        model.generate(
            {**inputs, "text_encoder_inputs": inputs["text_encoder_inputs"] - 1}
        )
    with pytest.raises(ValueError, match="image_input_masks` must hold only 0"):
        model.generate({**inputs, "image_input_masks": inputs["image_input_masks"] * 2})
    nan_image = inputs["image_encoder_inputs"].copy()
    nan_image[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="nan or inf"):
        model.generate({**inputs, "image_encoder_inputs": nan_image})
    with pytest.raises(ValueError, match="normalised pixels"):
        model.generate(
            {**inputs, "image_encoder_inputs": np.full_like(nan_image, 255.0)}
        )


def test_vqgan_encode_rejects_unscaled_pixels(model):
    images = np.full((1, 256, 256, 3), 255.0, "float32")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model.vqgan.encode(images)
    images[:] = np.nan
    with pytest.raises(ValueError, match="nan or inf"):
        model.vqgan.encode(images)


def test_save_and_load_preset(model, reference_io, tmp_path):
    model.save_to_preset(tmp_path)
    loaded = UnifiedIO.from_preset(str(tmp_path))
    io = reference_io
    a = model.generate(_encoder_inputs(io), max_text_length=4)
    b = loaded.generate(_encoder_inputs(io), max_text_length=4)
    np.testing.assert_array_equal(a["text_tokens"], b["text_tokens"])
    outputs = loaded(backbone_inputs(io))
    assert set(outputs) == {
        "text_logits",
        "image_logits",
        "text_token_logits",
        "image_code_logits",
        "decoder_states",
    }


def test_public_classes_are_registered_for_keras_serialization():
    import keras

    import keras_uio
    from keras_uio.training import Adafactor
    from keras_uio.training import InverseSquareRootSchedule

    for cls in (
        keras_uio.UnifiedIO,
        keras_uio.UnifiedIOBackbone,
        keras_uio.VQGAN,
        keras_uio.UnifiedIOPreprocessor,
        keras_uio.UnifiedIOTokenizer,
        keras_uio.UnifiedIOImageConverter,
        Adafactor,
        InverseSquareRootSchedule,
    ):
        name = f"keras_uio>{cls.__name__}"
        assert keras.saving.get_registered_name(cls) == name
        assert keras.saving.get_registered_object(name) is cls


def test_beam_search_with_one_beam_equals_greedy(model, reference_io):
    inputs = _encoder_inputs(reference_io)
    greedy = model.generate(inputs, max_text_length=6, stop_at_eos=False)
    beam = model.generate(inputs, max_text_length=6, sampler="beam", num_beams=1)
    np.testing.assert_array_equal(beam["text_tokens"], greedy["text_tokens"])
    np.testing.assert_allclose(beam["scores"], greedy["scores"], rtol=1e-5)


def test_beam_search_finds_at_least_the_greedy_score(model, reference_io):
    inputs = _encoder_inputs(reference_io)
    greedy = model.generate(inputs, max_text_length=4, stop_at_eos=False)
    beam = model.generate(inputs, max_text_length=4, sampler="beam", num_beams=4)
    assert beam["beam_tokens"].shape == (2, 4, 4)
    assert (np.diff(beam["beam_scores"], axis=1) <= 1e-6).all()  # best first
    has_eos = (greedy["text_tokens"] == 1).any(-1)
    assert (beam["scores"][~has_eos] >= greedy["scores"][~has_eos] - 1e-4).all()
    with pytest.raises(ValueError, match="text only"):
        model.generate(inputs, sampler="beam", image=True)


def test_text_only_inputs_skip_the_image_patches(model, reference_io):
    """All-zero image masks: the text-only encoder gives the same output."""
    inputs = _encoder_inputs(reference_io)
    no_image = {
        **inputs,
        "image_input_masks": np.zeros_like(inputs["image_input_masks"]),
    }
    b = model.backbone
    full, full_mask = b.encode(**no_image)
    text, text_mask = b.encode_text(inputs["text_encoder_inputs"])
    length = inputs["text_encoder_inputs"].shape[1]
    valid = np.asarray(text_mask).astype(bool)
    np.testing.assert_allclose(
        np.asarray(text)[valid], np.asarray(full)[:, :length][valid], atol=1e-5
    )
    fast = model.generate(no_image, max_text_length=6, stop_at_eos=False)
    # the same decoder over the full (masked) encoder output, step by step
    forced = b.decode(
        full,
        full_mask,
        np.pad(fast["text_tokens"][:, :-1], [(0, 0), (1, 0)]),
        np.ones_like(fast["text_tokens"]),
        np.full((2, 1), b.image_start_id),
    )[0]
    forced = np.asarray(forced)
    assert_argmax_match(
        forced.argmax(-1), fast["text_tokens"], forced, name="text tokens"
    )


def test_training_forward_computes_each_modality_over_its_own_ids(model, reference_io):
    """`UnifiedIO.__call__` (the fit path): own-id logits, same numbers."""
    io = reference_io
    inputs = backbone_inputs(io)
    b = model.backbone
    v, vi = b.vocabulary_size, b.image_vocabulary_size
    full = b(inputs)  # every id at every position, then masked
    out = model(inputs)
    valid = io["in/text_decoder_targets"] > 0
    text, image = out["text_token_logits"], out["image_code_logits"]
    assert text.shape[-1] == v and image.shape[-1] == vi
    text, image = np.asarray(text), np.asarray(image)
    np.testing.assert_allclose(
        text[valid], io["out/dec_text_logits"][..., :v][valid], atol=1e-4
    )
    np.testing.assert_allclose(image, io["out/dec_image_logits"][..., v:], atol=1e-4)
    # the full-width outputs keep the backbone's contract (-1e10 elsewhere)
    for key in ("text_logits", "image_logits"):
        ours, theirs = np.asarray(out[key]), np.asarray(full[key])
        assert ours.shape == theirs.shape
        np.testing.assert_array_equal(ours <= -1e9, theirs <= -1e9)
        rows = valid if key == "text_logits" else slice(None)
        np.testing.assert_allclose(ours[rows], theirs[rows], atol=1e-4)
    # The loss reads `decoder_states` (logits recomputed in chunks): it is
    # the token cross-entropy under the original's logits.
    image_ids = inputs["image_decoder_inputs"]
    y = {
        "text_decoder_targets": io["in/text_decoder_targets"],
        "image_decoder_targets": np.concatenate(
            [image_ids[:, 1:], image_ids[:, :1] + 1], 1
        ),
    }

    def summed_cross_entropy(logits, targets, weights):
        logits = logits.astype("float64")
        top = logits.max(-1, keepdims=True)
        lse = np.log(np.exp(logits - top).sum(-1)) + top[..., 0]
        picked = np.take_along_axis(logits, targets[..., None], -1)[..., 0]
        return ((lse - picked) * weights).sum()

    text_targets = y["text_decoder_targets"]
    text_sum = summed_cross_entropy(
        io["out/dec_text_logits"][..., :v], np.maximum(text_targets, 0), valid
    )
    image_sum = summed_cross_entropy(
        io["out/dec_image_logits"][..., v:],
        y["image_decoder_targets"] - v,
        np.ones(image_ids.shape),
    )
    expected = (text_sum + image_sum) / (valid.sum() + image_ids.size)
    loss = float(model.compute_loss(inputs, y, out))
    assert loss == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="decoder_states"):
        model.compute_loss(inputs, y, {k: full[k] for k in full})


jax_only = pytest.mark.skipif(
    keras.config.backend() != "jax", reason="XLA compile options are JAX's"
)


@jax_only
def test_decode_compiler_options_keep_products_off_ynnpack():
    import jax
    import jax.numpy as jnp

    def product(a, b):
        return a @ b

    args = (jnp.ones((8, 64)), jnp.ones((64, 64)))
    default = jax.jit(product).lower(*args).compile().as_text()
    tuned = jax.jit(product, compiler_options=backend_compile.CPU_COMPILER_OPTIONS)
    tuned = tuned.lower(*args).compile().as_text()
    # XLA's default hands the product to YNNPACK; the decode options do not.
    assert "ynn_fusion" in default
    assert "ynn_fusion" not in tuned


@jax_only
def test_generation_falls_back_when_xla_rejects_the_decode_options(
    model, reference_io, monkeypatch
):
    import jax

    bad = {"xla_cpu_experimental_ynn_fusion_type": "NOT_A_FUSION_TYPE"}
    with pytest.raises(Exception, match="xla_cpu_experimental_ynn_fusion_type"):
        jax.jit(lambda x: x + 1, compiler_options=bad).lower(1.0).compile()
    monkeypatch.setattr(backend_compile, "CPU_COMPILER_OPTIONS", bad)
    fresh = UnifiedIO(model.backbone, model.vqgan)  # nothing compiled yet
    out = fresh.generate(
        _encoder_inputs(reference_io), max_text_length=8, stop_at_eos=False
    )
    assert_greedy_tokens_match(
        out["text_tokens"],
        reference_io["out/gen_text_tokens"],
        _reference_logits(model, reference_io)[0],
        name="text tokens",
    )
