"""Stems: map a full-resolution batch (B, 3, H, W) to the backbone input size, as a 3-channel image.

Every stem keeps a plain resize of the input as its skip path, so an ImageNet-pretrained backbone
sees a sensible image from step 0 and the learned part only has to add what resizing loses. The
saliency sampler (``hdvision.models.stems.zoom``) zooms first and hands the result to one of these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hdvision.models.layers import conv_bn_act, resize, zero_init
from hdvision.models.stems.registry import register_stem


@register_stem("none")
class IdentityStem(nn.Module):
    """The backbone sees the full-resolution image."""

    def __init__(self, out_size: Sequence[int] | None = None) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@register_stem("resize")
class ResizeStem(nn.Module):
    """Area (or bilinear/bicubic) downsampling: the baseline every other stem is compared with."""

    def __init__(self, out_size: Sequence[int], mode: str = "area") -> None:
        super().__init__()
        self.out_size = tuple(out_size)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize(x, self.out_size, self.mode)


@register_stem("strided")
class StridedConvStem(nn.Module):
    """Stride-2 3×3 convolutions down to about the output size, plus the area-resize skip."""

    def __init__(self, out_size: Sequence[int], width: int = 16, num_stages: int = 3) -> None:
        super().__init__()
        self.out_size = tuple(out_size)
        layers: list[nn.Module] = []
        cin = 3
        for _ in range(num_stages):
            layers.append(conv_bn_act(cin, width, 3, stride=2))
            cin = width
        self.body = nn.Sequential(*layers)
        self.head = zero_init(nn.Conv2d(width, 3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize(x, self.out_size) + self.head(resize(self.body(x), self.out_size))


@register_stem("space_to_depth")
class SpaceToDepthStem(nn.Module):
    """Pixel-unshuffle by ``factor`` (lossless), then convolutions on the reduced grid (TResNet).

    Every input pixel reaches the learned path, yet all convolutions run at 1/factor² of the pixels.
    Set ``factor`` to about the input/output size ratio; the result is resized to ``out_size``.
    """

    def __init__(
        self, out_size: Sequence[int], factor: int = 4, width: int = 16, depth: int = 4
    ) -> None:
        super().__init__()
        self.out_size = tuple(out_size)
        self.factor = factor
        layers: list[nn.Module] = [conv_bn_act(3 * factor * factor, width, 1)]
        layers += [conv_bn_act(width, width, 3) for _ in range(depth)]
        layers.append(zero_init(nn.Conv2d(width, 3, 1)))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.factor
        pad_h, pad_w = (-x.shape[-2]) % f, (-x.shape[-1]) % f
        grid = F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x
        learned = self.body(F.pixel_unshuffle(grid, f))
        return resize(x, self.out_size) + resize(learned, self.out_size)


class _ResBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_stem("learned_resizer")
class LearnedResizerStem(nn.Module):
    """Talebi & Milanfar (ICCV 2021): bilinear skip + convolutional residual path.

    The paper runs its first convolutions at full resolution; at 1080×1920 that costs as much
    activation memory as a ResNet-50 at 540×960, so the learned path first area-shrinks the input
    to ``pre_scale`` × the output size (default 2×) and learns from there.
    """

    def __init__(
        self,
        out_size: Sequence[int],
        width: int = 16,
        num_res_blocks: int = 1,
        pre_scale: float = 2.0,
    ) -> None:
        super().__init__()
        self.out_size = tuple(out_size)
        self.pre_size = tuple(math.ceil(s * pre_scale) for s in self.out_size)
        self.head = nn.Sequential(
            nn.Conv2d(3, width, 7, padding=3),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.BatchNorm2d(width),
        )
        self.blocks = nn.Sequential(*[_ResBlock(width) for _ in range(num_res_blocks)])
        self.merge = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)
        )
        self.tail = zero_init(nn.Conv2d(width, 3, 7, padding=3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = resize(x, self.out_size, "bilinear")
        small = resize(x, self.pre_size) if x.shape[-2] > self.pre_size[0] else x
        features = resize(self.head(small), self.out_size, "bilinear")
        features = self.merge(self.blocks(features)) + features
        return skip + self.tail(features)
