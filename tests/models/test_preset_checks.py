"""Preset folders: checksums, config/weights agreement, named errors, local folders win."""

import json
import os
import shutil

import keras
import keras_hub
import numpy as np
import pytest

from keras_uio import VQGAN
from keras_uio import UnifiedIO
from keras_uio import UnifiedIOBackbone
from keras_uio import preset_checks
from keras_uio.models.unified_io.unified_io_preset_loading import PRESETS_DIR
from keras_uio.models.unified_io.unified_io_preset_loading import bundled_preset_path
from keras_uio.models.unified_io.unified_io_presets import unified_io_presets
from tests.conftest import SMALL_VQGAN

BUNDLED = os.path.join(PRESETS_DIR, "uio_tiny_easyvqa")
# uio_tiny with one layer per stack and a 64x64 image: quick to build.
CONFIG = {
    **unified_io_presets["uio_tiny"]["config"],
    "image_size": 64,
    "num_encoder_layers": 1,
    "num_decoder_layers": 2,
}


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    return UnifiedIOBackbone(**CONFIG)


@pytest.fixture
def preset(backbone, tmp_path):
    folder = tmp_path / "preset"
    backbone.save_to_preset(str(folder))
    return folder


def _first_line(error):
    return str(error.value).splitlines()[0]


def _flip_block(path, offset=None, size=4096):
    """Inverts `size` bytes of a file, in its middle by default."""
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset : offset + size] = bytes(255 - b for b in data[offset : offset + size])
    path.write_bytes(bytes(data))


# ----------------------------------------------------------- (a) checksums


def test_save_to_preset_records_the_weights_sha256(preset):
    record = json.loads((preset / "checksums.json").read_text())
    assert record["algorithm"] == "sha256"
    assert record["files"] == {
        "model.weights.h5": preset_checks.sha256_of(preset / "model.weights.h5")
    }
    assert preset_checks.verify_checksums(str(preset)) == ["model.weights.h5"]


@pytest.mark.parametrize(
    "loader", [UnifiedIOBackbone, keras_hub.models.Backbone, UnifiedIO]
)
def test_a_flipped_block_of_the_weights_is_refused(preset, loader):
    _flip_block(preset / "model.weights.h5")
    with pytest.raises(ValueError) as error:
        loader.from_preset(str(preset))
    line = _first_line(error)
    assert f"'{preset / 'model.weights.h5'}' is corrupt" in line, line


def test_presets_without_a_record_still_load(preset, backbone):
    (preset / "checksums.json").unlink()
    loaded = UnifiedIOBackbone.from_preset(str(preset))
    for a, b in zip(loaded.weights, backbone.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_malformed_record_is_named(preset):
    (preset / "checksums.json").write_text("{ not json")
    with pytest.raises(
        ValueError, match=r"^Preset checksum record '.*checksums\.json' is not valid"
    ):
        UnifiedIOBackbone.from_preset(str(preset))


def test_vqgan_weights_are_checked_too(tmp_path):
    keras.utils.set_random_seed(0)
    vqgan = VQGAN(**SMALL_VQGAN)
    folder = tmp_path / "vqgan"
    vqgan.save_to_preset(str(folder))
    assert preset_checks.verify_checksums(str(folder)) == ["model.weights.h5"]
    VQGAN.from_preset(str(folder))  # intact: loads
    _flip_block(folder / "model.weights.h5")
    with pytest.raises(
        ValueError,
        match=r"^Preset weights file '.*vqgan/model\.weights\.h5' is corrupt",
    ):
        VQGAN.from_preset(str(folder))


def test_the_bundled_preset_has_a_matching_record():
    assert preset_checks.verify_checksums(BUNDLED) == ["model.weights.h5"]
    vqgan = os.path.join(BUNDLED, "vqgan")
    assert preset_checks.verify_checksums(vqgan) == ["model.weights.h5"]


# ------------------------------------------------- (b) named file errors


def _set_config(folder, **fields):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["config"].update(fields)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("layers", [1, 3])
def test_a_config_whose_layer_count_disagrees_with_the_weights(preset, layers):
    _set_config(preset, num_decoder_layers=layers)
    for loader in (UnifiedIOBackbone, keras_hub.models.Backbone):
        with pytest.raises(ValueError) as error:
            loader.from_preset(str(preset))
        line = _first_line(error)
        assert f"'{preset / 'model.weights.h5'}' does not match" in line, line
        assert "config.json" in line and "2 decoder layers" in str(error.value)
        assert f"the config has 1 and {layers}" in str(error.value)


def test_a_corrupt_config_is_named(preset):
    (preset / "config.json").write_text('{"class_name": "UnifiedIOBackbone", ')
    for loader in (UnifiedIOBackbone, UnifiedIO):
        with pytest.raises(ValueError) as error:
            loader.from_preset(str(preset))
        assert _first_line(error).startswith(
            f"Preset config '{preset / 'config.json'}' is not valid JSON"
        )
    (preset / "config.json").write_text("[1, 2]")
    with pytest.raises(
        ValueError, match=r"^Preset config '.*config\.json' is not a serialized"
    ):
        UnifiedIOBackbone.from_preset(str(preset))


def test_a_corrupt_vqgan_config_is_named(tmp_path):
    folder = tmp_path / "vqgan"
    VQGAN(**SMALL_VQGAN).save_to_preset(str(folder))
    (folder / "config.json").write_bytes(b"\x00\xff garbage")
    with pytest.raises(
        ValueError, match=r"^Preset config '.*vqgan/config\.json' is not valid JSON"
    ):
        VQGAN.from_preset(str(folder))


def test_missing_weights_are_named(preset):
    (preset / "model.weights.h5").unlink()
    with pytest.raises(FileNotFoundError) as error:
        UnifiedIOBackbone.from_preset(str(preset))
    assert _first_line(error).startswith(
        f"Preset weights file '{preset / 'model.weights.h5'}' is missing"
    )
    UnifiedIOBackbone.from_preset(str(preset), load_weights=False)  # config only: fine


def test_a_corrupt_vocabulary_is_named(tmp_path):
    folder = tmp_path / "preset"
    (folder / "assets" / "tokenizer").mkdir(parents=True)
    preset_checks.check_vocabulary(str(folder))  # no vocabulary: nothing to check
    vocabulary = folder / "assets" / "tokenizer" / "vocabulary.spm"
    vocabulary.write_bytes(b"\x0a\x05hello garbage")
    with pytest.raises(ValueError) as error:
        preset_checks.check_vocabulary(str(folder))
    assert _first_line(error).startswith(
        f"Preset vocabulary '{vocabulary}' is not a SentencePiece model"
    )


def test_the_bundled_vocabulary_passes():
    preset_checks.check_preset_folder(BUNDLED, vocabulary=True)


# --------------------------------------------------- (c) local folders win


def test_an_existing_local_folder_wins_over_the_bundled_name(
    preset, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert bundled_preset_path("uio_tiny_easyvqa") == BUNDLED  # no local folder yet
    shutil.copytree(preset, tmp_path / "uio_tiny_easyvqa")
    assert bundled_preset_path("uio_tiny_easyvqa") == "uio_tiny_easyvqa"
    loaded = UnifiedIOBackbone.from_preset("uio_tiny_easyvqa")
    assert loaded.num_encoder_layers == 1 and loaded.image_size == 64  # the local one
    model = UnifiedIO.from_preset("uio_tiny_easyvqa")
    assert model.backbone.num_encoder_layers == 1 and model.vqgan is None


def test_an_existing_local_folder_wins_over_an_architecture_name(
    preset, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(preset, tmp_path / "uio_tiny")
    loaded = UnifiedIOBackbone.from_preset("uio_tiny")  # weights: the folder's
    assert loaded.num_encoder_layers == 1 and loaded.image_size == 64
