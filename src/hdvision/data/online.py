"""Online canvases: HD digits' training split composed afresh for every item of every epoch
(``data.source.online=true``), from the training split's source digits only.

The fixed protocol (Megapixel MNIST: 4,500 canvases, each seen once per epoch) is what results
are reported on; online canvases are their own, labelled row (issue 31): the model never sees
the same canvas twice, but every canvas is drawn exactly as the generator draws the files, and
decoded as the files are, so only the count of distinct canvases changes.

Each item's canvas comes from (spec seed, the sampler's per-item seed, index): the
:class:`~hdvision.data.dataset.SeededSampler` draws a new seed per item and epoch in the main
process, so a canvas is the same for any number of workers and new in every epoch.
"""

from __future__ import annotations

import io

import albumentations as A
import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from hdvision.data.dataset import augment_to_tensor
from hdvision.data.decode import DecodeSettings, fit_size
from hdvision.data.hd_digits import (
    HDDigitsSpec,
    load_mnist_digits,
    render_canvas,
    split_source_digits,
)

# Keeps the online random streams apart from the generator's (seed, split index, canvas index).
_ONLINE_STREAM = 1_000


class OnlineCanvases(Dataset):
    """``length`` training canvases of ``spec`` per epoch, rendered when asked for, decoded as
    ``decode`` decodes the files and passed through ``transform``. Items as
    :class:`~hdvision.data.dataset.ImageDataset`'s: ``image``, ``label``, ``skipped``."""

    def __init__(
        self,
        spec: HDDigitsSpec,
        length: int,
        decode: DecodeSettings,
        transform: A.Compose | None = None,
    ) -> None:
        if length < 1:
            raise ValueError(f"online canvases: length must be positive, got {length}")
        self.spec, self.length = spec, length
        self.decode, self.transform = decode, transform
        self._pool: np.ndarray | None = None  # the training split's source digits, once

    def __len__(self) -> int:
        return self.length

    def compose(self, index: int, seed: int) -> tuple[np.ndarray, int, list[int]]:
        """The canvas (full size, as the generator renders it), its label and the indices of the
        source digits drawn on it (all from the training split)."""
        digits, labels = load_mnist_digits()
        if self._pool is None:
            splits = split_source_digits(labels, self.spec.split_fractions, self.spec.seed)
            self._pool = splits["train"]
        rng = np.random.default_rng([self.spec.seed, _ONLINE_STREAM, seed, index])
        drawn: list[int] = []
        canvas, target = render_canvas(self.spec, digits, labels, self._pool, rng, drawn)
        return canvas, target, drawn

    def decoded(self, canvas: np.ndarray) -> np.ndarray:
        """What decoding the canvas's file would give: a JPEG round trip at the spec's quality
        for jpg data sets (the reduced DCT decode included), the exact pixels for png."""
        image = Image.fromarray(canvas).convert(self.spec.mode)
        if self.spec.image_format == "jpg":
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=self.spec.jpeg_quality)
            return self.decode.decode_bytes(buffer.getvalue(), "an online canvas")
        image = image.convert("RGB")
        if self.decode.size is not None:
            target = fit_size((image.height, image.width), self.decode.size, self.decode.fit)
            if target != (image.height, image.width):
                image = image.resize((target[1], target[0]), Image.Resampling.BOX)
        return np.asarray(image)

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        index, seed = item if isinstance(item, tuple) else (item, 0)
        canvas, target, _ = self.compose(index, seed)
        image = augment_to_tensor(self.decoded(canvas), self.transform, seed)
        return {"image": image, "label": target, "skipped": []}
