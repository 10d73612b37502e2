"""Reading original checkpoints: streaming, and clear errors on bad files."""

import msgpack
import numpy as np
import pytest

from keras_uio.convert.checkpoint import CheckpointError
from keras_uio.convert.checkpoint import iterate_checkpoint
from keras_uio.convert.checkpoint import read_checkpoint_shapes
from keras_uio.convert.convert_checkpoint import load_checkpoint


def _reference_tree(path):
    return msgpack.unpackb(open(path, "rb").read())


def _leaf(shape, dtype, data):
    payload = msgpack.packb([list(shape), dtype, data])
    return msgpack.ExtType(1, payload)


def test_stream_equals_msgpack_decoding(reference_checkpoint):
    tree = _reference_tree(reference_checkpoint)
    count = 0
    for path, array in iterate_checkpoint(reference_checkpoint):
        node = tree
        for key in path:
            node = node[key]
        shape, dtype, data = msgpack.unpackb(node.data)
        np.testing.assert_array_equal(array, np.frombuffer(data, dtype).reshape(shape))
        count += 1
    assert count == len(read_checkpoint_shapes(reference_checkpoint)) == 408


def test_truncated_file_names_the_parameter(reference_checkpoint, tmp_path):
    data = open(reference_checkpoint, "rb").read()
    bad = tmp_path / "truncated.bin"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.*parameter 'discrete_vae/"):
        list(iterate_checkpoint(bad))
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint_shapes(bad)


def test_corrupt_bytes_are_reported(reference_checkpoint, tmp_path):
    data = bytearray(open(reference_checkpoint, "rb").read())
    bad = tmp_path / "corrupt.bin"
    bad.write_bytes(b"\xc3" + bytes(data[1:]))  # `true` instead of a map
    with pytest.raises(CheckpointError, match="corrupt at byte 1: expected a map"):
        read_checkpoint_shapes(bad)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        read_checkpoint_shapes("/nonexistent/small_1000k.bin")


def test_mismatched_parameter_is_named(reference_checkpoint, tmp_path):
    tree = _reference_tree(reference_checkpoint)
    bad_value = np.zeros((64, 40), "float32")  # query kernel should be [64, 32]
    tree["encoder"]["layers_1"]["attention"]["query"]["kernel"] = _leaf(
        bad_value.shape, "float32", bad_value.tobytes()
    )
    bad = tmp_path / "mismatch.bin"
    bad.write_bytes(msgpack.packb(tree))
    with pytest.raises(
        ValueError,
        match="'encoder/layers_1/attention/query/kernel' has shape \\(64, 40\\)",
    ):
        load_checkpoint(str(bad), progress=False)


def test_missing_and_unexpected_parameters(reference_checkpoint, tmp_path):
    tree = _reference_tree(reference_checkpoint)
    del tree["decoder"]["layers_0"]["mlp"]["wo"]
    path = tmp_path / "missing.bin"
    path.write_bytes(msgpack.packb(tree))
    with pytest.raises(
        ValueError, match="lacks parameter 'decoder/layers_0/mlp/wo/kernel'"
    ):
        load_checkpoint(str(path), progress=False)
    tree = _reference_tree(reference_checkpoint)
    tree["encoder"]["extra"] = {"kernel": _leaf((2,), "float32", bytes(8))}
    path = tmp_path / "extra.bin"
    path.write_bytes(msgpack.packb(tree))
    with pytest.raises(ValueError, match="'encoder/extra/kernel' .* is not part"):
        load_checkpoint(str(path), progress=False)
