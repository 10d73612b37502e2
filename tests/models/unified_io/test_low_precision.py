"""bfloat16 and int8 models: generate, score and predict_tasks against float32.

On the reference checkpoint (`converted_tiny`): greedy text of a bfloat16
model (`UnifiedIO.from_preset(..., dtype="bfloat16")`) and of an int8 one
(`model.quantize("int8", ...)`) against the float32 tokens, which equal the
original's (`test_unified_io.py`); scores close to float32; weights that
round-trip through `save_to_preset` / `from_preset` exactly. The int8
models quantize the tied token embedding too (`type_check=False`: keras-hub's
`ReversibleEmbedding` subclass is otherwise skipped by `Model.quantize`), so
the int8 output layer and decode loop (values + scales) are exercised.
"""

import keras
import numpy as np
import pytest

from keras_uio.models.unified_io.unified_io import UnifiedIO

pytestmark = [
    pytest.mark.skipif(
        keras.config.backend() != "jax", reason="low precision is tested on JAX"
    ),
    # Model.quantize warns for every layer kind it leaves as is (convs, norms).
    pytest.mark.filterwarnings("ignore:Layer .* does not have a `quantize`"),
]

TEXT_OPTIONS = np.array([[[5, 9, 0], [300, 0, 0]], [[17, 4, 8], [2, 2, 0]]])


def _encoder_inputs(io):
    return {
        k: io["in/" + k]
        for k in ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")
    }


def _quantized(preset, activations=False):
    """The preset's model with int8 weights (and int8 activations when
    `activations`, Keras' default config), token embedding included."""
    model = UnifiedIO.from_preset(preset)
    config = None
    if not activations:
        config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
    model.quantize("int8", config=config, type_check=False)
    return model


def _agreement(tokens, reference):
    return float(np.mean(np.asarray(tokens) == np.asarray(reference)))


@pytest.fixture(scope="module")
def preset(converted_tiny, tmp_path_factory):
    backbone, vqgan = converted_tiny
    path = tmp_path_factory.mktemp("low_precision") / "uio_tiny"
    UnifiedIO(backbone, vqgan).save_to_preset(str(path))
    return str(path)


@pytest.fixture(scope="module")
def float_model(converted_tiny):
    backbone, vqgan = converted_tiny
    return UnifiedIO(backbone, vqgan)


@pytest.fixture(scope="module")
def int8_model(preset):
    return _quantized(preset)


@pytest.fixture(scope="module")
def bf16_model(preset):
    return UnifiedIO.from_preset(preset, dtype="bfloat16")


def _check_greedy_text(model, io):
    out = model.generate(_encoder_inputs(io), max_text_length=8, stop_at_eos=False)
    # The float32 model's greedy tokens are the original's (test_unified_io).
    assert _agreement(out["text_tokens"], io["out/gen_text_tokens"]) >= 0.95
    assert np.isfinite(out["scores"]).all()


@pytest.mark.slow  # with the int8 slow tests below; .ci/run runs it
def test_int8_weight_only_greedy_text_matches_float32(int8_model, reference_io):
    b = int8_model.backbone
    attention = b.decoder_layers[0].self_attention
    assert b.token_embedding.quantization_mode == "int8"
    assert attention.output_dense.quantization_mode == "int8"
    assert attention.output_dense.inputs_quantizer is None  # weight-only
    _check_greedy_text(int8_model, reference_io)


def test_bfloat16_greedy_text_matches_float32(bf16_model, reference_io):
    dtypes = {v.dtype for v in bf16_model.variables if "float" in v.dtype}
    assert dtypes == {"bfloat16"}
    _check_greedy_text(bf16_model, reference_io)


@pytest.mark.parametrize("name", [pytest.param("int8", marks=pytest.mark.slow), "bf16"])
def test_scores_are_finite_and_close_to_float32(
    name, float_model, int8_model, bf16_model, reference_io
):
    model = {"int8": int8_model, "bf16": bf16_model}[name]
    inputs = _encoder_inputs(reference_io)
    expected = float_model.score(inputs, TEXT_OPTIONS)["loss"]
    loss = model.score(inputs, TEXT_OPTIONS)["loss"]
    assert np.isfinite(loss).all()
    np.testing.assert_allclose(loss, expected, rtol=0.05)


def _assert_same_variables(model, loaded):
    saved = {v.path: v for v in model.variables}
    restored = {v.path: v for v in loaded.variables}
    assert saved.keys() == restored.keys()
    for path, variable in saved.items():
        assert restored[path].dtype == variable.dtype, path
        np.testing.assert_array_equal(
            np.asarray(restored[path]), np.asarray(variable), err_msg=path
        )


@pytest.mark.slow  # with the int8 slow tests below; .ci/run runs it
def test_int8_weights_round_trip_through_a_preset(int8_model, tmp_path):
    int8_model.save_to_preset(str(tmp_path))
    loaded = UnifiedIO.from_preset(str(tmp_path))
    assert loaded.backbone.token_embedding.quantization_mode == "int8"
    dtypes = {v.dtype for v in loaded.backbone.variables}
    assert "int8" in dtypes
    _assert_same_variables(int8_model, loaded)


def test_bfloat16_weights_round_trip_through_a_preset(bf16_model, tmp_path):
    bf16_model.save_to_preset(str(tmp_path))
    loaded = UnifiedIO.from_preset(str(tmp_path), dtype="bfloat16")
    _assert_same_variables(bf16_model, loaded)


@pytest.mark.slow  # with the int8 slow tests below; .ci/run runs it
def test_bare_int8_table_is_refused(int8_model):
    b = int8_model.backbone
    states = np.zeros((1, 2, b.hidden_dim), "float32")
    with pytest.raises(ValueError, match="embedding layer"):
        b.modality_logits.cross_entropy(
            states, b.token_embedding.embeddings, np.zeros((1, 2), "int32"), False
        )


@pytest.mark.slow
def test_int8_with_int8_activations_greedy_text_matches_float32(preset, reference_io):
    """Keras' default int8 config (activations quantized per row too)."""
    model = _quantized(preset, activations=True)
    assert model.backbone.decoder_layers[0].mlp.up.inputs_quantizer is not None
    _check_greedy_text(model, reference_io)
    loss = model.score(_encoder_inputs(reference_io), TEXT_OPTIONS)["loss"]
    assert np.isfinite(loss).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["int8", "bf16"])
def test_image_codes_mostly_agree_with_float32(
    name, float_model, int8_model, bf16_model, reference_io
):
    """Image codes, teacher-forced along the float32 model's own greedy
    codes (free-running codes of this small random-init checkpoint diverge
    at the first near-tie, after which every later code differs).
    """
    io = reference_io
    model = {"int8": int8_model, "bf16": bf16_model}[name]
    inputs = _encoder_inputs(io)
    codes = float_model.generate(
        inputs, max_text_length=8, image=True, stop_at_eos=False
    )
    text, codes = codes["text_tokens"], codes["image_tokens"]
    picks = []
    for m in (float_model, model):
        b = m.backbone
        encoded, mask = b.encode(*inputs.values())
        start = np.full((len(codes), 1), b.image_start_id)
        _, image = b.decode(
            encoded,
            mask,
            np.pad(text[:, :-1], [(0, 0), (1, 0)]),
            np.ones_like(text),
            np.concatenate([start, codes[:, :-1] + b.vocabulary_size], 1),
            full_vocabulary=False,
        )
        picks.append(np.asarray(image).argmax(-1))
    assert (picks[0] == np.asarray(codes)).mean() > 0.99
    assert _agreement(picks[1], picks[0]) >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("name", ["int8", "bf16"])
def test_predict_tasks_runs(name, tiny_model, tmp_path):
    """Every output mode through `predict_tasks` (random weights: structure)."""
    tiny_model.save_to_preset(str(tmp_path))
    if name == "int8":
        model = _quantized(str(tmp_path))
    else:
        model = UnifiedIO.from_preset(str(tmp_path), dtype="bfloat16")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)
    results = model.predict_tasks(
        [
            {"task": "vqa", "image": image, "question": "What color is the shape ?"},
            {"task": "depth", "image": image},
            {"task": "localization", "image": image, "object_name": "triangle"},
            {
                "task": "image_classification",
                "image": image,
                "answer_options": ["red", "blue triangle"],
            },
        ]
    )
    assert isinstance(results[0]["text"], str)
    assert np.isfinite(results[1]["depth"]).all()
    assert results[2]["boxes"].shape[1] == 4
    assert np.isfinite(results[3]["option_losses"]).all()
