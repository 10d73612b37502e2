"""The converter refuses incomplete or corrupt checkpoints, vocabularies and folders.

Bad checkpoints are small files in the original format (a msgpack map of
nested maps whose leaves are ExtType 1 `[shape, dtype, bytes]`, see
tests/data/reference/README.md), made by editing the reference checkpoint.
"""

import os

import msgpack
import numpy as np
import pytest

from keras_uio.convert.checkpoint import CheckpointError
from keras_uio.convert.checkpoint import read_checkpoint_shapes
from keras_uio.convert.convert_checkpoint import convert_checkpoint
from keras_uio.convert.convert_checkpoint import load_checkpoint
from keras_uio.convert.convert_checkpoint import preset_entries
from keras_uio.convert.unified_io_weights import check_layers


def _leaf(shape, dtype, data):
    return msgpack.ExtType(1, msgpack.packb([list(shape), dtype, data]))


@pytest.fixture
def tree(reference_checkpoint):
    """A fresh copy of the reference checkpoint's nested maps."""
    return msgpack.unpackb(open(reference_checkpoint, "rb").read())


def _write(tree, path):
    path.write_bytes(msgpack.packb(tree))
    return str(path)


# ------------------------------------------------------ (a) whole layers


def test_a_deleted_last_decoder_layer_is_refused(tree, tmp_path):
    del tree["decoder"]["layers_1"]  # 2 encoder layers, 1 decoder layer
    bad = _write(tree, tmp_path / "no_decoder_layer_1.bin")
    with pytest.raises(
        ValueError,
        match=r"no_decoder_layer_1\.bin' has 2 encoder "
        r"layers but 1 decoder layers: are 'decoder/layers_1' missing",
    ):
        load_checkpoint(bad, progress=False)
    with pytest.raises(ValueError, match="decoder/layers_1"):
        convert_checkpoint(bad, str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists()


def test_unequal_layer_counts_load_when_allowed(tree, tmp_path):
    del tree["decoder"]["layers_1"]
    bad = _write(tree, tmp_path / "one_decoder_layer.bin")
    backbone, _ = load_checkpoint(bad, progress=False, allow_unequal_layers=True)
    assert backbone.num_encoder_layers == 2 and backbone.num_decoder_layers == 1


def test_a_gap_in_the_layer_numbering_is_named(tree, tmp_path):
    del tree["decoder"]["layers_0"]  # layers_1 alone
    bad = _write(tree, tmp_path / "gap.bin")
    with pytest.raises(
        ValueError,
        match=r"gap\.bin'.*lacks decoder layer\(s\) "
        r"'decoder/layers_0'",
    ):
        load_checkpoint(bad, progress=False)


def test_a_missing_part_of_a_layer_is_named(tree, tmp_path):
    del tree["encoder"]["layers_1"]["attention"]["key"]
    del tree["encoder"]["layers_1"]["pre_mlp_layer_norm"]
    bad = _write(tree, tmp_path / "partial.bin")
    with pytest.raises(
        ValueError,
        match=r"partial\.bin' lacks parameter "
        r"'encoder/layers_1/pre_mlp_layer_norm/scale': 2 of the 9",
    ):
        load_checkpoint(bad, progress=False)


def test_check_layers_on_shapes(reference_checkpoint):
    shapes = read_checkpoint_shapes(reference_checkpoint)
    assert check_layers(shapes) == (2, 2)
    extra = dict(shapes)
    extra[("decoder", "layers_0", "mlp", "wi_2", "kernel")] = (64, 96)
    with pytest.raises(
        ValueError, match="'decoder/layers_0/mlp/wi_2/kernel' .* not part"
    ):
        check_layers(extra)
    no_encoder = {
        p: s
        for p, s in shapes.items()
        if p[:2] != ("encoder", "layers_0") and p[:2] != ("encoder", "layers_1")
    }
    with pytest.raises(ValueError, match="has no encoder layers"):
        check_layers(no_encoder)


def test_a_configuration_far_larger_than_the_file_is_refused(tree, tmp_path):
    # 300 "res blocks" of one float each would make the inferred VQ-GAN
    # 300 blocks deep at every level: ~100x the parameters in the file.
    encoder = tree["discrete_vae"]["encoder"]
    for i in range(2, 300):
        encoder[f"down_0_block_{i}"] = {
            "norm1": {"scale": _leaf((1,), "float32", bytes(4))}
        }
    bad = _write(tree, tmp_path / "deep.bin")
    with pytest.raises(
        ValueError,
        match=r"deep\.bin' holds [\d,]+ parameters, but "
        r"the configuration inferred .* needs [\d,]+: refusing",
    ):
        load_checkpoint(bad, progress=False)


# ------------------------------------------------ (b) declared sizes


@pytest.mark.parametrize("dtype", ["V0", "S0", "object", "complex64", "nonsense"])
def test_a_huge_tensor_of_a_zero_size_or_unknown_dtype_is_refused(
    tree, tmp_path, dtype
):
    tree["token_embedder"]["embedding"] = _leaf((10**9, 64), dtype, b"")
    bad = _write(tree, tmp_path / "huge.bin")
    match = (
        r"huge\.bin' is corrupt .* dtype '" + dtype + r"' is not a tensor "
        r"element type .* parameter 'token_embedder/embedding'"
    )
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint_shapes(bad)
    with pytest.raises(CheckpointError, match=match):
        convert_checkpoint(bad, str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists()


def test_declared_bytes_must_be_in_the_file(tree, tmp_path):
    data = msgpack.packb(tree)
    bad = tmp_path / "short.bin"
    bad.write_bytes(data[:-64])  # cuts into the last tensor's bytes
    with pytest.raises(
        CheckpointError,
        match=r"short\.bin' is truncated: parameter "
        r"'[a-z_/0-9]+' declares shape .* but only \d+ bytes remain",
    ):
        read_checkpoint_shapes(bad)


def test_a_record_whose_byte_count_disagrees_with_its_shape_is_refused(tree, tmp_path):
    tree["encoder"]["encoder_norm"]["scale"] = _leaf((64,), "float32", bytes(4 * 63))
    bad = _write(tree, tmp_path / "short_record.bin")
    with pytest.raises(
        CheckpointError,
        match=r"needs 256 bytes, the record holds 252 "
        r"while reading parameter 'encoder/encoder_norm/scale'",
    ):
        read_checkpoint_shapes(bad)


def test_bfloat16_and_float16_tensors_are_read(tree, tmp_path):
    import ml_dtypes

    scale = np.linspace(0.5, 1.5, 64).astype(ml_dtypes.bfloat16)
    tree["encoder"]["encoder_norm"]["scale"] = _leaf((64,), "bfloat16", scale.tobytes())
    half = np.linspace(-1, 1, 64).astype("float16")
    tree["decoder"]["decoder_norm"]["scale"] = _leaf((64,), "float16", half.tobytes())
    path = _write(tree, tmp_path / "mixed.bin")
    backbone, _ = load_checkpoint(path, progress=False)
    np.testing.assert_array_equal(
        np.asarray(backbone.encoder_norm.scale), scale.astype("float32")
    )
    np.testing.assert_array_equal(
        np.asarray(backbone.decoder_norm.scale), half.astype("float32")
    )


# ------------------------------------------- (c) existing output folder


def _old_preset(folder):
    """A folder that looks like an earlier conversion with a tokenizer."""
    (folder / "assets" / "tokenizer").mkdir(parents=True)
    (folder / "assets" / "tokenizer" / "vocabulary.spm").write_bytes(b"old")
    for name in ("config.json", "metadata.json", "tokenizer.json", "preprocessor.json"):
        (folder / name).write_text("{}")
    (folder / "model.weights.h5").write_bytes(b"old weights")
    (folder / "notes.txt").write_text("mine")  # not part of a preset


def test_an_existing_preset_is_kept_unless_overwrite(reference_checkpoint, tmp_path):
    import keras_uio

    out = tmp_path / "preset"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert preset_entries(str(out)) == []  # unrelated files are no preset
    (out / "notes.txt").unlink()
    _old_preset(out)
    before = sorted(os.listdir(out))
    with pytest.raises(
        FileExistsError,
        match=r"'.*preset' already holds a preset "
        r"\(assets, config.json, .*\).*overwrite=True.*--overwrite",
    ):
        convert_checkpoint(str(reference_checkpoint), str(out), progress=False)
    assert sorted(os.listdir(out)) == before
    assert (out / "model.weights.h5").read_bytes() == b"old weights"

    convert_checkpoint(
        str(reference_checkpoint), str(out), progress=False, overwrite=True
    )
    # no stale tokenizer beside the new weights; other files untouched
    for stale in ("tokenizer.json", "preprocessor.json", "assets"):
        assert not (out / stale).exists(), stale
    assert (out / "notes.txt").read_text() == "mine"
    model = keras_uio.UnifiedIO.from_preset(str(out))
    assert model.preprocessor is None and model.vqgan is not None


# ------------------------------------------------------ (d) vocabulary


@pytest.mark.parametrize("content", [b"not a sentencepiece model\n", b""])
def test_a_vocabulary_that_is_not_sentencepiece_is_named(
    reference_checkpoint, tmp_path, content
):
    vocabulary = tmp_path / "words.txt"
    vocabulary.write_bytes(content)
    with pytest.raises(
        ValueError,
        match=r"^The vocabulary '.*words\.txt' is not a "
        "SentencePiece model",
    ):
        convert_checkpoint(
            str(reference_checkpoint),
            str(tmp_path / "out"),
            vocabulary=str(vocabulary),
            progress=False,
        )
    assert not (tmp_path / "out").exists()


def test_cli_names_a_bad_vocabulary(reference_checkpoint, tmp_path, capsys):
    from keras_uio.cli import main

    vocabulary = tmp_path / "words.txt"
    vocabulary.write_text("the\nof\nand\n")
    code = main(
        [
            "convert",
            str(reference_checkpoint),
            str(tmp_path / "out"),
            "--vocabulary",
            str(vocabulary),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "words.txt' is not a SentencePiece model" in err, err
