"""Small blocks the stems share: area resize (exportable), the detail map, conv-BN-ReLU, zero
init. The zoom's separable resampling is in :mod:`hdvision.models.resample`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def area_matrix(n_in: int, n_out: int, like: torch.Tensor) -> torch.Tensor:
    """(n_out, n_in): row i averages the inputs of adaptive average pooling's window i."""
    i = torch.arange(n_out, device=like.device)
    start, end = (i * n_in) // n_out, ((i + 1) * n_in + n_out - 1) // n_out
    j = torch.arange(n_in, device=like.device)
    window = ((j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])).to(like.dtype)
    return window / window.sum(1, keepdim=True)


def _exportable_area(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``adaptive_avg_pool2d(x, (h, w))`` in operators onnxruntime runs fast (equal to ~1e-7).
    ONNX has no adaptive pooling: the exporter unrolls a non-dividing one into dozens of
    gather/where/transpose nodes. An axis that divides is a mean over a reshape, a cheap pass
    that also shrinks the tensor first; one that does not is a matmul with a constant window
    matrix. (Both axes as matmuls cost the default model's int8 graph ~0.3 ms more per image,
    docs/results/inference.md.)"""
    height, width = x.shape[-2:]
    if width % w == 0:
        x = x.unflatten(-1, (w, width // w)).mean(-1)
        if height % h == 0:
            return x.unflatten(-2, (h, height // h)).mean(-2)
        return area_matrix(height, h, x) @ x
    if height % h == 0:
        x = x.unflatten(-2, (h, height // h)).mean(-2)
        return x @ area_matrix(width, w, x).T
    return area_matrix(height, h, x) @ x @ area_matrix(width, w, x).T


def resize(x: torch.Tensor, size: Sequence[int], mode: str = "area") -> torch.Tensor:
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "area":
        (h, w), (height, width) = size, x.shape[-2:]
        if torch.compiler.is_exporting() and (height % h or width % w):
            return _exportable_area(x, h, w)
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=mode != "nearest")


def conv_bn_act(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def zero_init(conv: nn.Conv2d) -> nn.Conv2d:
    # The learned path starts at zero so the stem starts as its resize skip path.
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def detail_map(
    x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, h, w): per cell of ``mean`` (the area downsampling of ``x``), the pixel variance it
    averages away, summed over channels; with ``std`` (1, C, 1, 1), the variance of ``x``
    normalised by it (each channel's divided by std²), without normalising ``x``."""
    variance = (resize(x * x, mean.shape[-2:]) - mean * mean).clamp_min(0)
    if std is not None:
        variance = variance / (std * std)
    return variance.sum(1)


def cell_detail(x: torch.Tensor, cell: int) -> torch.Tensor:
    """(B, ⌈H/cell⌉, ⌈W/cell⌉): :func:`detail_map` on square cells of ``cell`` pixels (the last
    row and column of cells may be narrower), without copying a cropped view of ``x``."""
    mean = F.avg_pool2d(x, cell, ceil_mode=True)
    return (F.avg_pool2d(x * x, cell, ceil_mode=True) - mean * mean).clamp_min(0).sum(1)
