"""Property tests (hypothesis): no crash, no silent wrong answer.

- tokenizer: any unicode text tokenizes and detokenizes without error, and
  the eager (Python) path gives the same ids as the TensorFlow path that
  `tf.data.Dataset.map` runs (here traced once in a `tf.function`, which
  takes the same path, so each example costs milliseconds);
- images: any array (dtype, shape, values) either becomes a finite RGB image
  in [0, 1] equal to the documented conversion, or raises a `ValueError`
  whose message names the field; PIL modes read as their RGB version;
- command line: any argument list gives exit status 0 or 2 and no
  traceback (the model is never loaded: valid arguments stop where it would);
- vocabulary: box / point <-> location ids round trip within one bin, and
  parsing any id sequence never raises.

`EXAMPLES` sets each property's `max_examples`; `TOTAL_EXAMPLES` is their
sum (the most cases the file tries), and the cases actually tried are
printed when the module finishes (`pytest -s`).
"""

import collections
import contextlib
import glob
import io
import os

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from keras_uio import cli
from keras_uio.models.unified_io import unified_io
from keras_uio.models.unified_io.unified_io_preset_loading import bundled_preset_path
from keras_uio.models.unified_io.unified_io_tokenizer import UnifiedIOTokenizer
from keras_uio.preprocessing import images as image_ops
from keras_uio.tasks.registry import TASKS
from keras_uio.token_text import parse_extra_id
from keras_uio.vocab import Vocabulary

EXAMPLES = {
    "tokenizer_eager_equals_graph": 150,
    "tokenizer_special_tokens": 100,
    "detokenize_any_ids": 100,
    "box_text_tokenizes_to_box_ids": 50,
    "prepare_image_any_array": 200,
    "prepare_image_pil_modes": 60,
    "preprocess_image_any_size": 40,
    "cli_any_arguments": 150,
    "box_round_trip": 150,
    "point_round_trip": 100,
    "parse_any_ids": 150,
    "keypoints_round_trip": 60,
    "extra_id_round_trip": 100,
}
TOTAL_EXAMPLES = sum(EXAMPLES.values())
CASES = collections.Counter()
CLI_OUTCOMES = collections.Counter()


def budget(name):
    """`settings` for one property: its example budget, no deadline."""
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    tried = sum(CASES.values())
    print(f"\nproperty cases tried: {tried} (at most {TOTAL_EXAMPLES})")
    for name, count in sorted(CASES.items()):
        print(f"  {name:<32}{count:>5} / {EXAMPLES[name]}")
    print(f"  command-line outcomes: {dict(CLI_OUTCOMES)}")


# --------------------------------------------------------------- tokenizer
@pytest.fixture(scope="module")
def tokenizer():
    folder = os.path.join(bundled_preset_path("uio_tiny_easyvqa"), "assets")
    (proto,) = glob.glob(os.path.join(folder, "tokenizer", "*.spm"))
    return UnifiedIOTokenizer(proto=proto)


@pytest.fixture(scope="module")
def graph_tokenize(tokenizer):
    """The tf.data path, traced once."""
    fn = tf.function(
        lambda x: tokenizer(x),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    return lambda texts: [r for r in fn(tf.constant(texts)).to_list()]


@pytest.fixture(scope="module")
def graph_detokenize(tokenizer):
    fn = tf.function(
        lambda x: tokenizer.detokenize(x),
        input_signature=[tf.RaggedTensorSpec([None, None], tf.int32)],
    )
    return lambda rows: [
        t.decode("utf-8") for t in fn(tf.ragged.constant(rows, tf.int32)).numpy()
    ]


SPECIALS = st.sampled_from(
    [
        "<extra_id_0>",
        "<extra_id_99>",
        "<extra_id_350>",
        "<extra_id_1099>",
        "</s>",
        "<pad>",
        "<unk>",
        "<extra_id_1100>",
        "<extra_id_>",
        "<extra",
        "\x1f\x1e\x1f",
        "\x01",
        "\x010",
        "\x011",
        "\x00",
        "\u3000",
        "\xa0",
        " ",
        "  ",
        "\n",
        "\u2581",
        "<",
        ">",
    ]
)
# Text with special tokens, separators and odd whitespace mixed in.
MIXED_TEXT = st.lists(st.one_of(st.text(max_size=6), SPECIALS), max_size=8).map("".join)
# Valid UTF-8 (`st.text` has no lone surrogates, which UTF-8 cannot hold).
ANY_TEXT = st.text(max_size=40)


@budget("tokenizer_eager_equals_graph")
@given(st.lists(ANY_TEXT, min_size=1, max_size=4))
def test_tokenizer_eager_equals_graph(tokenizer, graph_tokenize, texts):
    CASES["tokenizer_eager_equals_graph"] += 1
    eager = [tokenizer(t).tolist() for t in texts]
    assert graph_tokenize(texts) == eager
    for ids in eager:
        assert ids[-1] == tokenizer.vocab.eos_id
        assert isinstance(tokenizer.detokenize(ids), str)


@budget("tokenizer_special_tokens")
@given(st.lists(MIXED_TEXT, min_size=1, max_size=4))
def test_tokenizer_special_tokens(tokenizer, graph_tokenize, texts):
    CASES["tokenizer_special_tokens"] += 1
    eager = [tokenizer(t).tolist() for t in texts]
    assert graph_tokenize(texts) == eager
    for ids in eager:
        # A detokenized sequence tokenizes back to itself when it came from
        # special tokens only (text pieces may be normalised).
        if all(
            tokenizer.vocab.is_location(i) or tokenizer.vocab.is_sentinel(i)
            for i in ids[:-1]
        ):
            assert tokenizer(tokenizer.detokenize(ids)).tolist() == ids


@budget("detokenize_any_ids")
@given(st.lists(st.lists(st.integers(-5, 50000), max_size=12), min_size=1, max_size=4))
def test_detokenize_any_ids(tokenizer, graph_detokenize, rows):
    CASES["detokenize_any_ids"] += 1
    eager = [tokenizer.detokenize(r) for r in rows]
    assert all(isinstance(t, str) for t in eager)
    assert graph_detokenize(rows) == eager


BOXES = st.tuples(
    st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)
).map(lambda v: (min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3])))
SIZES = st.tuples(st.integers(1, 4000), st.integers(1, 4000))


@budget("box_text_tokenizes_to_box_ids")
@given(BOXES, SIZES)
def test_box_text_tokenizes_to_box_ids(tokenizer, graph_tokenize, unit_box, size):
    CASES["box_text_tokenizes_to_box_ids"] += 1
    h, w = size
    box = np.multiply(unit_box, [w, h, w, h])
    vocab = tokenizer.vocab
    text = vocab.box_to_text(box, size)
    ids = vocab.box_to_ids(box, size) + [vocab.eos_id]
    assert tokenizer(text).tolist() == ids
    assert graph_tokenize([text]) == [ids]


# ------------------------------------------------------------------ images
DTYPES = st.sampled_from(
    [
        np.uint8,
        np.uint16,
        np.float16,
        np.float32,
        np.float64,
        np.int32,
        np.int8,
        np.bool_,
        np.int64,
        np.complex64,
    ]
)
SHAPES = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=6),
    st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 5)),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3),
)


def expected_unit(array):
    """The documented conversion, written independently."""
    if array.dtype == np.uint8:
        return array / 255.0
    if array.dtype == np.uint16:
        return array / 65535.0
    return np.clip(array.astype(np.float64), 0, 1)


@budget("prepare_image_any_array")
@given(hnp.arrays(DTYPES, SHAPES, elements=None))
def test_prepare_image_any_array(array):
    CASES["prepare_image_any_array"] += 1
    try:
        out = image_ops.prepare_image(array, name="my_image")
    except ValueError as e:
        assert "my_image" in str(e)
        return
    assert out.shape == array.shape[:2] + (3,) and out.dtype == np.float64
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1
    rgb = array if array.ndim == 3 else array[..., None]
    want = expected_unit(rgb)[..., :3]
    np.testing.assert_allclose(out, np.broadcast_to(want, out.shape))
    if array.dtype.kind == "f":
        lo, hi = float(np.min(array)), float(np.max(array))
        assert lo >= -1e-3 and hi <= 1 + 1e-3


LOSSLESS_MODES = ["RGB", "RGBA", "RGBX", "CMYK"]
PIL_CONVERTED_MODES = ["P", "PA", "HSV", "YCbCr", "LAB", "RGBa"]
GREY_MODES = ["L", "LA", "La"]


def expected_from_pil(image, mode, array):
    """What `prepare_image` documents for `image` (mode `mode`)."""
    if mode in LOSSLESS_MODES:
        return array / 255.0
    if mode in PIL_CONVERTED_MODES:  # PIL's own conversion, alpha dropped
        return np.asarray(image.convert("RGB")) / 255.0
    if mode in GREY_MODES:
        grey = np.asarray(image.convert("LA"))[..., :1] / 255.0
    elif mode == "1":
        grey = np.asarray(image, np.float64)[..., None]
    else:  # I;16, I: 16-bit
        grey = np.asarray(image, np.float64)[..., None] / 65535.0
    return np.repeat(grey, 3, axis=-1)


@budget("prepare_image_pil_modes")
@given(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 5), st.just(3))),
    st.sampled_from(
        LOSSLESS_MODES + PIL_CONVERTED_MODES + GREY_MODES + ["1", "I;16", "I", "F"]
    ),
)
def test_prepare_image_pil_modes(array, mode):
    CASES["prepare_image_pil_modes"] += 1
    image = Image.fromarray(array).convert("LA" if mode == "La" else mode).convert(mode)
    try:
        out = image_ops.prepare_image(image)
    except ValueError as e:  # `F` holds 0..255, which is not a [0, 1] float
        assert mode == "F" and "[0, 1]" in str(e)
        return
    assert out.shape == array.shape and np.all((out >= 0) & (out <= 1))
    if mode != "F":
        np.testing.assert_allclose(
            out, expected_from_pil(image, mode, array), atol=1e-12
        )


@budget("preprocess_image_any_size")
@given(st.integers(1, 8), st.integers(1, 5000), st.booleans())
def test_preprocess_image_any_size(short, long, portrait):
    """Thin images (short side 1..8), where truncation can reach 0."""
    CASES["preprocess_image_any_size"] += 1
    height, width = (long, short) if portrait else (short, long)
    image = np.zeros((height, width), np.uint8)
    try:
        pixels, mask = image_ops.preprocess_image(image)
    except ValueError as e:
        # Only an image whose short side scales to 0 pixels is refused.
        assert f"{height}x{width}" in str(e)
        assert int(min(height, width) * 384 / max(height, width)) == 0
        return
    assert np.all(np.isfinite(pixels)) and mask.sum() >= 1


# ------------------------------------------------------------ command line
class ModelWouldLoad(Exception):
    """Raised where a valid command would load a model."""


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    files = {"dir": str(root), "missing": str(root / "missing.png")}
    (root / "text.txt").write_text("not an image")
    files["text"] = str(root / "text.txt")
    Image.new("P", (6, 4)).save(root / "palette.png")
    files["png"] = str(root / "palette.png")
    (root / "empty.bin").write_bytes(b"")
    files["bin"] = str(root / "empty.bin")
    return files


@pytest.fixture(scope="module")
def no_model_loads():
    """Model loading, conversion and `info`'s forward pass raise instead."""
    from keras_uio.convert import convert_checkpoint as convert_module

    def refuse(*args, **kwargs):
        raise ModelWouldLoad()

    patch = pytest.MonkeyPatch()
    patch.setattr(unified_io.UnifiedIO, "from_preset", classmethod(refuse))
    patch.setattr(convert_module, "convert_checkpoint", refuse)
    patch.setattr(cli, "_info", refuse)
    yield
    patch.undo()


FLAGS = [
    "--out",
    "--preset",
    "--num-images",
    "--gallery-images",
    "--task",
    "--image",
    "--text",
    "--region",
    "--options",
    "--context",
    "--seed",
    "--truncate",
    "--overwrite",
    "--vocabulary",
    "--dtype",
    "--help",
    "--bogus",
    "-x",
]
VALUES = [
    "",
    "-1",
    "0",
    "1",
    "3",
    "1000",
    "1001",
    "2147483648",
    "abc",
    "1,2,3,4",
    "4,3,2,1",
    "1,2,3",
    "nan,1,2,3",
    "a,b",
    "a,,b",
    "a,a",
    "1e9",
    "--",
    "float16",
    "float33",
    "\x00",
    "{dir}",
    "{missing}",
    "{text}",
    "{png}",
    "{bin}",
    "{dir}/new",
    "{text}/new",
]


def argument_lists(files):
    value = st.one_of(
        st.sampled_from(VALUES + sorted(TASKS)),
        st.integers(-3, 2000).map(str),
        st.text(max_size=6),
    ).map(lambda v: v.format(**files) if "{" in v and "}" in v else v)
    token = st.one_of(st.sampled_from(FLAGS), value)
    command = st.sampled_from(["demo", "info", "convert", "predict", "junk"])
    anything = st.tuples(command, st.lists(token, max_size=8)).map(
        lambda c: [c[0]] + c[1]
    )
    small = st.integers(-2, 40).map(str)
    out = st.sampled_from(["{dir}/new", "{dir}", "{text}", "{text}/x"]).map(
        lambda v: v.format(**files)
    )
    # Mostly well-formed commands, so that valid ones are common too.
    demo = st.tuples(small, small, out).map(
        lambda v: [
            "demo",
            "--num-images",
            v[0],
            "--gallery-images",
            v[1],
            "--out",
            v[2],
        ]
    )
    image = st.sampled_from(["png", "text", "missing"]).map(files.get)
    predict = st.tuples(
        st.sampled_from(sorted(TASKS)),
        image,
        st.lists(value, max_size=2),
        st.lists(st.sampled_from(["1,1,3,3", "0,0,5,2", "3,1,1,3"]), max_size=2),
        out,
    ).map(
        lambda v: (
            ["predict", "--task", v[0], "--image", v[1], "--out", v[4]]
            + [a for t in v[2] for a in ("--text", t)]
            + [a for r in v[3] for a in ("--region", r)]
        )
    )
    convert = st.tuples(
        st.sampled_from(["bin", "missing", "text", "dir"]).map(files.get),
        out,
        st.sampled_from(
            [
                [],
                ["--overwrite"],
                ["--dtype", "bfloat16"],
                ["--dtype", "nope"],
                ["--vocabulary", "x"],
            ]
        ),
    ).map(lambda v: ["convert", v[0], v[1]] + v[2])
    return st.one_of(anything, demo, predict, convert)


@budget("cli_any_arguments")
@given(data=st.data())
def test_cli_any_arguments(cli_files, no_model_loads, data):
    argv = data.draw(argument_lists(cli_files), label="argv")
    CASES["cli_any_arguments"] += 1
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except ModelWouldLoad:
            CLI_OUTCOMES["valid (model would load)"] += 1
            return
    CLI_OUTCOMES[f"exit {code}"] += 1
    assert code in (0, 2), (argv, code, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert "error:" in err.getvalue(), (argv, err.getvalue())


# -------------------------------------------------------------- vocabulary
VOCAB = Vocabulary()


@budget("box_round_trip")
@given(BOXES, SIZES, st.sampled_from([1.0, 0.5]))
def test_box_round_trip(unit_box, size, offset):
    CASES["box_round_trip"] += 1
    h, w = size
    box = np.multiply(unit_box, [w, h, w, h])
    ids = VOCAB.box_to_ids(box, size)
    assert len(ids) == 4 and all(VOCAB.is_location(i) for i in ids)
    parsed = VOCAB.ids_to_boxes(ids + [VOCAB.eos_id], size, decode_offset=offset)
    assert parsed.errors == [] and parsed.boxes.shape == (1, 4)
    one_bin = max(h, w) / VOCAB.num_location_bins
    np.testing.assert_allclose(parsed.boxes[0], box, atol=2 * one_bin)
    assert VOCAB.box_to_text(box, size).count("<extra_id_") == 4


@budget("point_round_trip")
@given(st.floats(0, 1), st.floats(0, 1), SIZES)
def test_point_round_trip(x, y, size):
    CASES["point_round_trip"] += 1
    h, w = size
    point = (x * w, y * h)
    ids = VOCAB.point_to_ids(point, size)
    parsed = VOCAB.ids_to_points(ids, size)
    assert parsed.errors == [] and parsed.boxes.shape == (1, 2)
    one_bin = max(h, w) / VOCAB.num_location_bins
    np.testing.assert_allclose(parsed.boxes[0], point, atol=2 * one_bin)


@budget("parse_any_ids")
@given(
    st.lists(
        st.one_of(
            st.integers(-3, 50000),
            st.integers(VOCAB.location_id(999), VOCAB.location_id(0)),
        ),
        max_size=30,
    ),
    SIZES,
)
def test_parse_any_ids(ids, size):
    CASES["parse_any_ids"] += 1
    h, w = size
    for parsed in (VOCAB.ids_to_boxes(ids, size), VOCAB.ids_to_points(ids, size)):
        assert parsed.boxes.shape[0] == len(parsed.label_ids)
        top = max(h, w) * (1 + 1e-9)  # bin 999 decodes to max(h, w)
        assert np.all(parsed.boxes >= 0) and np.all(parsed.boxes <= top)
    boxes = VOCAB.ids_to_boxes(ids, size).boxes
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])
    keypoints = VOCAB.ids_to_keypoints(ids, size, detokenize=str)
    assert keypoints.points.shape == (17, 2) and keypoints.visibility.shape == (17,)


@budget("keypoints_round_trip")
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.sampled_from([0, 1, 2])),
        min_size=17,
        max_size=17,
    ),
    SIZES,
)
def test_keypoints_round_trip(points, size):
    CASES["keypoints_round_trip"] += 1
    h, w = size
    keypoints = np.array([(x * w, y * h, v) for x, y, v in points])
    text = VOCAB.keypoints_to_text(keypoints, size)
    # Text -> ids without a SentencePiece model: digits get stand-in ids.
    digit_ids = {"1": 11, "2": 12, "3": 13}
    ids = [
        digit_ids[t] if t in digit_ids else VOCAB.extra_id(parse_extra_id(t))
        for t in text.split()
    ]
    names = {v: k for k, v in digit_ids.items()}
    parsed = VOCAB.ids_to_keypoints(
        ids, size, detokenize=lambda l: "".join(names[i] for i in l)
    )
    assert parsed.valid, parsed.errors
    np.testing.assert_array_equal(parsed.visibility, keypoints[:, 2])
    seen = keypoints[:, 2] > 0
    assert np.all(np.isnan(parsed.points[~seen]))
    one_bin = max(h, w) / VOCAB.num_location_bins
    np.testing.assert_allclose(
        parsed.points[seen], keypoints[seen, :2], atol=2 * one_bin
    )


@budget("extra_id_round_trip")
@given(st.integers(0, VOCAB.num_extra_ids - 1), st.text(max_size=12))
def test_extra_id_round_trip(n, junk):
    CASES["extra_id_round_trip"] += 1
    token = VOCAB.extra_id(n)
    assert VOCAB.extra_id_number(token) == n
    assert parse_extra_id(f" <extra_id_{n}> ") == n
    assert parse_extra_id(VOCAB.token_string(token)) == n
    if n >= VOCAB.num_sentinels:
        bin_index = n - VOCAB.num_sentinels
        assert VOCAB.location_bin(VOCAB.location_id(bin_index)) == bin_index
    parsed = parse_extra_id(junk)
    assert parsed is None or f"<extra_id_{parsed}>" in junk
