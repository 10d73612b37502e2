"""Every guide runs top to bottom (fast mode), as a reader would run it."""

import pathlib
import re
import runpy

import pytest

from keras_uio.tasks import TASKS

GUIDES = sorted((pathlib.Path(__file__).parents[2] / "guides").glob("*.py"))
# Run with `-m slow` (.ci/run does): each takes 25-30 s in fast mode.
SLOW_GUIDES = {
    "adding_a_new_task",
    "distributed_training",
    "training_an_image_tokenizer",
}


@pytest.mark.parametrize(
    "guide",
    [
        pytest.param(g, marks=pytest.mark.slow) if g.stem in SLOW_GUIDES else g
        for g in GUIDES
    ],
    ids=lambda p: p.stem,
)
def test_guide_runs(guide, monkeypatch):
    monkeypatch.setenv("KERAS_UIO_GUIDE_FAST", "1")
    registered = dict(TASKS)
    try:
        runpy.run_path(str(guide), run_name="__main__")
    finally:
        # A guide may register its own task; later tests see the library's.
        TASKS.clear()
        TASKS.update(registered)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.stem)
def test_guide_pictures_exist(guide):
    """A picture a guide embeds is saved next to it (by its full run)."""
    for name in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", guide.read_text()):
        assert (guide.parent / name).is_file(), (
            f"{guide.name} embeds {name}, which is missing: run the guide "
            "without KERAS_UIO_GUIDE_FAST to draw it."
        )
