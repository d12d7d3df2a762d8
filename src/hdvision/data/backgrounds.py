"""Real photos as HD-digits canvases (``data.source.backgrounds=DIR``): each canvas is a random
crop of a random photo, scaled to cover the canvas and randomly flipped, so that texture, edges
and JPEG noise compete with the digits for a detail prior's attention.

Any folder of JPEG/PNG photos works; Debian's ``lomiri-wallpapers-16.04`` package holds 1080p+
ones (``/usr/share/backgrounds``). Photos are never committed; tests generate textures.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from hdvision.data.listing import DataSourceError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


@functools.cache
def list_backgrounds(folder: str) -> tuple[Path, ...]:
    """The photos of ``folder`` (recursive, sorted); a clear error when there are none."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataSourceError(
            f"data.source.backgrounds={folder}: no such folder (a folder of JPEG/PNG photos)"
        )
    photos = tuple(sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES))
    if not photos:
        raise DataSourceError(f"data.source.backgrounds={folder}: no .jpg/.jpeg/.png files")
    return photos


def fingerprint(folder: str) -> str:
    """Names and sizes of the photos: another set of photos makes another data set."""
    text = "\n".join(f"{p.name}:{p.stat().st_size}" for p in list_backgrounds(folder))
    return hashlib.sha1(text.encode()).hexdigest()[:10]


@functools.lru_cache(maxsize=32)
def _photo(path: Path, at_least: tuple[int, int]) -> Image.Image:
    """An RGB photo, decoded (at reduced scale where JPEG allows) to cover ``at_least`` (h, w)."""
    image = Image.open(path)
    scale = max(at_least[0] / image.height, at_least[1] / image.width)
    image.draft("RGB", (int(image.width * scale) + 1, int(image.height * scale) + 1))
    return ImageOps.exif_transpose(image).convert("RGB")


def background_canvas(
    folder: str, canvas: tuple[int, int], rng: np.random.Generator
) -> Image.Image:
    """A (h, w) RGB crop of a random photo: scaled to cover the canvas times 1-1.5, a random
    window, flipped left-right half of the time."""
    photos = list_backgrounds(folder)
    height, width = canvas
    photo = _photo(photos[int(rng.integers(0, len(photos)))], canvas)
    scale = max(height / photo.height, width / photo.width) * float(rng.uniform(1.0, 1.5))
    size = (max(width, round(photo.width * scale)), max(height, round(photo.height * scale)))
    scaled = photo.resize(size, Image.Resampling.BILINEAR)
    left = int(rng.integers(0, size[0] - width + 1))
    top = int(rng.integers(0, size[1] - height + 1))
    crop = scaled.crop((left, top, left + width, top + height))
    return ImageOps.mirror(crop) if rng.random() < 0.5 else crop


def digit_colour(rng: np.random.Generator, jitter: float) -> tuple[int, int, int]:
    """White, or with ``jitter`` > 0 each channel lowered by up to ``jitter`` of its range."""
    if jitter <= 0:
        return (255, 255, 255)
    r, g, b = (255 * (1 - jitter * rng.random(3))).round().astype(int).tolist()
    return (r, g, b)
