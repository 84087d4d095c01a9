"""Reading every format, bit depth and mode; atomic writing."""

import numpy as np
import pytest
from PIL import Image

import ivif.io as io
from ivif.errors import InputError
from ivif.io import from_tensor, is_gray, read_image, to_tensor, to_uint8, write_image

RNG = np.random.default_rng(0)
GRAY = RNG.integers(0, 256, size=(13, 17), dtype=np.uint8)
RGB = RNG.integers(0, 256, size=(13, 17, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
@pytest.mark.parametrize("image", [GRAY, RGB], ids=["gray", "rgb"])
def test_lossless_formats_round_trip(tmp_path, suffix, image):
    path = tmp_path / f"x{suffix}"
    Image.fromarray(image).save(path)
    np.testing.assert_array_equal(read_image(path), image)


@pytest.mark.parametrize("image", [GRAY, RGB], ids=["gray", "rgb"])
def test_jpeg_reads_with_pillow_decoder(tmp_path, image):
    path = tmp_path / "x.jpg"
    Image.fromarray(image).save(path, quality=90)
    np.testing.assert_array_equal(read_image(path), np.asarray(Image.open(path)))
    assert read_image(path).shape == image.shape


def test_rgba_drops_alpha_and_la_keeps_gray(tmp_path):
    rgba = np.dstack([RGB, np.full(GRAY.shape, 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), RGB)
    Image.fromarray(np.dstack([GRAY, GRAY]), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), GRAY)


def test_palette_expands_through_palette(tmp_path):
    palette_image = Image.fromarray(RGB).quantize(colors=16)
    palette_image.save(tmp_path / "p.png")
    expected = np.asarray(palette_image.convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)


def test_bilevel_becomes_0_255(tmp_path):
    Image.fromarray(GRAY > 127).convert("1").save(tmp_path / "b.png")
    assert set(np.unique(read_image(tmp_path / "b.png"))) <= {0, 255}


THERMAL = (RNG.normal(30000, 2000, size=(20, 24)).clip(0, 65535)).astype(np.uint16)
THERMAL[0, 0], THERMAL[0, 1] = 0, 65535  # hot and cold outliers


def _expected_8bit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(
        np.floor((values.astype(float) - low) * 255 / (high - low) + 0.5), 0, 255
    ).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_depth_rules(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    Image.fromarray(THERMAL).save(path)
    low, high = np.percentile(THERMAL, [0.5, 99.5])
    np.testing.assert_array_equal(read_image(path), _expected_8bit(THERMAL, low, high))
    np.testing.assert_array_equal(read_image(path, "minmax"), _expected_8bit(THERMAL, 0, 65535))
    np.testing.assert_array_equal(
        read_image(path, "linear"), np.floor(THERMAL / 257 + 0.5).astype(np.uint8)
    )
    with pytest.raises(ValueError, match="depth rule"):
        read_image(path, "gamma")


def test_percentile_stretch_resists_outliers(tmp_path):
    Image.fromarray(THERMAL).save(tmp_path / "t.png")
    stretched, minmax = read_image(tmp_path / "t.png"), read_image(tmp_path / "t.png", "minmax")
    assert stretched.std() > 3 * minmax.std()


def test_constant_16bit_frame(tmp_path):
    Image.fromarray(np.full((5, 5), 1234, np.uint16)).save(tmp_path / "c.png")
    assert read_image(tmp_path / "c.png").max() == 0


def test_float_tiff(tmp_path):
    values = RNG.random((6, 7)).astype(np.float32) * 10
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(
        read_image(tmp_path / "f.tif", "minmax"), _expected_8bit(values, values.min(), values.max())
    )


def test_missing_corrupt_and_folder_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"this is not an image")
    with pytest.raises(InputError, match=r"bad\.png: not a readable image"):
        read_image(tmp_path / "bad.png")
    Image.fromarray(RGB).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_write_then_read(tmp_path, suffix):
    out = write_image(tmp_path / "sub" / f"o{suffix}", RGB, quality=100)
    back = read_image(out)
    assert back.shape == RGB.shape
    if suffix != ".jpg":
        np.testing.assert_array_equal(back, RGB)
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.png"

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(io.Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, RGB)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    target = write_image(tmp_path / "out.png", GRAY)
    monkeypatch.setattr(
        io.Image.Image, "save", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        write_image(target, RGB)
    np.testing.assert_array_equal(read_image(target), GRAY)
    assert len(list(tmp_path.iterdir())) == 1


def test_write_rejects_bad_arrays_and_formats(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_image(tmp_path / "x.png", RGB.astype(np.float32))
    with pytest.raises(InputError, match="unsupported"):
        write_image(tmp_path / "x.gif", RGB)


def test_tensor_conversions_and_rounding():
    t = to_tensor(RGB)
    assert t.shape == (1, 3, 13, 17) and float(t.max()) <= 1.0
    np.testing.assert_array_equal(from_tensor(t), RGB)
    np.testing.assert_array_equal(from_tensor(to_tensor(GRAY)), GRAY)
    half = to_tensor(np.array([[0.5 / 255, 1.5 / 255, 254.7 / 255]], dtype=np.float64))
    assert to_uint8(half).flatten().tolist() == [1, 2, 255]
    assert to_uint8(half, "truncate").flatten().tolist() == [0, 1, 254]
    assert is_gray(GRAY) and is_gray(np.dstack([GRAY] * 3)) and not is_gray(RGB)
