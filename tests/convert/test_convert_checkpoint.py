"""`keras-uio convert`: original checkpoint -> preset folder -> same numbers."""

import json

import keras_hub
import numpy as np
import pytest

from keras_uio import VQGAN
from keras_uio import UnifiedIOBackbone
from keras_uio.cli import main
from keras_uio.convert.checkpoint import read_checkpoint_shapes
from keras_uio.convert.convert_checkpoint import convert_checkpoint
from keras_uio.convert.unified_io_weights import backbone_config_from_shapes
from keras_uio.testing import assert_vqgan_codes_match
from tests.conftest import backbone_inputs


def test_config_inferred_from_shapes(reference_checkpoint):
    config = backbone_config_from_shapes(read_checkpoint_shapes(reference_checkpoint))
    original = json.load(open(reference_checkpoint.parent / "reference_config.json"))
    model = original["model"]
    assert config["vocabulary_size"] == model["vocab_size"]
    assert config["image_vocabulary_size"] == model["image_vocab_size"]
    assert config["hidden_dim"] == model["emb_dim"]
    assert config["num_heads"] == model["num_heads"]
    assert config["head_dim"] == model["head_dim"]
    assert config["intermediate_dim"] == model["mlp_dim"]
    assert config["num_encoder_layers"] == model["num_encoder_layers"]
    assert config["num_decoder_layers"] == model["num_decoder_layers"]
    assert config["image_size"] == model["default_image_size"][0]
    assert config["max_encoder_text_length"] == model["encoder_max_text_length"]
    assert config["max_decoder_image_length"] == model["decoder_max_image_length"]
    assert config["num_segments"] == model["num_seg_emb"]


def test_cli_convert_writes_a_loadable_preset(
    reference_checkpoint, reference_io, tmp_path, capsys
):
    out = tmp_path / "uio_tiny"
    assert main(["convert", str(reference_checkpoint), str(out)]) == 0
    assert "Converted" in capsys.readouterr().out
    backbone = keras_hub.models.Backbone.from_preset(str(out))
    assert isinstance(backbone, UnifiedIOBackbone)
    vqgan = VQGAN.from_preset(str(out / "vqgan"))
    io = reference_io
    images = io["in/image_decoder_targets"]
    codes = np.asarray(vqgan.encode(images))
    assert_vqgan_codes_match(vqgan, images, codes, io["out/vae_codes"])
    logits = np.asarray(backbone(backbone_inputs(io))["image_logits"])
    assert np.abs(logits - io["out/dec_image_logits"]).max() <= 1e-4


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "none.bin"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "none.bin" in err and "Traceback" not in err
    assert "does not exist" in err or "No checkpoint at" in err


def test_vocabulary_must_match_the_checkpoint(
    reference_checkpoint, tiny_proto, tmp_path
):
    spm_path = tmp_path / "spiece.model"
    spm_path.write_bytes(tiny_proto)  # a few dozen pieces; the model has 1152 text ids
    with pytest.raises(ValueError, match=r"gives \d+ text ids .* checkpoint has 1152"):
        convert_checkpoint(
            str(reference_checkpoint), str(tmp_path / "out"), vocabulary=str(spm_path)
        )
    assert not (tmp_path / "out").exists()  # fails before any work
