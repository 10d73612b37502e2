"""The reference parity holds on TensorFlow and PyTorch too (subprocesses)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent
REFERENCE = HERE.parent / "data" / "reference" / "uio_tiny"

# Same bound as on JAX: no backend needs a looser one. VQ-GAN codes must be
# equal except at proven float32 ties (keras_uio.testing.assert_codes_match,
# at most its default 2): on TensorFlow one of the 512 reference codes is such
# a tie (distances 33.396885 vs 33.39689) and flips.
BOUND = 1e-4


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_reference_parity_on_backend(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(HERE / "backend_parity.py"), str(REFERENCE)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    lines = [l for l in result.stdout.splitlines() if l.startswith("PARITY ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    report = json.loads(lines[-1][len("PARITY "):])
    print(backend, report)
    assert report["codes_error"] is None, report["codes_error"]
    for key in ("encoder", "text_logits", "image_logits", "vqgan_decoded"):
        assert report[key] <= BOUND, (key, report[key])
