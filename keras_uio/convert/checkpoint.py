"""Streaming reader for the original Unified-IO `*.bin` checkpoints.

The released checkpoints (`small_1000k.bin` ... `xl_1000k.bin`) are flax
msgpack files: one map of nested maps whose leaves are msgpack ExtType code 1,
each holding a msgpack array `[shape, dtype_name, C-order bytes]`.

The reader walks the byte stream itself so that it never holds more than one
tensor in memory (XL is 10.9 GB) and needs neither flax nor the whole file.

Example:

```python
import msgpack
import numpy as np
from keras_uio.convert.checkpoint import iterate_checkpoint
from keras_uio.convert.checkpoint import read_checkpoint_shapes

# A two-tensor file in the released checkpoints' format.
def leaf(array):
    return msgpack.ExtType(
        1, msgpack.packb([list(array.shape), array.dtype.name, array.tobytes()])
    )

tree = {
    "token_embedder": {"embedding": leaf(np.ones((1408, 64), "float32"))},
    "encoder": {"encoder_norm": {"scale": leaf(np.ones((64,), "float32"))}},
}
with open("checkpoint.bin", "wb") as f:
    f.write(msgpack.packb(tree))

shapes = read_checkpoint_shapes("checkpoint.bin")
assert tuple(shapes[("token_embedder", "embedding")]) == (1408, 64)
for path, array in iterate_checkpoint("checkpoint.bin"):
    print("/".join(path), array.shape)  # token_embedder/embedding (1408, 64) ...
```
"""

import math
import os

import numpy as np

_NDARRAY_EXT = 1

# Element types a checkpoint tensor may declare. Anything else (strings,
# objects, zero-size `V0`/`S0` records, ...) is refused before any memory is
# allocated: a zero-size dtype would let a few bytes declare a huge shape.
ALLOWED_DTYPES = (
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
)


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupt or of the wrong model."""


class _Stream:
    """A file with exact reads that name the parameter being read."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.size = os.path.getsize(self.path)
        self.file = open(self.path, "rb")
        self.where = "the top-level map"

    def close(self):
        self.file.close()

    def tell(self):
        return self.file.tell()

    def read(self, n):
        data = self.file.read(n)
        if len(data) != n:
            raise CheckpointError(
                f"Checkpoint '{self.path}' is truncated: it ends at byte "
                f"{self.size} while reading {self.where} (needed {n} more "
                f"bytes at offset {self.tell() - len(data)})."
            )
        return data

    def skip(self, n):
        if self.tell() + n > self.size:
            self.read(self.size - self.tell() + 1)  # raises truncation.
        self.file.seek(n, os.SEEK_CUR)

    def uint(self, nbytes):
        return int.from_bytes(self.read(nbytes), "big")

    def corrupt(self, what):
        return CheckpointError(
            f"Checkpoint '{self.path}' is corrupt at byte {self.tell()}: "
            f"{what} while reading {self.where}. Is this an original "
            "Unified-IO `.bin` file (flax msgpack)?"
        )


def _read_map_header(stream):
    tag = stream.uint(1)
    if 0x80 <= tag <= 0x8F:
        return tag & 0x0F
    if tag == 0xDE:
        return stream.uint(2)
    if tag == 0xDF:
        return stream.uint(4)
    return None, tag


def _read_str(stream):
    tag = stream.uint(1)
    if 0xA0 <= tag <= 0xBF:
        n = tag & 0x1F
    elif tag in (0xD9, 0xC4):
        n = stream.uint(1)
    elif tag in (0xDA, 0xC5):
        n = stream.uint(2)
    elif tag in (0xDB, 0xC6):
        n = stream.uint(4)
    else:
        raise stream.corrupt(f"expected a string key, found tag 0x{tag:02x}")
    return stream.read(n).decode("utf-8")


def _read_ext_header(stream, tag):
    """Returns (ext_type, payload_length) for an ext tag, else None."""
    fixed = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
    if tag in fixed:
        return stream.uint(1), fixed[tag]
    sizes = {0xC7: 1, 0xC8: 2, 0xC9: 4}
    if tag in sizes:
        n = stream.uint(sizes[tag])
        return stream.uint(1), n
    return None


def _read_int(stream):
    tag = stream.uint(1)
    if tag <= 0x7F:
        return tag
    sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
    if tag in sizes:
        return stream.uint(sizes[tag])
    raise stream.corrupt(f"expected a dimension, found tag 0x{tag:02x}")


def _read_array_header(stream):
    tag = stream.uint(1)
    if 0x90 <= tag <= 0x9F:
        return tag & 0x0F
    if tag == 0xDC:
        return stream.uint(2)
    if tag == 0xDD:
        return stream.uint(4)
    raise stream.corrupt(f"expected an array, found tag 0x{tag:02x}")


def _read_bin_header(stream):
    tag = stream.uint(1)
    sizes = {0xC4: 1, 0xC5: 2, 0xC6: 4}
    if tag not in sizes:
        raise stream.corrupt(f"expected tensor bytes, found tag 0x{tag:02x}")
    return stream.uint(sizes[tag])


def _numpy_dtype(stream, name):
    """The NumPy dtype of an allowed dtype name; raises for any other."""
    if name not in ALLOWED_DTYPES:
        raise stream.corrupt(
            f"dtype {name!r} is not a tensor element type (allowed: "
            f"{', '.join(ALLOWED_DTYPES)})"
        )
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _read_leaf_header(stream, ext_len):
    """Parses `[shape, dtype, bytes-header]`; returns shape, dtype, nbytes.

    Checks, before any tensor memory is allocated, that the dtype is an
    allowed element type, that the record's byte count is exactly
    `prod(shape) * itemsize` and that those bytes are present in the file.
    """
    start = stream.tell()
    if _read_array_header(stream) != 3:
        raise stream.corrupt("a tensor record must have 3 fields")
    shape = tuple(_read_int(stream) for _ in range(_read_array_header(stream)))
    dtype = _numpy_dtype(stream, _read_str(stream))
    nbytes = _read_bin_header(stream)
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if nbytes != expected:
        raise stream.corrupt(
            f"tensor of shape {shape} and dtype {dtype} needs {expected} "
            f"bytes, the record holds {nbytes}"
        )
    if stream.tell() - start + nbytes != ext_len:
        raise stream.corrupt("tensor record length does not add up")
    remaining = stream.size - stream.tell()
    if nbytes > remaining:
        raise CheckpointError(
            f"Checkpoint '{stream.path}' is truncated: {stream.where} declares "
            f"shape {shape} and dtype {dtype} ({nbytes} bytes) but only "
            f"{remaining} bytes remain in the file."
        )
    return shape, dtype, nbytes


def _walk(stream, prefix, load):
    n = _read_map_header(stream)
    if isinstance(n, tuple):
        raise stream.corrupt(f"expected a map, found tag 0x{n[1]:02x}")
    for _ in range(n):
        key = _read_str(stream)
        path = prefix + (key,)
        stream.where = "parameter '" + "/".join(path) + "'"
        tag = stream.uint(1)
        ext = _read_ext_header(stream, tag)
        if ext is None:
            if not (0x80 <= tag <= 0x8F or tag in (0xDE, 0xDF)):
                raise stream.corrupt(f"unexpected tag 0x{tag:02x}")
            stream.file.seek(-1, os.SEEK_CUR)
            yield from _walk(stream, path, load)
            continue
        ext_type, ext_len = ext
        if ext_type != _NDARRAY_EXT:
            raise stream.corrupt(
                f"unsupported msgpack extension type {ext_type} "
                "(only flax ndarrays, type 1, are expected)"
            )
        shape, dtype, nbytes = _read_leaf_header(stream, ext_len)
        if load:
            data = stream.read(nbytes)
            value = np.frombuffer(data, dtype=dtype).reshape(shape)
        else:
            stream.skip(nbytes)
            value = (shape, dtype)
        yield path, value


def iterate_checkpoint(path, load=True):
    """Yields `(path_tuple, array)` for every parameter, one at a time.

    With `load=False` the values are `(shape, dtype)` and the tensor bytes
    are skipped, so the whole layout of a 10 GB file is read in milliseconds.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No checkpoint at '{path}'. Pass the path of an original "
            "Unified-IO `.bin` file (e.g. `small_1000k.bin`)."
        )
    stream = _Stream(path)
    try:
        yield from _walk(stream, (), load)
        if stream.tell() != stream.size:
            raise stream.corrupt(
                f"{stream.size - stream.tell()} unexpected bytes after the "
                "top-level map"
            )
    finally:
        stream.close()


def read_checkpoint_shapes(path):
    """Returns `{path_tuple: shape}` without reading any tensor data."""
    return {p: v[0] for p, v in iterate_checkpoint(path, load=False)}
