"""Small blocks the stems share: area resize (exportable), separable resampling with per-image
matrices (the zoom), the detail map, conv-BN-ReLU, zero init."""

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


def resize(x: torch.Tensor, size: Sequence[int], mode: str = "area") -> torch.Tensor:
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "area":
        (h, w), (height, width) = size, x.shape[-2:]
        if torch.compiler.is_exporting() and (height % h or width % w):
            # ONNX has no adaptive pooling: the exporter unrolls a non-dividing one into dozens
            # of gather/where/transpose nodes, slow in onnxruntime. The same window averages as
            # two matmuls with constant matrices (equal to ~1e-7).
            return area_matrix(height, h, x) @ x @ area_matrix(width, w, x).T
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


def resampling_matrix(coords: torch.Tensor, size: int, antialias: bool = True) -> torch.Tensor:
    """(B, n, size): row i holds the weights with which output pixel i reads a source axis of
    ``size`` pixels at position ``coords[:, i]`` (B, n), in ``grid_sample``'s [-1, 1] coordinates
    (``align_corners=False``; outside the axis, the border pixel).

    A triangle (linear interpolation) filter: where output pixels are at least as dense as source
    pixels, exactly ``grid_sample``'s bilinear weights; where they are sparser (a zoom that also
    shrinks), the triangle widens to the local spacing (``antialias``), so every source pixel is
    averaged in instead of skipped: zoom and downsampling in one linear step, without aliasing.
    """
    pos = (coords.double() + 1) * (size / 2)  # source pixel units; pixel j's centre at j + 0.5
    width = torch.ones_like(pos)
    if antialias and pos.shape[1] > 1:
        step = (pos[:, 1:] - pos[:, :-1]).abs().detach()
        # The spacing around each output pixel: the mean of its two gaps (one at the ends).
        around = torch.cat([step[:, :1], (step[:, 1:] + step[:, :-1]) / 2, step[:, -1:]], 1)
        width = around.clamp_min(1.0)
    pos = pos.clamp(0.5, size - 0.5)  # border padding
    index = torch.arange(size, device=coords.device)
    # Bilinear as grid_sample computes it (the left neighbour by floor): its gradient is the
    # same one-sided difference everywhere, also where a position falls exactly on a pixel
    # centre, as every position does before the zoom has learned anything.
    left = (pos - 0.5).floor().clamp(0, size - 1)
    frac = pos - 0.5 - left
    left_hot = (index == left[..., None]).to(pos.dtype)
    right_hot = (index == (left + 1).clamp(max=size - 1)[..., None]).to(pos.dtype)
    bilinear = left_hot * (1 - frac[..., None]) + right_hot * frac[..., None]
    if not antialias:
        return bilinear
    centres = index.to(pos.dtype) + 0.5
    triangle = (1 - (centres - pos[..., None]).abs() / width[..., None]).clamp_min(0)
    triangle = triangle / triangle.sum(-1, keepdim=True)
    return torch.where(width[..., None] > 1, triangle, bilinear)


def separable_resample(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``rows @ x @ colsᵀ`` per image: (B, C, H, W) with (B, h, H) and (B, w, W) → (B, C, h, w).
    Rows first: the second product then runs on ``h`` rows instead of ``H``."""
    rows, cols = rows.to(x.dtype), cols.to(x.dtype)
    return rows[:, None] @ x @ cols.transpose(1, 2)[:, None]


def detail_map(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """(B, h, w): per cell of ``mean`` (the area downsampling of ``x``), the pixel variance it
    averages away, summed over channels."""
    return (resize(x * x, mean.shape[-2:]) - mean * mean).clamp_min(0).sum(1)


def cell_detail(x: torch.Tensor, cell: int) -> torch.Tensor:
    """(B, ⌈H/cell⌉, ⌈W/cell⌉): :func:`detail_map` on square cells of ``cell`` pixels (the last
    row and column of cells may be narrower), without copying a cropped view of ``x``."""
    mean = F.avg_pool2d(x, cell, ceil_mode=True)
    return (F.avg_pool2d(x * x, cell, ceil_mode=True) - mean * mean).clamp_min(0).sum(1)
