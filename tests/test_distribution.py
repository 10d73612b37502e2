"""Data and model parallelism (`keras_uio.distribution`, JAX).

The sharded checks need 8 devices, which JAX fixes when it is first
imported, so they run once in a fresh process (`distribution_checks.py`,
8 virtual CPU devices, a (2, 4) `("batch", "model")` mesh) that prints its
results as JSON; the tests below read them.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

from keras_uio import UnifiedIOBackbone
from keras_uio import distribution as uio_distribution

HERE = pathlib.Path(__file__).parent
MESH = {"batch": 2, "model": 4}
TOLERANCE = 1e-5

jax_only = pytest.mark.skipif(
    keras.config.backend() != "jax", reason="the distribution API runs on JAX"
)


@pytest.fixture(scope="module")
def results():
    if keras.config.backend() != "jax":
        pytest.skip("the distribution API runs on JAX")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent)] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    run = subprocess.run(
        [sys.executable, str(HERE / "distribution_checks.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


# --- expected layouts, written out per variable kind -------------------------

ENCODER_DECODER_LAYER = re.compile(r"(encoder|decoder)_layer_\d+/")
BACKBONE_REPLICATED = (
    "scale",  # RMS norms
    "segment_embeddings",
)
VQGAN_CONVS = {
    "conv_in",
    "conv1",
    "conv2",
    "conv",
    "nin_shortcut",
    "q",
    "k",
    "v",
    "proj_out",
    "quant_conv",
    "post_quant_conv",
}


def expected_spec(path, ndim):
    """The intended layout of one variable; raises for an unknown path."""
    parts = path.split("/")
    name, owner = parts[-1], parts[-2] if len(parts) > 1 else ""
    if path == "token_embedding/embeddings":
        return ["model", "batch"]  # vocabulary x hidden
    if name in BACKBONE_REPLICATED:
        return [None] * ndim
    if ENCODER_DECODER_LAYER.match(path):
        if owner in ("query", "key", "value"):
            return ["batch", "model", None]  # hidden x heads x head_dim
        if owner == "output":
            return ["model", None, "batch"]  # heads x head_dim x hidden
        if owner in ("gate", "up"):
            return ["batch", "model"]  # hidden x mlp
        if owner == "down":
            return ["model", "batch"]  # mlp x hidden
    if re.match(r"(encoder|decoder)_attention_bias/", path):
        if owner in ("query", "key"):  # absolute position projections
            return ["batch", "model", None]
        if name in ("text_bias", "image_bias"):  # heads x buckets
            return ["model", None]
    if name == "position_embeddings":
        return [None, "batch"]
    if path == "encoder_embedding/patch_embedding/projection/kernel":
        return [None, "batch"]
    # VQ-GAN
    if name in ("gamma", "beta"):
        return [None]
    if owner == "conv_out":
        return [None, None, "model", None] if name == "kernel" else [None]
    if owner in VQGAN_CONVS:
        return [None, None, None, "model"] if name == "kernel" else ["model"]
    if path == "quantize/embedding":
        return ["model", None]
    raise AssertionError(f"no intended layout for {path}")


def _shard_shape(shape, spec):
    return [d // MESH[a] if a else d for d, a in zip(shape, spec)]


@jax_only
def test_runs_on_eight_devices(results):
    assert results["device_count"] == 8


@jax_only
def test_every_variable_has_the_expected_sharding(results):
    variables = results["model_parallel"]["variables"]
    assert len(variables) > 300  # backbone and VQ-GAN
    wrong = [
        (v["path"], v["spec"], expected_spec(v["path"], len(v["shape"])))
        for v in variables
        if v["spec"] != expected_spec(v["path"], len(v["shape"]))
    ]
    assert not wrong, wrong[:10]
    # ... and each device really holds only its shard
    for v in variables:
        assert v["shard"] == _shard_shape(v["shape"], v["spec"]), v
    sharded = [v for v in variables if any(v["spec"])]
    assert len(sharded) > len(variables) / 2


@jax_only
def test_model_parallel_training_step_matches_unsharded(results):
    run = results["model_parallel"]
    assert run["loss_diff"] <= TOLERANCE
    assert run["weight_diff"] <= TOLERANCE
    assert results["weights_moved"] > 1e-3  # the step did change the weights
    assert run["slot_spec_mismatches"] == []  # momentum sharded like weights
    assert run["loss_after_diff"] <= TOLERANCE  # evaluate after the step


@jax_only
def test_data_parallel_training_step_matches_unsharded(results):
    run = results["data_parallel"]
    assert run["loss_diff"] <= TOLERANCE
    assert run["weight_diff"] <= TOLERANCE
    assert run["slot_spec_mismatches"] == []
    for v in run["variables"]:
        assert v["spec"] == [None] * len(v["shape"]), v
        assert v["shard"] == v["shape"], v


@jax_only
@pytest.mark.parametrize("setup", ["model_parallel", "data_parallel"])
def test_greedy_generation_under_sharding_matches_unsharded(results, setup):
    run = results[setup]
    assert run["generate_equal"]
    assert run["generate_score_diff"] < 1e-4
    # each replica decodes its own rows of the batch
    assert run["generate_input_spec"] == ["batch", None]


@jax_only
def test_preset_loads_into_a_sharded_model(results):
    preset = results["preset"]
    assert preset["value_diff"] == 0.0
    for path, spec in zip(preset["paths"], preset["specs"]):
        assert spec == expected_spec(path, len(spec)), path
    # `check_layout` on the folder predicted exactly these layouts
    assert sorted(preset["predicted"]) == sorted(
        [p, s] for p, s in zip(preset["paths"], preset["specs"])
    )


@jax_only
def test_indivisible_dimension_names_variable_shape_and_axis(results):
    errors = results["errors"]
    for message in (errors["check_layout_error"], errors["build_error"][1]):
        assert message is not None
        assert "'encoder_attention_bias/relative/text_bias'" in message
        assert "(6, 32)" in message
        assert "mesh axis 'model' (4" in message
    # raised by our check before the variable exists, not by JAX
    assert errors["build_error"][0] == "ValueError"


@jax_only
def test_replicate_fallback_replicates_only_indivisible_variables(results):
    errors = results["errors"]
    assert errors["replicate_warnings"] > 0
    specs = errors["replicate_specs"]
    assert specs["encoder_layer_0/attention/query/kernel"] == [None, None, None]
    assert specs["encoder_layer_0/mlp/gate/kernel"] == ["batch", "model"]


# --- in this process: no devices needed --------------------------------------


def _fake_mesh(batch, model):
    """A mesh of device names only: enough to check layouts, not to run."""
    return keras.distribution.DeviceMesh(
        (batch, model), ("batch", "model"), [f"cpu:{i}" for i in range(batch * model)]
    )


def test_xl_fits_the_paper_mesh_without_building():
    # XL was trained with 4-way model and 128-way data parallelism.
    layout_map = uio_distribution.get_layout_map(_fake_mesh(128, 4))
    rows = uio_distribution.check_layout("uio_xl", layout_map)
    assert len(rows) > 900
    for row in rows:
        assert list(row["layout"]) == expected_spec(row["path"], len(row["shape"]))
    # nothing was allocated, and nothing is left to be initialised later
    from keras.src.backend.common import global_state

    assert not global_state.get_global_attribute("uninitialized_variables")


def test_check_layout_names_the_first_indivisible_variable():
    # 6 heads, as in `uio_small`, on a 4-wide model axis
    config = {
        **UnifiedIOBackbone.presets["uio_tiny"]["config"],
        "num_heads": 6,
        "num_encoder_layers": 1,
        "num_decoder_layers": 1,
    }
    layout_map = uio_distribution.get_layout_map(_fake_mesh(1, 4))
    with pytest.raises(ValueError, match=r"relative/text_bias' of shape \(6, 32\)"):
        uio_distribution.check_layout(config, layout_map)
    rows = uio_distribution.check_layout(config, layout_map, on_indivisible="replicate")
    notes = [r for r in rows if r["note"]]
    assert notes and all(not any(r["layout"]) for r in notes)
    assert all(
        r["shape"][r["layout"].index("model")] % 4 == 0
        for r in rows
        if "model" in r["layout"]
    )


def test_mesh_and_argument_checks():
    with pytest.raises(
        ValueError, match=r"divides the number of devices \(8\); received 3"
    ):
        uio_distribution.device_mesh(3, devices=[f"cpu:{i}" for i in range(8)])
    mesh = uio_distribution.device_mesh(4, devices=[f"cpu:{i}" for i in range(8)])
    assert tuple(mesh.shape) == (2, 4)
    assert tuple(mesh.axis_names) == ("batch", "model")
    batch_only = keras.distribution.DeviceMesh(
        (8,), ("batch",), [f"cpu:{i}" for i in range(8)]
    )
    with pytest.raises(ValueError, match="'model' is not in the device mesh"):
        UnifiedIOBackbone.get_layout_map(batch_only)
    with pytest.raises(ValueError, match="on_indivisible"):
        uio_distribution.check_layout(
            {}, uio_distribution.get_layout_map(mesh), on_indivisible="ignore"
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"coordinator_address": "10.0.0.1"}, "'host:port'"),
        ({"num_processes": 0}, "positive int"),
        (
            {"num_processes": 2, "process_id": 2, "coordinator_address": "h:1"},
            r"in \[0, 2\)",
        ),
        ({"process_id": 0}, "needs `num_processes`"),
        ({"num_processes": 2, "process_id": 1}, "needs `coordinator_address`"),
        ({"num_processes": 2, "coordinator_address": "h:1"}, "`process_id`"),
        ({"seed": "0"}, "`seed` must be an int"),
    ],
)
def test_initialize_multi_host_checks_arguments_first(kwargs, message):
    if keras.config.backend() != "jax":
        with pytest.raises(ValueError, match="JAX backend"):
            uio_distribution.initialize_multi_host(**kwargs)
        return
    with pytest.raises(ValueError, match=message):
        uio_distribution.initialize_multi_host(**kwargs)
