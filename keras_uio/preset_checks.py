"""Integrity checks of preset folders, so a bad file is named, never loaded silently.

A keras_uio preset folder (written by `save_to_preset` or `keras-uio
convert`) holds `config.json`, the weights (`model.weights.h5`, or shards
listed in `model.weights.json`), `metadata.json` and, for a task model, the
tokenizer (`tokenizer.json`, `assets/tokenizer/vocabulary.spm`) and a
`vqgan/` sub-preset. Loading trusts all of them; these checks make every
problem an error whose first line names the file:

- `write_checksums` / `verify_checksums`: `save_to_preset` records the
  sha256 of each weights file in `checksums.json` beside it, loading
  verifies it (a flipped block in `model.weights.h5` otherwise loads
  silently). Folders without the record (older presets) still load.
- `check_preset_folder`: `config.json` present and valid JSON, the weights
  present when they are to be loaded.
- `check_weights_match_model`: the weights file holds exactly the variables
  of the model built from `config.json` (a smaller `num_decoder_layers` in
  the config otherwise loads the first layers and ignores the rest).
- `check_vocabulary`: the tokenizer's SentencePiece model parses
  (`check_sentencepiece`: any such file, e.g. one being converted).

Example:

```python
from keras_uio import preset_checks
from keras_uio.models.unified_io.unified_io_preset_loading import bundled_preset_path

folder = bundled_preset_path("uio_tiny_easyvqa")  # or "./uio_small", ...
preset_checks.check_preset_folder(folder)  # before building anything
preset_checks.verify_checksums(folder)  # sha256 of the weights
```
"""

import glob
import hashlib
import json
import os
import re

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
SHARDED_WEIGHTS_FILE = "model.weights.json"
CHECKSUM_FILE = "checksums.json"
VOCABULARY_FILE = os.path.join("assets", "tokenizer", "vocabulary.spm")

_CHUNK = 1 << 20  # bytes hashed at a time
_CORRUPT = "The file is corrupt: restore it or save the preset again."


def sha256_of(path):
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_files(preset_dir):
    """Names of the weights files in `preset_dir` (`*.weights.h5/.json`)."""
    pattern = os.path.join(glob.escape(os.fspath(preset_dir)), "*.weights.*")
    return sorted(
        os.path.basename(path)
        for path in glob.glob(pattern)
        if path.endswith((".weights.h5", ".weights.json"))
    )


def write_checksums(preset_dir):
    """Records the sha256 of every weights file in `checksums.json`.

    Args:
        preset_dir: the preset folder, after its weights were written.

    Returns:
        The record, `{"algorithm": "sha256", "files": {name: hex}}`.
    """
    record = {
        "algorithm": "sha256",
        "files": {
            name: sha256_of(os.path.join(preset_dir, name))
            for name in weights_files(preset_dir)
        },
    }
    with open(os.path.join(preset_dir, CHECKSUM_FILE), "w") as file:
        json.dump(record, file, indent=4)
        file.write("\n")
    return record


def _read_json(path, what, advice):
    """The JSON value in `path`; a `ValueError` naming it (`what 'path'`),
    then `advice`, when it is not valid JSON."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{what} '{path}' is not valid JSON ({error}). {advice}"
        ) from None


def read_checksums(preset_dir):
    """The `{name: sha256}` recorded in `preset_dir`, or None without a record."""
    path = os.path.join(preset_dir, CHECKSUM_FILE)
    if not os.path.exists(path):
        return None
    record = _read_json(
        path,
        "Preset checksum record",
        "Restore it, or delete it to load the preset unchecked.",
    )
    files = record.get("files") if isinstance(record, dict) else None
    if (
        not isinstance(files, dict)
        or record.get("algorithm") != "sha256"
        or not all(isinstance(v, str) for v in files.values())
    ):
        raise ValueError(
            f"Preset checksum record '{path}' is malformed: expected "
            '{"algorithm": "sha256", "files": {name: hex digest}}. Restore '
            "it, or delete it to load the preset unchecked."
        )
    return files


def verify_checksums(preset_dir, names=None):
    """Checks weights files against the sha256 recorded by `save_to_preset`.

    Args:
        preset_dir: the preset folder.
        names: file names to check (default: every recorded file). Names
            the record does not list are not checked.

    Returns:
        The names that were verified (empty for a folder without a record,
        e.g. a preset saved before checksums were recorded).

    Raises:
        FileNotFoundError: a recorded file is missing.
        ValueError: a file's content does not match its recorded sha256.
    """
    recorded = read_checksums(preset_dir)
    if recorded is None:
        return []
    names = sorted(recorded) if names is None else names
    verified = []
    for name in names:
        if name not in recorded:
            continue
        path = os.path.join(preset_dir, name)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"Preset weights file '{path}' is missing (it is listed in "
                f"'{os.path.join(preset_dir, CHECKSUM_FILE)}')."
            )
        actual = sha256_of(path)
        if actual != recorded[name]:
            raise ValueError(
                f"Preset weights file '{path}' is corrupt: its sha256 is "
                f"{actual}, but {recorded[name]} was recorded in "
                f"'{os.path.join(preset_dir, CHECKSUM_FILE)}' when it was "
                "saved. Re-download or re-convert the preset (delete the "
                "record only if you changed the weights on purpose)."
            )
        verified.append(name)
    return verified


def check_config(preset_dir):
    """Reads `config.json`; raises naming it when missing or corrupt.

    Returns:
        The parsed config (a dict with `registered_name` and `config`).
    """
    path = os.path.join(preset_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Preset config '{path}' is missing: '{preset_dir}' is not a "
            "preset folder (write one with `save_to_preset` or "
            "`keras-uio convert`)."
        )
    config = _read_json(path, "Preset config", _CORRUPT)
    if not (
        isinstance(config, dict)
        and isinstance(config.get("registered_name"), str)
        and isinstance(config.get("config"), dict)
    ):
        raise ValueError(
            f"Preset config '{path}' is not a serialized Keras object (it "
            "needs 'registered_name' and a 'config' mapping). The file is "
            "corrupt or from another tool."
        )
    return config


def check_weights_present(preset_dir):
    """Raises `FileNotFoundError` naming the weights file when it is absent."""
    single = os.path.join(preset_dir, WEIGHTS_FILE)
    sharded = os.path.join(preset_dir, SHARDED_WEIGHTS_FILE)
    if not (os.path.isfile(single) or os.path.isfile(sharded)):
        raise FileNotFoundError(
            f"Preset weights file '{single}' is missing (nor is there a "
            f"sharded '{SHARDED_WEIGHTS_FILE}'). Restore it, or pass "
            "`load_weights=False` for random weights."
        )


def check_vocabulary(preset_dir):
    """Checks the tokenizer's SentencePiece model, when the preset has one.

    Raises:
        ValueError: `assets/tokenizer/vocabulary.spm` does not parse.
    """
    path = os.path.join(preset_dir, VOCABULARY_FILE)
    if os.path.exists(path):
        check_sentencepiece(path, "Preset vocabulary", _CORRUPT)


def check_sentencepiece(path, what, advice):
    """Raises a `ValueError` naming `path` unless it parses as a
    SentencePiece model.

    Args:
        path: the file.
        what: how the message names it (`"{what} '{path}' is not ..."`).
        advice: the message's last sentence: what to do about it.
    """
    import sentencepiece

    with open(path, "rb") as file:
        proto = file.read()
    try:
        sentencepiece.SentencePieceProcessor().LoadFromSerializedProto(proto)
    except (RuntimeError, OSError):
        raise ValueError(
            f"{what} '{path}' is not a SentencePiece model ({len(proto)} "
            f"bytes that do not parse as one). {advice}"
        ) from None


def is_local_preset(preset):
    """Whether `preset` is an existing local folder (which wins over names)."""
    return isinstance(preset, (str, os.PathLike)) and os.path.isdir(preset)


def check_preset_folder(preset_dir, load_weights=True, vocabulary=False):
    """Checks a local preset folder before anything is built from it.

    Args:
        preset_dir: the folder.
        load_weights: bool. Whether the weights will be loaded (then they
            must be present).
        vocabulary: bool. Also check the tokenizer's vocabulary asset.

    Raises:
        FileNotFoundError, ValueError: naming the file in the first line.
    """
    check_config(preset_dir)
    if load_weights:
        check_weights_present(preset_dir)
    if vocabulary:
        check_vocabulary(preset_dir)


def _h5_variables(path):
    """`{group path: [dataset shapes]}` of a Keras `.weights.h5` file."""
    import h5py

    variables = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            group = name.rsplit("/", 1)[0] if "/" in name else ""
            variables.setdefault(group, []).append(tuple(item.shape))

    try:
        with h5py.File(path, "r") as file:
            file.visititems(visit)
    except OSError as error:
        raise ValueError(
            f"Preset weights file '{path}' is not a readable HDF5 weights "
            f"file ({error}). {_CORRUPT}"
        ) from None
    return variables


def _stack_counts(groups):
    """Encoder/decoder layer groups in saved weights: `{stack: count}`."""
    counts = {}
    for stack in ("encoder", "decoder"):
        pattern = re.compile(rf"layers/unified_io_{stack}_layer(_\d+)?")
        counts[stack] = len({m.group(0) for g in groups if (m := pattern.match(g))})
    return counts


def check_weights_match_model(model, path):
    """Checks that a `.weights.h5` file holds exactly `model`'s variables.

    Keras loads a file with MORE layers than the model silently (the first
    ones); this refuses it, e.g. a `config.json` whose `num_decoder_layers`
    was lowered. Sharded weights (`.json`) are not inspected.

    Args:
        model: the built model about to load the weights.
        path: the weights file.

    Raises:
        ValueError: naming the file, the number of variables in each and,
            for a `UnifiedIOBackbone`, the layer counts.
    """
    path = os.fspath(path)
    if not path.endswith(".h5") or not os.path.isfile(path):
        return
    variables = _h5_variables(path)
    in_file = sorted(s for shapes in variables.values() for s in shapes)
    in_model = sorted(tuple(v.shape) for v in model.weights)
    if in_file == in_model:
        return
    detail = ""
    counts = _stack_counts(variables)
    config = model.get_config()
    if "num_encoder_layers" in config and any(counts.values()):
        detail = (
            f" The file has {counts['encoder']} encoder and "
            f"{counts['decoder']} decoder layers; the config has "
            f"{config['num_encoder_layers']} and "
            f"{config['num_decoder_layers']}."
        )
    raise ValueError(
        f"Preset weights file '{path}' does not match the model built from "
        f"'{os.path.join(os.path.dirname(path), CONFIG_FILE)}': the file "
        f"holds {len(in_file)} variables, the model {len(in_model)} (or "
        f"their shapes differ).{detail} The config was changed or belongs "
        "to other weights."
    )


def verify_before_loading(model, path, check_variables=True):
    """`load_weights` hook: the checksum, then the variables, of `path`.

    Args:
        model: the model about to load `path`.
        path: its weights file. For sharded weights
            (`model.weights.json`) every recorded file of the folder is
            verified.
        check_variables: bool. Also `check_weights_match_model`.
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    folder = folder or "."
    if name.endswith(".weights.json"):
        verify_checksums(folder)
    else:
        verify_checksums(folder, [name])
    if check_variables:
        check_weights_match_model(model, path)
