"""Every guide runs top to bottom (fast mode), as a reader would run it."""

import os
import pathlib
import runpy

import pytest

GUIDES = sorted((pathlib.Path(__file__).parents[2] / "guides").glob("*.py"))


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.stem)
def test_guide_runs(guide, monkeypatch):
    monkeypatch.setenv("KERAS_UIO_GUIDE_FAST", "1")
    runpy.run_path(str(guide), run_name="__main__")
