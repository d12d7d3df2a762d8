import numpy as np
import pytest
from PIL import Image

from hdvision.data.backgrounds import background_canvas, list_backgrounds
from hdvision.data.hd_digits import (
    HDDigitsSpec,
    generate_hd_digits,
    load_mnist_digits,
    render_canvas,
    split_source_digits,
)
from hdvision.data.listing import DataSourceError
from tests.conftest import write_image


def _spec(folder, **kw):
    return HDDigitsSpec(
        canvas=(96, 160),
        digit_size=24,
        num_distractors=1,
        num_train=4,
        num_val=2,
        num_test=2,
        backgrounds=str(folder),
        mode="RGB",
        **kw,
    )


def _render(spec, seed=0):
    digits, labels = load_mnist_digits()
    pool = split_source_digits(labels, spec.split_fractions, spec.seed)["train"]
    return render_canvas(spec, digits, labels, pool, np.random.default_rng(seed))[0]


def test_digits_are_pasted_with_their_mask_over_a_photo_crop(tmp_path):
    Image.new("RGB", (400, 300), (100, 100, 100)).save(tmp_path / "grey.png")
    canvas = _render(_spec(tmp_path))
    assert canvas.shape == (96, 160, 3)
    values = {tuple(v) for v in canvas.reshape(-1, 3).tolist()}
    assert (100, 100, 100) in values and canvas.max() >= 240  # photo and white digit strokes
    assert all(v[0] == v[1] == v[2] and 100 <= v[0] <= 255 for v in values)  # blends only
    tinted = _render(_spec(tmp_path, digit_color_jitter=0.5), seed=1)
    assert any(len(set(v)) > 1 for v in tinted.reshape(-1, 3).tolist())  # coloured strokes


def test_crops_and_flips_differ_between_canvases(tmp_path):
    write_image(tmp_path / "photos" / "a.jpg", size=(240, 400), seed=1)
    folder = str(tmp_path / "photos")
    crops = [
        np.asarray(background_canvas(folder, (96, 160), np.random.default_rng(i))) for i in range(4)
    ]
    assert all(c.shape == (96, 160, 3) and c.std() > 10 for c in crops)
    assert len({c.tobytes() for c in crops}) == 4


def test_data_set_on_photos_and_its_folder_follow_the_photos(tmp_path):
    photos = tmp_path / "photos"
    write_image(photos / "a.jpg", size=(240, 400), seed=1)
    root = generate_hd_digits(_spec(photos), tmp_path / "data", workers=1)
    image = Image.open(next((root / "train").glob("*.jpg")))
    assert image.mode == "RGB" and np.asarray(image).std() > 10
    digest = _spec(photos).digest()
    list_backgrounds.cache_clear()
    write_image(photos / "b.jpg", size=(240, 400), seed=2)
    assert _spec(photos).digest() != digest  # other photos: another data set


def test_missing_or_empty_background_folders_are_named(tmp_path):
    list_backgrounds.cache_clear()
    with pytest.raises(DataSourceError, match="backgrounds=.*nowhere: no such folder"):
        _spec(tmp_path / "nowhere").digest()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSourceError, match="empty: no .jpg/.jpeg/.png files"):
        _spec(tmp_path / "empty").digest()
