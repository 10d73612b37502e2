"""`keras-uio` reports user errors as `keras-uio: error: ...`, exit 2.

Every case runs `keras_uio.cli.main` in-process and fails before any model
loads (`UnifiedIO.from_preset` is replaced by a fake that records what it
is asked to run).
"""

import json
import os

import numpy as np
import pytest
from PIL import Image
from PIL import ImageDraw

from keras_uio import cli
from keras_uio.errors import UserInputError
from keras_uio.errors import check_output_dir
from keras_uio.models.unified_io import unified_io


class FakeModel:
    """Stands in for `UnifiedIO`: records `predict_tasks` calls."""

    preprocessor = object()

    def __init__(self, result):
        self.result = result
        self.calls = []

    def predict_tasks(self, examples, **kwargs):
        self.calls.append((examples, kwargs))
        return [dict(self.result)]


@pytest.fixture
def fake_model(monkeypatch):
    """`UnifiedIO.from_preset` returns a `FakeModel`; loading is an error."""
    model = FakeModel({"task": "vqa", "text": "blue", "errors": []})
    monkeypatch.setattr(
        unified_io.UnifiedIO, "from_preset", classmethod(lambda cls, p: model)
    )
    return model


@pytest.fixture
def no_model(monkeypatch):
    """Any attempt to load a model fails the test."""

    def refuse(cls, preset):
        raise AssertionError("the model must not load for a user error")

    monkeypatch.setattr(unified_io.UnifiedIO, "from_preset", classmethod(refuse))


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(argv, capsys, *fragments):
    code, _, err = run(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert "error:" in err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    return str(path)


@pytest.fixture
def red_png(tmp_path):
    image = np.zeros((12, 20, 3), np.uint8)
    image[3:9, 5:15] = (255, 0, 0)
    path = tmp_path / "red.png"
    Image.fromarray(image).convert("P").save(path)
    return str(path)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["demo", "--gallery-images", "-1"], "--gallery-images: must be >= 0"),
        (["demo", "--num-images", "0"], "--num-images: must be in [1, 1000]"),
        (["demo", "--num-images", "-5"], "--num-images: must be in [1, 1000]"),
        (["demo", "--num-images", "1001"], "--num-images: must be in [1, 1000]"),
        (["demo", "--num-images", "two"], "must be an integer, got 'two'"),
        (["predict", "--task", "vqa", "--seed", "-1"], "--seed: must be in"),
        (["predict", "--task", "vqa", "--region", "1,2,3"], "x1,y1,x2,y2"),
        (["predict", "--task", "vqa", "--region", "1,2,nan,4"], "x1,y1,x2,y2"),
        (["predict", "--task", "vqa", "--region", "5,2,1,4"], "x1 <= x2"),
        (["predict", "--task", "vqa", "--options", "a,,b"], "non-empty"),
        (["predict", "--task", "vqa", "--options", "a,a"], "distinct"),
        (["predict"], "--task"),
        (["nonsense"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_options_exit_2(no_model, capsys, argv, fragment):
    assert_user_error(argv, capsys, fragment)


def test_help_exits_0(capsys):
    code, out, _ = run(["predict", "--help"], capsys)
    assert code == 0 and "--truncate" in out and "--options" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--out", "{file}"],
        ["demo", "--out", "{file}/inside"],
        ["predict", "--task", "captioning", "--image", "{png}", "--out", "{file}"],
    ],
)
def test_output_path_that_is_a_file(no_model, capsys, a_file, red_png, argv):
    argv = [a.format(file=a_file, png=red_png) for a in argv]
    assert_user_error(argv, capsys, a_file)


def test_convert_output_dir_that_is_a_file(no_model, capsys, a_file, tmp_path):
    checkpoint = tmp_path / "small.bin"
    checkpoint.write_bytes(b"")
    assert_user_error(
        ["convert", str(checkpoint), a_file], capsys, "is an existing file"
    )


def test_read_only_output_dir(no_model, capsys, tmp_path, monkeypatch):
    # As root, os.access says every folder is writable; make it say no.
    locked = str(tmp_path / "locked")
    os.mkdir(locked)
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode: False if os.fspath(p) == locked else real_access(p, mode),
    )
    assert_user_error(
        ["demo", "--out", os.path.join(locked, "demo")],
        capsys,
        "cannot be written",
        "is not writable",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_output_dir_for_real(no_model, capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_user_error(
            ["demo", "--out", str(locked / "demo")], capsys, "not writable"
        )
    finally:
        locked.chmod(0o700)


def test_unreadable_image_file(no_model, capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    assert_user_error(
        ["predict", "--task", "vqa", "--image", str(notes), "--text", "q?"],
        capsys,
        "Cannot read image file",
        "notes.txt",
    )
    truncated = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), (9, 9, 9)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    assert_user_error(
        ["predict", "--task", "captioning", "--image", str(truncated)],
        capsys,
        "cut.png",
    )
    assert_user_error(
        ["predict", "--task", "captioning", "--image", str(tmp_path / "no.png")],
        capsys,
        "no.png",
        "does not exist",
    )


def test_unknown_task(no_model, capsys):
    assert_user_error(
        ["predict", "--task", "dance"], capsys, "Unknown task 'dance'", "vqa"
    )


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["predict", "--task", "vqa", "--image", "{png}"], ["needs question (--text)"]),
        (["predict", "--task", "captioning"], ["needs image (--image)"]),
        (
            ["predict", "--task", "captioning", "--image", "{png}", "--text", "x"],
            ["has no input for --text"],
        ),
        (
            ["predict", "--task", "summarization", "--text", "t", "--image", "{png}"],
            ["has no input for --image"],
        ),
        (
            [
                "predict",
                "--task",
                "region_captioning",
                "--image",
                "{png}",
                "--region",
                "1,1,4,4",
                "--region",
                "2,2,5,5",
            ],
            ["has no input for --region"],
        ),
        (["predict", "--task", "segmentation_to_image"], ["command line cannot give"]),
        (
            [
                "predict",
                "--task",
                "localization",
                "--image",
                "{png}",
                "--text",
                "q",
                "--options",
                "a,b",
            ],
            ["has no input for --options"],
        ),
    ],
)
def test_task_inputs_must_match_the_options(no_model, capsys, red_png, argv, fragments):
    argv = [a.format(png=red_png) for a in argv]
    assert_user_error(argv, capsys, *fragments)


def test_missing_checkpoint_and_vocabulary(no_model, capsys, tmp_path):
    out = str(tmp_path / "preset")
    assert_user_error(
        ["convert", str(tmp_path / "small_1000k.bin"), out],
        capsys,
        "Checkpoint file",
        "small_1000k.bin",
        "does not exist",
    )
    checkpoint = tmp_path / "small.bin"
    checkpoint.write_bytes(b"")
    assert_user_error(
        [
            "convert",
            str(checkpoint),
            out,
            "--vocabulary",
            str(tmp_path / "spiece.model"),
        ],
        capsys,
        "Vocabulary file",
        "spiece.model",
    )
    assert_user_error(
        ["convert", str(checkpoint), out, "--dtype", "float33"],
        capsys,
        "--dtype 'float33'",
    )


def test_convert_passes_overwrite(capsys, tmp_path, monkeypatch):
    from keras_uio.convert import convert_checkpoint as module

    calls = []

    class Counted:
        def count_params(self):
            return 7

    def fake_convert(checkpoint, output_dir, **kwargs):
        calls.append(kwargs)
        return Counted(), Counted()

    monkeypatch.setattr(module, "convert_checkpoint", fake_convert)
    checkpoint = tmp_path / "small.bin"
    checkpoint.write_bytes(b"")
    out = str(tmp_path / "preset")
    assert run(["convert", str(checkpoint), out], capsys)[0] == 0
    assert run(["convert", str(checkpoint), out, "--overwrite"], capsys)[0] == 0
    assert [c["overwrite"] for c in calls] == [False, True]


def test_predict_options_truncate_and_image(fake_model, capsys, red_png, tmp_path):
    fake_model.result = {
        "task": "image_classification",
        "text": "red",
        "option_index": 1,
        "option_losses": [3.5, 0.25, 9.0],
        "errors": [],
    }
    out = tmp_path / "out"
    code, stdout, err = run(
        [
            "predict",
            "--task",
            "image_classification",
            "--image",
            red_png,
            "--options",
            "blue, red ,green",
            "--truncate",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    ((examples, kwargs),) = fake_model.calls
    example = examples[0]
    assert example["answer_options"] == ["blue", "red", "green"]
    assert kwargs == {"seed": 3, "truncate": True}
    # The palette PNG reached the model as red, not as palette indices.
    np.testing.assert_array_equal(example["image"][5, 10], [1.0, 0.0, 0.0])
    assert "chosen option: 'red'" in stdout
    for line in ("3.5000  blue", "0.2500  red", "9.0000  green"):
        assert line in stdout
    saved = json.loads((out / "image_classification.json").read_text())
    assert saved["option_losses"] == [3.5, 0.25, 9.0]


def test_predict_without_truncate_passes_only_the_seed(
    fake_model, capsys, red_png, tmp_path
):
    code, _, err = run(
        [
            "predict",
            "--task",
            "captioning",
            "--image",
            red_png,
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 0, err
    ((examples, kwargs),) = fake_model.calls
    assert kwargs == {"seed": 0} and "answer_options" not in examples[0]


def test_bugs_keep_their_traceback(fake_model, red_png, tmp_path):
    def broken(examples, **kwargs):
        raise KeyError("a bug, not a user error")

    fake_model.predict_tasks = broken
    with pytest.raises(KeyError):
        cli.main(
            [
                "predict",
                "--task",
                "captioning",
                "--image",
                red_png,
                "--out",
                str(tmp_path / "o"),
            ]
        )


def test_check_output_dir(tmp_path, a_file):
    assert check_output_dir(tmp_path / "new" / "deeper") == str(
        tmp_path / "new" / "deeper"
    )
    with pytest.raises(UserInputError, match="is an existing file"):
        check_output_dir(a_file, "--out")
    assert issubclass(UserInputError, ValueError)


def test_run_demo_checks_its_arguments_before_loading(no_model, tmp_path, a_file):
    from keras_uio.demo import run_demo

    for kwargs, message in [
        ({"gallery_images": -1}, "`gallery_images` must be an int >= 0"),
        ({"num_images": 0}, r"`num_images` must be an int in \[1, 1000\]"),
        ({"num_images": 2.5}, "`num_images` must be an int"),
        ({"batch_size": 0}, "`batch_size`"),
    ]:
        with pytest.raises(ValueError, match=message):
            run_demo(str(tmp_path / "demo"), **kwargs)
    with pytest.raises(ValueError, match="is an existing file"):
        run_demo(a_file)


def test_predict_options_and_truncate_with_the_bundled_model(capsys, tmp_path):
    """End to end: the bundled model scores the options; --truncate cuts."""
    image = tmp_path / "circle.png"
    picture = Image.new("RGB", (64, 64), "white")
    picture.paste((255, 0, 0), (16, 16, 48, 48))
    picture.convert("P").save(image)
    long_text = "word " * 600
    err = assert_user_error(
        [
            "predict",
            "--task",
            "text_classification",
            "--text",
            long_text,
            "--options",
            "yes,no",
            "--out",
            str(tmp_path / "a"),
        ],
        capsys,
        "--truncate",
    )
    assert "longer than" in err
    code, out, err = run(
        [
            "predict",
            "--task",
            "image_classification",
            "--image",
            str(image),
            "--options",
            "circle,rectangle,triangle",
            "--truncate",
            "--out",
            str(tmp_path / "b"),
        ],
        capsys,
    )
    assert code == 0, err
    saved = json.loads((tmp_path / "b" / "image_classification.json").read_text())
    losses = saved["option_losses"]
    assert len(losses) == 3 and all(np.isfinite(losses))
    chosen = ["circle", "rectangle", "triangle"][int(np.argmin(losses))]
    assert saved["text"] == chosen
    assert f"chosen option: {chosen!r}" in out
    for option, loss in zip(["circle", "rectangle", "triangle"], losses):
        assert f"{loss:12.4f}  {option}" in out


def test_predict_image_options_with_the_bundled_model(capsys, tmp_path):
    """A task that answers with an image takes candidate image files."""
    files = []
    for name, colour, box in (
        ("square", (0, 0, 255), (8, 8, 56, 56)),
        ("circle", None, None),
    ):
        picture = Image.new("RGB", (64, 64), "white")
        if colour:
            picture.paste(colour, box)
        else:
            ImageDraw.Draw(picture).ellipse((12, 12, 52, 52), fill=(255, 0, 0))
        files.append(str(tmp_path / f"{name}.png"))
        picture.save(files[-1])
    argv = ["predict", "--task", "text_to_image", "--text", "a red circle"]
    code, out, err = run(
        argv + ["--options", ",".join(files), "--out", str(tmp_path / "out")], capsys
    )
    assert code == 0, err
    saved = json.loads((tmp_path / "out" / "text_to_image.json").read_text())
    losses = saved["option_losses"]
    assert len(losses) == 2 and saved["option_index"] == int(np.argmin(losses)) == 1
    assert f"chosen option: {files[1]!r}" in out
    written = np.asarray(Image.open(tmp_path / "out" / "text_to_image.png"))
    np.testing.assert_array_equal(written, np.asarray(Image.open(files[1])))
    missing = str(tmp_path / "missing.png")
    assert_user_error(argv + ["--options", f"{files[0]},{missing}"], capsys, missing)


def test_convert_overwrite_with_the_reference_checkpoint(capsys, tmp_path):
    checkpoint = os.path.join(
        os.path.dirname(__file__),
        "data",
        "reference",
        "uio_tiny",
        "checkpoint.bin",
    )
    out = str(tmp_path / "preset")
    assert run(["convert", checkpoint, out], capsys)[0] == 0
    assert_user_error(
        ["convert", checkpoint, out],
        capsys,
        "already holds a preset",
        "--overwrite",
    )
    code, stdout, err = run(["convert", checkpoint, out, "--overwrite"], capsys)
    assert code == 0, err
    assert "Converted" in stdout


def test_the_command_starts_without_framework_noise(tmp_path):
    """`keras-uio` (the console script) prints no TensorFlow/CUDA start-up
    lines: a user error is one line on stderr."""
    import shutil
    import subprocess

    script = shutil.which("keras-uio")
    if script is None:
        pytest.skip("the keras-uio console script is not installed")
    result = subprocess.run(
        [
            script,
            "predict",
            "--task",
            "captioning",
            "--image",
            str(tmp_path / "no.png"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"keras-uio: error: Image file '{tmp_path / 'no.png'}' does not exist."
    ]


def test_start_up_noise_filter_keeps_real_messages():
    from keras_uio.quiet_start import is_noise

    assert is_noise("I0000 00:00:1 123 cudart_stub.cc:31] Could not find cuda drivers")
    assert is_noise("WARNING: All log messages before absl::InitializeLog() is called")
    assert not is_noise("UserWarning: something real happened")


# ------------------------------------------------ predict text_to_image
@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--text", "a green circle", "--output", "{dir}"], ["is a folder"]),
        (
            ["--text", "a green circle", "--output", "{dir}/pic.txt"],
            ["image extension", "'.txt'"],
        ),
        (
            ["--text", "a green circle", "--output", "{dir}/pic"],
            ["image extension", "no extension"],
        ),
        (
            ["--text", "a green circle", "--output", "{file}/pic.png"],
            ["--output's folder", "is an existing file"],
        ),
        (["--text", "  "], ["--text must not be empty"]),
        ([], ["needs description (--text)"]),
        (
            ["--text", "a green circle", "--image", "{png}"],
            ["has no input for --image"],
        ),
    ],
)
def test_predict_text_to_image_bad_input(
    no_model, capsys, tmp_path, a_file, red_png, argv, fragments
):
    argv = [a.format(dir=tmp_path, file=a_file, png=red_png) for a in argv]
    assert_user_error(
        ["predict", "--task", "text_to_image", "--out", str(tmp_path / "out")] + argv,
        capsys,
        *fragments,
    )


def test_output_for_a_task_that_draws_nothing(no_model, capsys, tmp_path):
    assert_user_error(
        [
            "predict",
            "--task",
            "summarization",
            "--text",
            "a long text",
            "--output",
            str(tmp_path / "a.png"),
        ],
        capsys,
        "draws no picture",
    )


def test_predict_text_to_image_writes_the_generated_picture(
    fake_model, capsys, tmp_path
):
    generated = np.linspace(0, 1, 32 * 32 * 3, dtype="float32").reshape(32, 32, 3)
    fake_model.result = {
        "task": "text_to_image",
        "text": "",
        "errors": [],
        "image": generated,
    }
    out = tmp_path / "out"
    code, stdout, err = run(
        [
            "predict",
            "--task",
            "text_to_image",
            "--text",
            "a green circle",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    ((examples, _),) = fake_model.calls
    assert examples[0] == {"task": "text_to_image", "description": "a green circle"}
    # The default: OUT/text_to_image.png, the picture itself (no panel).
    saved = np.asarray(Image.open(out / "text_to_image.png"))
    np.testing.assert_array_equal(saved, np.round(generated * 255))
    assert f"wrote {out / 'text_to_image.png'} (32x32)" in stdout
    picture = tmp_path / "new" / "folder" / "circle.jpg"
    code, stdout, err = run(
        [
            "predict",
            "--task",
            "text_to_image",
            "--text",
            "a green circle",
            "--out",
            str(out),
            "--output",
            str(picture),
        ],
        capsys,
    )
    assert code == 0, err
    assert Image.open(picture).size == (32, 32)
    assert f"wrote {picture} (32x32)" in stdout


def test_text_to_image_with_the_bundled_model(capsys, tmp_path):
    """The issue's command: `keras-uio predict --preset uio_tiny_easyvqa
    --task text_to_image --text "a green circle"` writes the picture."""
    picture = tmp_path / "green_circle.png"
    code, stdout, err = run(
        [
            "predict",
            "--preset",
            "uio_tiny_easyvqa",
            "--task",
            "text_to_image",
            "--text",
            "a green circle",
            "--out",
            str(tmp_path / "out"),
            "--output",
            str(picture),
        ],
        capsys,
    )
    assert code == 0, err
    saved = json.loads((tmp_path / "out" / "text_to_image.json").read_text())
    generated = np.asarray(saved["image"], np.float32)
    assert generated.shape == (32, 32, 3)  # the bundled model draws 32x32
    pixels = np.asarray(Image.open(picture))
    np.testing.assert_array_equal(
        pixels, np.round(np.clip(generated, 0, 1) * 255).astype(np.uint8)
    )
    assert f"wrote {picture} (32x32)" in stdout
