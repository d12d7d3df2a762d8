"""A content-aware stem: decide where to look, then spend the backbone's pixels there.

Separable "learning to zoom" (Recasens et al., ECCV 2018): a saliency map at low resolution; along
each axis, output pixels are spent in proportion to a uniform share plus the saliency marginal, so
salient rows and columns are magnified and straight lines stay straight. Because the warp is
separable, it is two small matrix products per image (rows, then columns: ``MatMul`` in ONNX, the
same operation in PyTorch, onnxruntime fp32 and int8), and with ``antialias`` they also average
where the zoom shrinks, so it goes straight to the backbone's input size. Without it (models
trained before the option), the same bilinear positions are read with ``grid_sample``. The
warped image goes through an inner stem to the backbone input.

Saliency = a detail prior (the pixel variance that area downsampling averages away: zoom where
resizing would lose most) times a learned correction. Without the prior, the classification
gradient alone did not move the zoom in the first 2 epochs of a default run
(docs/results/default_run.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hdvision.models.layers import conv_bn_act, detail_map, resize, zero_init
from hdvision.models.resample import resampling_matrix, separable_resample
from hdvision.models.stems.registry import create_stem, register_stem


def inverse_cdf_coords(density: torch.Tensor, num: int) -> torch.Tensor:
    """Where ``num`` evenly spaced output pixels sample from, so that they are spent in
    proportion to ``density`` (B, M) over M equal source bins: (B, num) coordinates in [-1, 1]
    (``grid_sample`` with ``align_corners=False``). Uniform density gives the identity.
    """
    b, m = density.shape
    cdf = torch.cat([density.new_zeros(b, 1), density.cumsum(1)], 1)
    cdf = cdf / cdf[:, -1:]
    t = (torch.arange(num, device=density.device, dtype=density.dtype) + 0.5) / num
    t = t.expand(b, num).contiguous()
    # Piecewise-linear inverse: differentiable through the bin edges it interpolates between.
    # searchsorted(cdf, t, right=True) as a count of edges <= t: the same indices, and ONNX
    # has no searchsorted (neither exporter translates it); (B, num, M+1) is small.
    idx = (cdf.detach()[:, None, :] <= t[:, :, None]).sum(-1).clamp(1, m)
    lo, hi = cdf.gather(1, idx - 1), cdf.gather(1, idx)
    frac = ((t - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    return ((idx - 1).to(t.dtype) + frac) / m * 2 - 1


@register_stem("saliency_sampler")
class SaliencySamplerStem(nn.Module):
    """Saliency-driven separable zoom, then ``inner`` (a stem spec ``{name: ..., **kwargs}``).

    ``saliency_size`` is the low-resolution view saliency is computed at (default: ``out_size``);
    ``zoom_share`` is the largest share of each axis's pixels that saliency can claim (the rest
    stays uniform, so nothing is squeezed to zero width). ``warp_size`` is the size the zoom
    samples (default: the input's): smaller than the input (a ½-scale or full decode), the zoomed
    regions magnify real pixels instead of interpolated ones, and no convolution runs at the
    input's resolution (only area resizes and the sampling itself). The learned correction
    starts at zero: the stem starts as its inner stem on the image zoomed by the detail prior
    (``detail_prior``; without it, on the unwarped image). The prior's weight is learned too.
    ``learned_correction=False`` drops the correction network: the zoom follows the detail prior
    alone (its weight still learned), the ablation that tells what the correction earns.
    ``antialias``: the resampling widens its filter where output pixels are sparser than input
    pixels (off: bilinear sampling, what models trained before the option saw).
    """

    # The input itself is read only by area pooling and the resampling (matrix products or
    # grid_sample), faster on a contiguous tensor than on channels_last: 0.57 against 0.83 ms per
    # image for the products (batch 16, 270x480 to 68x120, 2 threads). The inner stem reads the
    # zoomed image. Read by HDClassifier.prepare_input.
    reads_channels_last = False
    # Every way the stem reads its input averages pixels with weights that sum to one (area
    # resizes, the resampling matrices) or measures their variance, so a per-channel
    # normalisation commutes with it: the stem takes the image unnormalised and normalises it
    # once it is small (68x120 instead of 270x480 for the default model; also a uint8-exact input
    # for onnxruntime). HDClassifier reads this and hands over its normalisation.
    normalizes_input = True

    def __init__(
        self,
        out_size: Sequence[int],
        width: int = 16,
        zoom_share: float = 0.5,
        saliency_size: Sequence[int] | None = None,
        inner: Mapping[str, Any] | None = None,
        detail_prior: bool = True,
        warp_size: Sequence[int] | None = None,
        learned_correction: bool = True,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= zoom_share < 1.0:
            raise ValueError(f"zoom_share must be in [0, 1), got {zoom_share}")
        if not (detail_prior or learned_correction):
            raise ValueError(
                "saliency_sampler: detail_prior and learned_correction are both false; "
                "nothing would decide where to zoom (use the inner stem alone instead)"
            )
        self.saliency_size = tuple(saliency_size or out_size)
        self.warp_size = tuple(warp_size) if warp_size else None
        if self.warp_size is not None and (len(self.warp_size) != 2 or min(self.warp_size) < 1):
            raise ValueError(f"warp_size must be two positive sizes [h, w], got {warp_size}")
        self.zoom_share = zoom_share
        self.antialias = antialias
        self.prior_weight = nn.Parameter(torch.ones(())) if detail_prior else None
        self.saliency = (
            nn.Sequential(
                conv_bn_act(3, width, 3),
                conv_bn_act(width, width, 3),
                zero_init(nn.Conv2d(width, 1, 1)),
            )
            if learned_correction
            else None
        )
        inner = dict(inner or {"name": "space_to_depth"})
        self.inner = create_stem(inner.pop("name"), out_size, **inner)
        # The identity until set_input_normalization: input that is already normalised. Not in
        # the state dict (the model's normalisation is a hyper-parameter).
        self.register_buffer("input_mean", torch.zeros(1, 1, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.ones(1, 1, 1, 1), persistent=False)

    def set_input_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Take input in the pixel units of ``mean`` and ``std`` (1, C, 1, 1) and normalise it
        inside: ``stem(x)`` then equals the stem without them on ``(x - mean) / std``."""
        self.input_mean = mean.detach().clone().reshape(1, -1, 1, 1)
        self.input_std = std.detach().clone().reshape(1, -1, 1, 1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std

    def saliency_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, h, w) at ``saliency_size``, summing to 1 per image."""
        small = resize(x, self.saliency_size)
        if self.saliency is not None:
            logits = self.saliency(self.normalize(small)).float()[:, 0]
        else:
            logits = small.new_zeros(small.shape[0], *small.shape[-2:], dtype=torch.float32)
        if self.prior_weight is not None:
            detail = detail_map(x.float(), small.float(), self.input_std.float())
            # A 1 % floor of the mean: flat regions keep a little saliency, a flat image none.
            floor = 0.01 * detail.mean((1, 2), keepdim=True) + 1e-12
            logits = logits + self.prior_weight * torch.log(detail + floor)
        return logits.flatten(1).softmax(1).view_as(logits)

    def sampling_coords(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the output's rows (B, h) and columns (B, w) read the input, in ``grid_sample``
        coordinates, for an output of ``warp_size`` (default: the input's own size)."""
        saliency = self.saliency_map(x)
        height, width = self.warp_size or x.shape[-2:]
        coords = []
        for marginal, num in ((saliency.sum(2), height), (saliency.sum(1), width)):
            uniform = 1.0 / marginal.shape[1]
            density = (1 - self.zoom_share) * uniform + self.zoom_share * marginal
            # float64: a float32 cumsum over hundreds of bins drifts ~1e-4 px from the identity.
            coords.append(inverse_cdf_coords(density.double(), num))
        return coords[0], coords[1]

    def warp(self, x: torch.Tensor) -> torch.Tensor:
        """The zoomed image, normalised, at ``warp_size`` (default: the input's own size)."""
        return self.normalize(self._resample(x))

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = self.sampling_coords(x)
        if self.antialias:
            height, width = x.shape[-2:]
            return separable_resample(
                x,
                resampling_matrix(rows, height),
                resampling_matrix(cols, width, source_first=True),
            )
        # Plain bilinear sampling (models trained before antialiasing): grid_sample reads the
        # same positions as bilinear matrices would, and at the input's full size it is the
        # fastest way on a CPU (1.5-1.8 ms per 270x480 image, against 3.5-12 ms for gathering
        # rows and columns and more for dense matrices; docs/results/inference.md).
        grid = torch.stack(torch.broadcast_tensors(cols[:, None, :], rows[:, :, None]), dim=-1)
        return F.grid_sample(
            x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.warp(x))
