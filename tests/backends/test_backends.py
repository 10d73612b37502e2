"""Every entry point on TensorFlow and PyTorch, against the original and JAX.

A Keras backend is fixed per process, so `backend_checks.py` runs in one
subprocess per backend: TensorFlow and PyTorch run every check, JAX only
those whose results the others are compared with (sampled ids, option scores,
gradients, the bundled model's answers). The three subprocesses start
together, so that they share the machine's cores.

The PyTorch run makes keras_uio's own implicit NumPy conversions of
tensors fail, as they do for CUDA tensors, so that GPU-only failures show
on a CPU (`refuse_implicit_numpy_in_keras_uio`).

What is checked on TensorFlow and PyTorch:
- presets: a converted checkpoint, the bundled `uio_tiny_easyvqa` and the
  random `uio_tiny` load, with JAX's parameter counts;
- parity: encoder, logits and VQ-GAN equal the original's outputs;
- greedy: text-then-image greedy generation writes the original's tokens
  (up to proven float32 ties, `keras_uio.testing`), scores and image;
- samplers: beam search, top-k with allowed ids, top-p with temperature
  and sampled text-then-image keep their contracts, and one seed samples
  JAX's ids;
- score: text and image option losses equal JAX's; image options given
  as pixels score as the backend's own codes;
- gradients: the training loss's gradients equal JAX's, where JAX uses
  custom gradients (chunked cross-entropy, recomputed regions, the VQ-GAN
  convolutions' per-tap kernel gradient) and the others plain autodiff;
- fit: a one-layer model fit on a captioning + depth `Mixture` lowers its
  text and image losses;
- bundled: `predict_tasks(..., greedy=True)` of the bundled preset on
  easy-vqa test images gives JAX's answers, and its scored text and image
  options JAX's choices and losses.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).parent
REFERENCE = HERE.parent / "data" / "reference" / "uio_tiny"
BACKENDS = ("tensorflow", "torch")
JAX_CHECKS = ("presets", "samplers", "score", "gradients", "bundled")
TIMEOUT = 1200  # seconds, per subprocess

# Same bound as on JAX: no backend needs a looser one. VQ-GAN codes must be
# equal except at proven float32 ties (keras_uio.testing.assert_codes_match,
# at most its default 2): on TensorFlow one of the 512 reference codes is such
# a tie (distances 33.396885 vs 33.39689) and flips.
BOUND = 1e-4
# Generated scores and pixels: the bound of the JAX generation test.
GENERATION_BOUND = 1e-3
# Gradients: per variable, relative to its largest JAX gradient (measured:
# at most 3e-5 on both backends).
GRADIENT_BOUND = 1e-4


def _start(backend, out_dir, checks=()):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        str(HERE / "backend_checks.py"),
        str(REFERENCE),
        str(out_dir),
        *checks,
    ]
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process, out_dir):
    """`(report, arrays)` of a finished run, or `(None, output tail)`."""
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    report = out_dir / "report.json"
    if process.returncode != 0 or not report.exists():
        return None, f"exit code {process.returncode}:\n{output[-4000:]}"
    arrays = dict(np.load(out_dir / "arrays.npz"))
    return json.loads(report.read_text()), arrays


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`{backend: (report, arrays)}` for TensorFlow, PyTorch and JAX."""
    plan = {backend: () for backend in BACKENDS}
    plan["jax"] = JAX_CHECKS
    started = {}
    for backend, checks in plan.items():
        out_dir = tmp_path_factory.mktemp(backend)
        started[backend] = (_start(backend, out_dir, checks), out_dir)
    results = {b: _finish(p, out_dir) for b, (p, out_dir) in started.items()}
    for backend, (report, _) in results.items():
        if report is not None:
            print(backend, "seconds per check:", report["seconds"])
    return results


def _check(runs, backend, name):
    """The result of check `name` on `backend`, failing with its error."""
    report, arrays = runs[backend]
    assert report is not None, f"The {backend} run failed: {arrays}"
    result = report.get(name)
    assert result is not None, f"{backend} ran no `{name}` check."
    assert "error" not in result, f"`{name}` failed on {backend}:\n{result['error']}"
    return result


def _arrays(runs, backend, prefix):
    return {k: v for k, v in runs[backend][1].items() if k.startswith(prefix)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_preset_loads(runs, backend):
    counts = _check(runs, backend, "presets")
    assert counts == _check(runs, "jax", "presets")
    assert counts["converted"] == counts["random"]  # both `uio_tiny`


@pytest.mark.parametrize("backend", BACKENDS)
def test_reference_parity(runs, backend):
    report = _check(runs, backend, "parity")
    assert report["codes_error"] is None, report["codes_error"]
    for key in ("encoder", "text_logits", "image_logits", "vqgan_decoded"):
        assert report[key] <= BOUND, (key, report[key])


@pytest.mark.parametrize("backend", BACKENDS)
def test_greedy_generation_reproduces_the_original(runs, backend):
    # Token equality (up to proven ties) is asserted inside the run.
    report = _check(runs, backend, "greedy")
    assert report["score_error"] <= GENERATION_BOUND, report
    assert report["image_error"] <= GENERATION_BOUND, report


@pytest.mark.parametrize("backend", BACKENDS)
def test_samplers_keep_their_contracts(runs, backend):
    report = _check(runs, backend, "samplers")
    assert report["beam_beats_greedy"] and report["beams_sorted"]
    for name, facts in report["sampled"].items():
        assert all(facts.values()), (name, facts)
    assert report["image_codes_in_range"]
    assert report["image_shape"][0] == 2
    _check(runs, "jax", "samplers")
    ours, theirs = _arrays(runs, backend, "sampled/"), _arrays(runs, "jax", "sampled/")
    assert len(ours) == 3 and sorted(ours) == sorted(theirs)
    # Inverse-CDF draws of host uniforms: a float32 difference in the logits
    # changes a token only if a draw lands within it of a cumulative
    # probability, about 1e-6 per token.
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scores_equal_jax(runs, backend):
    for run in (backend, "jax"):
        # Pixels in, scored as the backend's own VQ-GAN codes.
        assert _check(runs, run, "score")["pixel_options_error"] <= BOUND
    ours, theirs = _arrays(runs, backend, "score/"), _arrays(runs, "jax", "score/")
    assert sorted(ours) == ["score/image", "score/text"] == sorted(theirs)
    # 1e-4, plus the float32 rounding of sums over 256 image codes (~1500).
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, atol=BOUND)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_equal_jax(runs, backend):
    _check(runs, backend, "gradients")
    _check(runs, "jax", "gradients")
    ours, theirs = _arrays(runs, backend, "grad/"), _arrays(runs, "jax", "grad/")
    assert ours and sorted(ours) == sorted(theirs)
    assert any(k.startswith("grad/vqgan/") for k in ours)
    for key, expected in theirs.items():
        scale = max(float(np.abs(expected).max()), 1e-12)
        error = float(np.abs(ours[key] - expected).max()) / scale
        assert error <= GRADIENT_BOUND, (key, error)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_on_a_two_task_mixture_lowers_the_loss(runs, backend):
    history = _check(runs, backend, "fit")
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.5 * history["loss"][0], history
    assert history["text_loss"][-1] < history["text_loss"][0], history
    assert history["image_loss"][-1] < history["image_loss"][0], history


@pytest.mark.parametrize("backend", BACKENDS)
def test_bundled_preset_answers_like_jax(runs, backend):
    ours = _check(runs, backend, "bundled")
    theirs = _check(runs, "jax", "bundled")
    if "skipped" in theirs:
        pytest.skip(theirs["skipped"])
    assert len(ours["answers"]) == len(theirs["answers"]) > 0
    assert ours["token_ids"] == theirs["token_ids"]
    assert ours["answers"] == theirs["answers"]
    assert ours["boxes"] == theirs["boxes"]
    # Scored options: the same choices (text, and images given as pixels),
    # and the text options' losses within the score check's bound.
    assert ours["option_index"] == theirs["option_index"]
    assert sum(i is not None for i in theirs["option_index"]) >= 9  # 3 per image
    scored = [i for i, losses in enumerate(theirs["option_losses"]) if losses]
    assert len(scored) >= 6
    for i in scored:
        np.testing.assert_allclose(
            ours["option_losses"][i], theirs["option_losses"][i], rtol=1e-3, atol=1e-3
        )


def _fsq_bins(z, levels=(8, 5, 5, 5)):
    """Finite scalar quantization's bins in float64 numpy, and each value's
    distance to the nearest rounding boundary."""
    z = np.asarray(z, "float64")
    bins, margins = [], []
    for channel, n in enumerate(levels):
        half_bound = (n - 1) * (1 - 1e-3) / 2
        offset = 0.5 if n % 2 == 0 else 0.0
        shift = np.arctanh(offset / half_bound)
        bounded = np.tanh(z[:, channel] + shift) * half_bound - offset
        bins.append(np.round(bounded) + n // 2)
        margins.append(np.abs(np.abs(bounded - np.round(bounded)) - 0.5))
    return np.stack(bins, -1), np.min(margins, axis=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_finite_scalar_quantization_on_every_backend(runs, backend):
    report = _check(runs, backend, "fsq")
    bins, margin = _fsq_bins(report["inputs"])
    expected = bins @ np.array([1, 8, 40, 200])
    decided = margin > 1e-4  # float32 may round values this near a boundary
    assert decided.sum() >= 60
    np.testing.assert_array_equal(np.array(report["codes"])[decided], expected[decided])
    assert report["lookup_error"] <= 1e-6
    assert report["decoded_shape"] == [2, 16, 16, 3]
    assert report["image_codes_in_range"]
