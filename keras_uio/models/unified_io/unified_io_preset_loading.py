"""Where a preset name leads: a built-in architecture, a bundled trained
preset in the package, or a local folder."""

import copy
import json
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


def saved_dtype_policy_map(preset, dtype=None):
    """`dtype` to load `preset` with: a quantized preset's saved
    `DTypePolicyMap` (keras-hub 0.32's backbone loader replaces it with
    `dtype`, building float layers for int8 weights), its default set to
    `dtype`. (keras-hub resolves this only for task presets, `_resolve_dtype`.)"""
    with open(os.path.join(preset, "config.json")) as f:
        saved = json.load(f)["config"].get("dtype")
    if not (
        isinstance(saved, dict) and "DTypePolicyMap" in saved.get("class_name", "")
    ):
        return dtype
    saved = copy.deepcopy(saved)
    if dtype is not None:
        saved["config"]["default_policy"] = dtype
        for policy in saved["config"]["policy_map"].values():
            policy["config"]["source_name"] = dtype
    return saved
