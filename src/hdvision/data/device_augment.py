"""Augmentations that run on the training device, after the host→device transfer.

Per-pixel noise is the dearest host transform at the augmentation resolution (Albumentations'
GaussNoise was half of the workers' augmentation time here, docs/results/tools.md); on an
accelerator it should be nearly free (not measured: no GPU here; on a CPU it costs what it cost
the workers).
Each transform keeps the semantics of its Albumentations namesake, so moving it is a config change:
``~data.augmentations.GaussNoise '+model.device_augmentations.GaussNoise={p: 1.0}'``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch

DeviceTransform = Callable[[torch.Tensor], torch.Tensor]


def gaussian_noise(
    images: torch.Tensor,
    std_range: Sequence[float] = (0.2, 0.44),
    mean_range: Sequence[float] = (0.0, 0.0),
    per_channel: bool = True,
    p: float = 0.5,
) -> torch.Tensor:
    """``A.GaussNoise`` on a float batch (B, C, H, W) in 0–255: for each image with probability
    ``p``, a mean and std drawn uniformly from the ranges (fractions of 255), noise added, clipped.
    """
    for name, (low, high) in (("std_range", std_range), ("mean_range", mean_range)):
        if low > high:
            raise ValueError(f"GaussNoise {name} must be [low, high], got {[low, high]}")
    if not 0 <= p <= 1:
        raise ValueError(f"GaussNoise p must be in [0, 1], got {p}")
    b, c, h, w = images.shape

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.empty(b, 1, 1, 1, device=images.device).uniform_(low, high) * 255

    apply = (torch.rand(b, 1, 1, 1, device=images.device) < p).to(images.dtype)
    std, mean = uniform(*std_range) * apply, uniform(*mean_range) * apply
    noise = torch.randn(b, c if per_channel else 1, h, w, device=images.device, dtype=images.dtype)
    return (images + noise * std + mean).clamp_(0, 255)


# Name → function; names follow Albumentations so that the config reads the same on both sides.
DEVICE_TRANSFORMS: dict[str, Callable[..., torch.Tensor]] = {"GaussNoise": gaussian_noise}


def build_device_augmentations(specs: Mapping[str, Any] | None) -> list[DeviceTransform]:
    """``{GaussNoise: {p: 1.0}, ...}`` (``null`` entries dropped) → functions of a float batch."""
    transforms = []
    for name, spec in (specs or {}).items():
        if spec is None:
            continue
        if name not in DEVICE_TRANSFORMS:
            raise ValueError(
                f"unknown device augmentation {name!r} in model.device_augmentations; "
                f"available: {sorted(DEVICE_TRANSFORMS)}"
            )
        kwargs = dict(spec)
        fn = DEVICE_TRANSFORMS[name]
        try:  # check the arguments now, not at the first training batch; RNG left as it was
            with torch.random.fork_rng(devices=[]):
                fn(torch.zeros(1, 3, 2, 2), **kwargs)
        except TypeError as error:
            raise ValueError(f"model.device_augmentations.{name}: {error}") from None
        transforms.append(partial(fn, **kwargs))
    return transforms
