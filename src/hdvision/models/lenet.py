"""A LeNet-style network (conv-pool-conv-pool-fc-fc) whose first layers are plain arguments, as a
timm model (``timm.create_model("hdvision_lenet", img_size=28, ...)``), so that HDClassifier,
checkpoints and every tool take it like any other backbone.

It is the network of Borji's resolution study ("Enhancing sensor resolution improves CNN accuracy
given the same number of parameters or FLOPS"); ``hdvision resolution-search`` changes its first
layers so that a higher input resolution costs the same parameters or FLOPs
(:mod:`hdvision.tools.resolution_search`). The approaches' extra layers are arguments too:
``extra_pool`` (III: a pooling after conv1) and ``head_pool`` (I: average pooling before fc1).
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import register_model
from torch import nn


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """The output size of a convolution or pooling (PyTorch's formula; < 1: no output)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class LeNet(nn.Module):
    """conv1 → ReLU → [extra_pool] → max-pool 2 → conv2 → ReLU → max-pool 2 → [avg head_pool]
    → fc1 → ReLU → dropout → fc2. ``img_size`` (square) sizes fc1."""

    def __init__(
        self,
        img_size: int = 28,
        in_chans: int = 3,
        num_classes: int = 10,
        c1: int = 6,
        k1: int = 5,
        s1: int = 1,
        p1: int = 2,
        d1: int = 1,
        extra_pool: int = 1,
        c2: int = 16,
        k2: int = 5,
        s2: int = 1,
        p2: int = 2,
        head_pool: int = 1,
        hidden: int = 120,
        drop_rate: float = 0.0,
        **unused: Any,  # timm's factory options this network has no use for (global_pool, ...)
    ) -> None:
        super().__init__()
        self.img_size, self.num_classes = img_size, num_classes
        self.conv1 = nn.Conv2d(in_chans, c1, k1, stride=s1, padding=p1, dilation=d1)
        self.extra_pool = nn.MaxPool2d(extra_pool) if extra_pool > 1 else nn.Identity()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, k2, stride=s2, padding=p2)
        self.pool2 = nn.MaxPool2d(2)
        self.head_pool = nn.AvgPool2d(head_pool) if head_pool > 1 else nn.Identity()
        size = self.feature_size(img_size)
        if size < 1:
            raise ValueError(
                f"hdvision_lenet: a {img_size} px input leaves no feature map before fc1 "
                f"(k1={k1}, s1={s1}, p1={p1}, d1={d1}, extra_pool={extra_pool}, k2={k2}, "
                f"s2={s2}, p2={p2}, head_pool={head_pool}); use more padding or a larger image"
            )
        self.fc1 = nn.Linear(c2 * size * size, hidden)
        self.drop = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(hidden, num_classes)
        # What timm's data config reads (hdvision normalises with it): 0-255 pixels → about ±1.
        self.pretrained_cfg: dict[str, Any] = {
            "architecture": "hdvision_lenet",
            "mean": (0.5, 0.5, 0.5),
            "std": (0.5, 0.5, 0.5),
            "input_size": (in_chans, img_size, img_size),
            "classifier": "fc2",
        }

    def feature_size(self, img_size: int) -> int:
        """The side of the map fc1 flattens, for a square ``img_size`` input."""
        c1, c2 = self.conv1, self.conv2
        size = conv_out(img_size, c1.kernel_size[0], c1.stride[0], _pad(c1), c1.dilation[0])
        if isinstance(self.extra_pool, nn.MaxPool2d):
            size = conv_out(size, _side(self.extra_pool.kernel_size), _side(self.extra_pool.stride))
        size = conv_out(conv_out(size, 2, 2), c2.kernel_size[0], c2.stride[0], _pad(c2))
        size = conv_out(size, 2, 2)
        if isinstance(self.head_pool, nn.AvgPool2d):
            size = conv_out(size, _side(self.head_pool.kernel_size), _side(self.head_pool.stride))
        return size

    def get_classifier(self) -> nn.Module:
        return self.fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.extra_pool(torch.relu(self.conv1(x))))
        x = self.head_pool(self.pool2(torch.relu(self.conv2(x))))
        x = self.drop(torch.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def _side(value: Any) -> int:
    return int(value if isinstance(value, int) else value[0])


def _pad(conv: nn.Conv2d) -> int:
    return _side(conv.padding)


@register_model
def hdvision_lenet(pretrained: bool = False, **kwargs: Any) -> LeNet:
    """timm entry point; no pretrained weights exist (``model.backbone.weights`` must be null)."""
    if pretrained:
        raise ValueError("hdvision_lenet has no pretrained weights")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    return LeNet(**kwargs)
