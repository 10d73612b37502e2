"""Every PIL mode and array dtype is read as the right RGB, or rejected.

A red square on black is saved in each mode; each must read back as the
same array (within 8-bit rounding) as its 8-bit RGB version, or as its
grey version for modes that have no colour.
"""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from keras_uio.preprocessing import images as ops


def _red_square():
    image = np.zeros((12, 20, 3), np.uint8)
    image[3:9, 5:15] = (255, 0, 0)
    return image


RED = _red_square()
GREY = np.asarray(Image.fromarray(RED).convert("L"))


def _png16(array, color_type):
    """A 16-bit PNG written by hand (PIL cannot write 16-bit RGB)."""
    height, width = array.shape[:2]
    rows = array.reshape(height, -1).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _save(tmp_path, image, name):
    path = tmp_path / name
    image.save(path)
    return path


@pytest.mark.parametrize(
    "mode", ["RGB", "P", "PA", "CMYK", "RGBA", "RGBX", "HSV", "RGBa"]
)
def test_colour_modes_read_as_rgb(mode):
    image = Image.fromarray(RED).convert(mode)
    np.testing.assert_array_equal(ops.prepare_image(image), ops.prepare_image(RED))


@pytest.mark.parametrize("mode", ["L", "LA", "La"])
def test_grey_modes_read_as_grey(mode):
    image = Image.fromarray(RED).convert("LA" if mode == "La" else mode)
    image = image.convert(mode)
    np.testing.assert_array_equal(ops.prepare_image(image), ops.prepare_image(GREY))


def test_red_is_not_answered_black_or_grey_for_a_palette_image():
    out = ops.prepare_image(Image.fromarray(RED).convert("P"))
    np.testing.assert_array_equal(out[5, 10], [1.0, 0.0, 0.0])


def test_16_bit_modes_are_scaled_by_65535_not_saturated():
    grey16 = GREY.astype(np.uint16) * 257  # 8-bit v -> 16-bit v * 257
    for image in (Image.fromarray(grey16), Image.fromarray(grey16).convert("I")):
        assert image.mode in ("I;16", "I")
        np.testing.assert_allclose(
            ops.prepare_image(image), ops.prepare_image(GREY), atol=1e-12
        )
    half = Image.fromarray(np.full((2, 2), 32768, np.uint16))
    np.testing.assert_allclose(ops.prepare_image(half), 32768 / 65535)


def test_mode_i_outside_16_bits_raises():
    image = Image.fromarray(np.full((2, 2), 70000, np.int32))
    with pytest.raises(ValueError, match="mode 'I'.*70000"):
        ops.prepare_image(image)


def test_mode_f_is_float_in_unit_range():
    unit = Image.fromarray(GREY.astype(np.float32) / 255.0)
    np.testing.assert_allclose(
        ops.prepare_image(unit), ops.prepare_image(GREY), atol=1e-6
    )
    with pytest.raises(ValueError, match=r"`photo` must have values in \[0, 1\]"):
        ops.prepare_image(Image.fromarray(GREY).convert("F"), name="photo")


def test_mode_1_is_black_and_white():
    image = Image.fromarray(GREY > 0)
    assert image.mode == "1"
    np.testing.assert_array_equal(
        ops.prepare_image(image), ops.prepare_image((GREY > 0) * np.uint8(255))
    )


@pytest.mark.parametrize(
    "name, make, expected",
    [
        ("p.png", lambda: Image.fromarray(RED).convert("P"), RED),
        ("cmyk.tif", lambda: Image.fromarray(RED).convert("CMYK"), RED),
        ("la.png", lambda: Image.fromarray(RED).convert("LA"), GREY),
        ("rgba.png", lambda: Image.fromarray(RED).convert("RGBA"), RED),
        ("grey16.png", lambda: Image.fromarray(GREY.astype(np.uint16) * 257), GREY),
    ],
)
def test_saved_files_read_as_their_8_bit_version(tmp_path, name, make, expected):
    path = _save(tmp_path, make(), name)
    out = ops.read_image(path)
    assert out.dtype == np.float32 and out.shape == RED.shape
    np.testing.assert_allclose(out, ops.prepare_image(expected), atol=1e-6)


@pytest.mark.parametrize("color_type, channels", [(2, 3), (6, 4), (0, 1)])
def test_16_bit_png_files_read_as_8_bit_version(tmp_path, color_type, channels):
    rgba = np.concatenate([RED, np.full(RED.shape[:2] + (1,), 255, np.uint8)], -1)
    source = GREY[..., None] if channels == 1 else rgba[..., :channels]
    path = tmp_path / "sixteen.png"
    path.write_bytes(_png16(source.astype(np.uint16) * 257, color_type))
    expected = GREY if channels == 1 else RED
    np.testing.assert_allclose(
        ops.read_image(path), ops.prepare_image(expected), atol=1e-6
    )


def test_uint16_arrays_are_accepted():
    np.testing.assert_allclose(
        ops.prepare_image(RED.astype(np.uint16) * 257), ops.prepare_image(RED)
    )
    big_endian = (RED.astype(np.uint16) * 257).astype(">u2")
    np.testing.assert_allclose(ops.prepare_image(big_endian), ops.prepare_image(RED))


@pytest.mark.parametrize(
    "image, message",
    [
        (np.full((4, 4, 3), np.nan), "`photo` contains NaN or inf"),
        (np.full((4, 4), np.inf, np.float32), "`photo` contains NaN or inf"),
        (np.full((4, 4, 3), 1.01), r"`photo` must have values in \[0, 1\]"),
        (np.full((4, 4, 3), -0.5), r"`photo` must have values in \[0, 1\]"),
        (np.zeros((4, 4, 3), np.int32), "`photo` must be uint8.*int32"),
        (np.zeros((4, 4, 3), bool), "`photo` must be uint8.*bool"),
        (np.zeros((4, 4, 2), np.uint8), r"`photo` must be an image of shape"),
        (np.zeros((0, 4, 3), np.uint8), "`photo` must have a positive"),
        ([[0, 1], [2]], "`photo` must be an image"),
        ("cat.jpg", "`photo` must be an image .*not a file name.*read_image"),
    ],
)
def test_bad_arrays_raise_naming_the_field(image, message):
    with pytest.raises(ValueError, match=message):
        ops.prepare_image(image, name="photo")


def test_tiny_float_overshoot_is_clipped():
    out = ops.prepare_image(np.full((2, 2, 3), 1.0 + 1e-4))
    assert out.max() == 1.0


def test_elongated_image_raises_naming_its_size():
    for image in (np.zeros((1, 4000, 3), np.uint8), np.zeros((4000, 1))):
        with pytest.raises(ValueError, match=r"size (1x4000|4000x1) \(height x"):
            ops.preprocess_image(image)
    with pytest.raises(ValueError, match="size 1x4000"):
        ops.preprocess_target_image(np.zeros((1, 4000, 3), np.uint8))
    # Exactly one pixel after scaling is fine.
    _, mask = ops.preprocess_image(np.zeros((1, 384, 3), np.uint8))
    assert mask.sum() == 24


def test_undo_to_an_elongated_size_raises():
    with pytest.raises(ValueError, match="`original_size` 1x4000"):
        ops.undo_image_preprocessing(np.zeros((256, 256, 3)), (1, 4000))


def test_read_image_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.png"
    with pytest.raises(FileNotFoundError, match="missing.png"):
        ops.read_image(missing)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="Cannot read image file.*notes.txt"):
        ops.read_image(text)
    with pytest.raises(ValueError, match="is not a file"):
        ops.read_image(tmp_path)
    truncated = tmp_path / "cut.png"
    full = _save(tmp_path, Image.fromarray(RED), "full.png").read_bytes()
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(ValueError, match="cut.png"):
        ops.read_image(truncated)


def test_pil_images_reach_the_model_converted():
    """`predict_tasks` hands the preprocessor's converter a list of images."""
    from keras_uio.models.unified_io.unified_io_image_converter import (
        UnifiedIOImageConverter,
    )

    converter = UnifiedIOImageConverter()
    palette = Image.fromarray(RED).convert("P")
    np.testing.assert_array_equal(
        converter.convert([palette])["images"][0],
        converter.convert(RED)["images"],
    )
    np.testing.assert_array_equal(
        ops.preprocess_image(palette)[0], ops.preprocess_image(RED)[0]
    )
