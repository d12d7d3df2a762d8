import numpy as np
import pytest
from PIL import Image

from hdvision.data.decode import BadImageError, DecodeSettings, decode_image, fit_size
from tests.conftest import write_image


def test_reduced_jpeg_decode_matches_full_decode_plus_area_resize(tmp_path):
    path = write_image(tmp_path / "big.jpg", size=(720, 1280))
    reduced = decode_image(path, (180, 320), reduced=True).astype(float)
    full = decode_image(path, (180, 320), reduced=False).astype(float)
    assert reduced.shape == full.shape == (180, 320, 3)
    assert np.abs(reduced - full).mean() < 3.0  # of 255


def test_draft_really_decodes_less(tmp_path, monkeypatch):
    path = write_image(tmp_path / "big.jpg", size=(400, 800))
    sizes = []
    original = Image.Image.resize

    def spy(self, size, *args, **kwargs):
        sizes.append(self.size)
        return original(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    decode_image(path, (100, 200), reduced=True)
    assert sizes == []  # DCT scaling hit the size exactly: nothing left to resize
    decode_image(path, (100, 200), reduced=False)
    assert sizes == [(800, 400)]


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA", "1"])
def test_every_colour_mode_becomes_rgb_uint8(tmp_path, mode):
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    path = tmp_path / f"img.{fmt.lower()}"
    if mode == "I;16":
        Image.fromarray(np.full((20, 30), 65535, np.uint16)).save(path)
    else:
        write_image(path, size=(20, 30), mode=mode, fmt=fmt)
    out = decode_image(path)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    if mode == "I;16":
        assert out.min() == 255  # full 16-bit range maps to 8-bit, not clipped garbage


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = 255  # left half white
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    path = tmp_path / "rot.jpg"
    image.save(path, exif=exif, quality=95)
    out = decode_image(path)
    assert out.shape == (40, 20, 3)
    assert out[:20].mean() > 200 and out[20:].mean() < 50  # white half now on top
    small = decode_image(path, (20, 10))
    assert small.shape == (20, 10, 3)


def test_fit_size_keeps_aspect_ratio():
    assert fit_size((1080, 1920), (540, 540), "letterbox") == (304, 540)
    assert fit_size((1080, 1920), (540, 540), "crop") == (540, 960)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b"definitely not an image"), "not an image"),
        (lambda p: p.write_bytes(write_image(p, (64, 64)).read_bytes()[:300]), "truncated"),
        (lambda p: None, "file not found"),
    ],
)
def test_bad_files_raise_errors_naming_file_and_reason(tmp_path, make, reason):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(BadImageError, match=reason) as info:
        decode_image(path)
    assert str(path) in str(info.value)


def test_decompression_bomb_guard(tmp_path):
    path = write_image(tmp_path / "large.png", (100, 100))
    with pytest.raises(BadImageError, match="too large.*max_pixels"):
        decode_image(path, max_pixels=5000)


def test_max_pixels_overrides_pillows_own_limit(tmp_path, monkeypatch):
    path = write_image(tmp_path / "large.png", (100, 100))
    # Pillow's default guard is ~89.5 Mpx; a small one stands in for it on a small file.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert decode_image(path, max_pixels=20_000).shape == (100, 100, 3)
    with pytest.raises(BadImageError, match="too large.*raise data.max_pixels"):
        decode_image(path, max_pixels=4000)  # > 2x: Pillow refuses it while opening


def test_decode_settings_are_one_value_that_round_trips_through_preprocessing(tmp_path):
    path = write_image(tmp_path / "big.jpg", size=(200, 400))
    settings = DecodeSettings((50, 100), "crop", reduced=False, max_pixels=10**6)
    assert np.array_equal(settings(path), decode_image(path, (50, 100), "crop", False, 10**6))
    pre = settings.to_preprocessing()
    assert pre == {
        "sample_size": [50, 100],
        "fit": "crop",
        "reduced_decode": False,
        "max_pixels": 10**6,
    }
    assert DecodeSettings.from_preprocessing(pre) == settings
    small = settings.at((10, 20))
    assert (small.size, small.fit, small.max_pixels) == ((10, 20), "crop", 10**6)
    limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(BadImageError, match="big.jpg: too large.*data.max_pixels"):
        DecodeSettings((50, 100), max_pixels=100)(path)
    assert limit == Image.MAX_IMAGE_PIXELS  # the caller's limit does not leak to other code


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fit": "stretch"}, "data.fit must be one of .*'stretch'"),
        ({"size": (0, 10)}, "decode size must be positive"),
        ({"max_pixels": 0}, "data.max_pixels must be a positive integer"),
    ],
)
def test_decode_settings_refuse_bad_values_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecodeSettings(**kwargs)
