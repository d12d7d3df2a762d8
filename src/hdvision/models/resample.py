"""The saliency sampler's separable zoom: where each output row and column reads the source, as
two small per-image operations (rows, then columns) instead of a 2-D ``grid_sample``.

:func:`resampling_matrix` writes each axis's sampling weights as a matrix (bilinear, or widened
where the zoom shrinks: antialiasing, zoom and downsampling in one linear step);
:func:`separable_resample` applies them, exported as ``MatMul``.
"""

from __future__ import annotations

import torch


def source_positions(coords: torch.Tensor, size: int) -> torch.Tensor:
    """``grid_sample`` coordinates in [-1, 1] (``align_corners=False``) as positions on an axis of
    ``size`` pixels, in pixel units with pixel j's centre at j + 0.5 (float64)."""
    return (coords.double() + 1) * (size / 2)


def bilinear_taps(pos: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The left neighbour's index and the right neighbour's weight of each position (clamped to
    the border), as ``grid_sample`` computes them: the left neighbour by floor, so the gradient is
    the same one-sided difference everywhere, also where a position falls exactly on a pixel
    centre, as every position does before the zoom has learned anything."""
    pos = pos.clamp(0.5, size - 0.5)
    left = (pos - 0.5).floor().clamp(0, size - 1)
    return left, pos - 0.5 - left


def resampling_matrix(
    coords: torch.Tensor, size: int, antialias: bool = True, source_first: bool = False
) -> torch.Tensor:
    """(B, n, size): row i holds the weights with which output pixel i reads a source axis of
    ``size`` pixels at position ``coords[:, i]`` (B, n), in ``grid_sample``'s [-1, 1] coordinates
    (``align_corners=False``; outside the axis, the border pixel). ``source_first``: the same
    weights as (B, size, n), the layout a product from the right wants, built so (an exported
    transpose of the dense matrix costs the default model ~0.1 ms per image).

    A triangle (linear interpolation) filter: where output pixels are at least as dense as source
    pixels, exactly ``grid_sample``'s bilinear weights; where they are sparser (a zoom that also
    shrinks), the triangle widens to the local spacing (``antialias``), so every source pixel is
    averaged in instead of skipped: zoom and downsampling in one linear step, without aliasing.
    """
    # float32 from here: positions within a few hundred pixels keep ~3e-5 px, and the dense
    # (n, size) weights cost half the time they cost in float64.
    pos = source_positions(coords, size).float()
    width = torch.ones_like(pos)
    if antialias and pos.shape[1] > 1:
        step = (pos[:, 1:] - pos[:, :-1]).abs().detach()
        # The spacing around each output pixel: the mean of its two gaps (one at the ends).
        around = torch.cat([step[:, :1], (step[:, 1:] + step[:, :-1]) / 2, step[:, -1:]], 1)
        width = around.clamp_min(1.0)
    pos = pos.clamp(0.5, size - 0.5)  # border padding
    # Per output pixel (B, n) → its weights over the source axis, in the layout asked for.
    source_axis = 1 if source_first else 2

    def spread(t: torch.Tensor) -> torch.Tensor:
        return t.unsqueeze(source_axis)

    index = torch.arange(size, device=coords.device)
    index = index[:, None] if source_first else index
    if antialias:
        centres = index.to(pos.dtype) + 0.5
        triangle = (1 - (centres - spread(pos)).abs() / spread(width)).clamp_min(0)
        triangle = triangle / triangle.sum(source_axis, keepdim=True)
        needs_grad = torch.is_grad_enabled() and coords.requires_grad
        if torch.compiler.is_exporting() or not needs_grad:
            # Where the width is 1 the triangle is the bilinear weights, to rounding; only
            # their gradient differs (at pixel centres, below), so without one it is all.
            return triangle
    left, frac = bilinear_taps(pos, size)
    left_hot = (index == spread(left)).to(pos.dtype)
    right_hot = (index == spread((left + 1).clamp(max=size - 1))).to(pos.dtype)
    bilinear = left_hot * (1 - spread(frac)) + right_hot * spread(frac)
    if not antialias:
        return bilinear
    return torch.where(spread(width) > 1, triangle, bilinear)


def separable_resample(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``rows @ x @ cols`` per image: (B, C, H, W) with (B, h, H) and (B, W, w) (the columns'
    matrix source-first, :func:`resampling_matrix`'s ``source_first``) → (B, C, h, w).
    Rows first: the second product then runs on ``h`` rows instead of ``H``."""
    rows, cols = rows.to(x.dtype), cols.to(x.dtype)
    return rows[:, None] @ x @ cols[:, None]
