"""Decode image files to 3-channel uint8 arrays, at reduced scale when the caller needs less.

JPEG files are decoded with DCT scaling (Pillow's ``draft``: ½, ¼ or ⅛ of the stored size, ~2×
cheaper than a full decode at 1080p) and then resized exactly with an area filter, so the result
matches a full decode + area resize closely.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps

from hdvision.errors import UserError

DEFAULT_MAX_PIXELS = 100_000_000
FIT_MODES = ("letterbox", "crop")


class BadImageError(UserError):
    """A file that cannot be used as an image; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def fit_size(
    src: tuple[int, int], dst: tuple[int, int], mode: str = "letterbox"
) -> tuple[int, int]:
    """Size (h, w) to resize ``src`` to before padding (letterbox) or cropping (crop) to ``dst``."""
    scale_h, scale_w = dst[0] / src[0], dst[1] / src[1]
    scale = min(scale_h, scale_w) if mode == "letterbox" else max(scale_h, scale_w)
    return max(1, round(src[0] * scale)), max(1, round(src[1] * scale))


def _to_rgb(image: Image.Image, path: str | Path) -> Image.Image:
    """Grayscale, RGBA, palette, CMYK and 16-bit images become 3-channel 8-bit RGB."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        # 16/32-bit integer images: scale the full range to 8 bits instead of clipping.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        array = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(array, "L").convert("RGB")
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        lo, hi = float(array.min()), float(array.max())
        array = ((array - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5).astype(np.uint8)
        return Image.fromarray(array, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite transparency on black, the same for every file.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("L", "P", "CMYK", "YCbCr", "1", "LAB", "HSV", "RGBX"):
        return image.convert("RGB")
    raise BadImageError(path, f"unsupported image mode {image.mode!r}")


def decode_image(
    path: str | Path,
    size: tuple[int, int] | None = None,
    fit: str = "letterbox",
    reduced: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    data: bytes | None = None,
) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) uint8 array with EXIF orientation applied.

    ``size`` (h, w) is the resize target that keeps the aspect ratio (``fit`` = letterbox: fits
    inside, crop: covers); padding or cropping to exactly ``size`` is left to the caller so that it
    can be random at train time. ``reduced`` lets JPEGs decode at ½/¼/⅛ scale first.
    ``data``: the file's encoded bytes (a shard member); ``path`` then only names it in errors.
    Raises :class:`BadImageError` naming the file for anything unusable.
    """
    # Pillow's own bomb guard (~89.5 Mpx by default) would refuse files that data.max_pixels
    # allows; its limit is ours while this file decodes (a process-wide setting: restored after,
    # so that other code opening images is not held to this caller's limit).
    previous_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(path if data is None else io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise BadImageError(
                path,
                f"too large: {width}x{height} exceeds max_pixels={max_pixels:,}; "
                "raise data.max_pixels if the file is trusted",
            )
        orientation = image.getexif().get(0x0112, 1)
        swapped = orientation in (5, 6, 7, 8)
        stored = (width, height) if swapped else (height, width)
        target = fit_size(stored, size, fit) if size is not None else None
        if target is not None and reduced and image.format == "JPEG":
            assert isinstance(image, ImageFile.ImageFile)  # what Image.open returns
            # draft() works in stored orientation and never goes below the requested size.
            want = (target[0], target[1]) if swapped else (target[1], target[0])
            image.draft(image.mode if image.mode in ("RGB", "L") else None, want)
        image.load()
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image, path)
        if target is not None and (image.height, image.width) != target:
            image = image.resize((target[1], target[0]), Image.Resampling.BOX)
        return np.asarray(image)
    except BadImageError:
        raise
    except FileNotFoundError as err:
        raise BadImageError(path, "file not found") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadImageError(
            path, f"too large: {err}; raise data.max_pixels if the file is trusted"
        ) from err
    except Image.UnidentifiedImageError as err:
        raise BadImageError(path, "not an image (Pillow cannot identify the format)") from err
    except OSError as err:
        raise BadImageError(path, f"truncated or corrupt image data: {err}") from err
    except (ValueError, SyntaxError) as err:
        raise BadImageError(path, f"corrupt image: {err}") from err
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


@dataclass(frozen=True)
class DecodeSettings:
    """How a file becomes an (H, W, 3) uint8 array, as one value: training, evaluation, predict
    and check-data decode with the same settings, and checkpoints record them (``preprocessing``).

    ``size`` (h, w) and ``fit`` as in :func:`decode_image`; ``reduced``: JPEG DCT scaling;
    ``max_pixels``: the decompression-bomb limit.
    """

    size: tuple[int, int] | None = None
    fit: str = "letterbox"
    reduced: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.fit not in FIT_MODES:
            raise ValueError(f"data.fit must be one of {FIT_MODES}, got {self.fit!r}")
        if self.size is not None:
            size = (int(self.size[0]), int(self.size[1]))
            if min(size) < 1:
                raise ValueError(f"decode size must be positive (h, w), got {list(self.size)}")
            object.__setattr__(self, "size", size)
        if int(self.max_pixels) < 1:
            raise ValueError(f"data.max_pixels must be a positive integer, got {self.max_pixels}")

    def __call__(self, path: str | Path) -> np.ndarray:
        return decode_image(path, self.size, self.fit, self.reduced, self.max_pixels)

    def decode_bytes(self, data: bytes, name: str) -> np.ndarray:
        """Decode a file's encoded bytes (a shard member) exactly as the file; ``name`` names it
        in errors."""
        return decode_image(name, self.size, self.fit, self.reduced, self.max_pixels, data)

    def at(self, size: Sequence[int] | None) -> DecodeSettings:
        """The same settings for another target size."""
        return replace(self, size=None if size is None else (int(size[0]), int(size[1])))

    def to_preprocessing(self) -> dict[str, Any]:
        """The checkpoint's ``preprocessing`` fields these settings fill (plain data)."""
        return {
            "sample_size": None if self.size is None else list(self.size),
            "fit": self.fit,
            "reduced_decode": self.reduced,
            "max_pixels": self.max_pixels,
        }

    @classmethod
    def from_preprocessing(cls, preprocessing: Mapping[str, Any]) -> DecodeSettings:
        """The settings a checkpoint's (or ONNX file's) ``preprocessing`` recorded."""
        height, width = preprocessing["sample_size"]
        return cls(
            (int(height), int(width)),
            str(preprocessing["fit"]),
            bool(preprocessing["reduced_decode"]),
            int(preprocessing["max_pixels"]),
        )
