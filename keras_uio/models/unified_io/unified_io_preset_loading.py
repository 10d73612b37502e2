"""Where a preset name leads: a built-in architecture, a bundled trained
preset in the package, or a local folder."""

import os

from keras_uio.models.unified_io.unified_io_presets import unified_io_presets

PRESETS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "presets",
)


def is_architecture(preset):
    """Whether `preset` names a built-in architecture (config, no weights)."""
    entry = unified_io_presets.get(preset) if isinstance(preset, str) else None
    return entry is not None and "config" in entry and not os.path.isdir(preset)


def bundled_preset_path(preset):
    """The folder to load for `preset`, or `preset` unchanged.

    An existing local folder wins over a name (keras-hub's rule): with
    `./uio_tiny_easyvqa` in the working directory the name means that
    folder. A trained preset shipped in the package (an entry with
    `metadata["folder"]`) gives its folder under `keras_uio/presets/`.
    """
    if not isinstance(preset, str) or os.path.isdir(preset):
        return preset
    folder = unified_io_presets.get(preset, {}).get("metadata", {}).get("folder")
    if folder is None:
        return preset
    path = os.path.join(PRESETS_DIR, folder)
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"The bundled preset {preset!r} is missing from {path}; "
            "reinstall keras-uio, or rebuild it with "
            f"`python scripts/train_easy_vqa.py --out {path}`."
        )
    return path
