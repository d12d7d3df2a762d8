"""Detail windows: classify the few places where the detail is, then count what was found.

A timm model (``hdvision_detail_windows``) that HDClassifier takes like any backbone, behind the
``none`` stem (it sees the whole decoded image):

1. **Where to look, for free**: the detail prior (the pixel variance that area downsampling to
   ``cell``-pixel cells averages away, :func:`~hdvision.models.layers.detail_map`), summed over
   object-sized neighbourhoods of ``spread`` cells, ranks every position; greedy non-maximum
   suppression keeps the ``count`` best, at least ``radius`` cells apart. No convolution runs on
   empty background (the way pathology toolkits mask the background before tiling).
2. **What is there**: each ``window`` × ``window`` crop of real pixels around a candidate is
   classified by a small convolutional encoder trained from scratch, into the classes plus one
   "nothing" class (noise, texture, a second look at the same object).
3. **A pooling that can count**: the image's score for a class is the expected number of windows
   showing it (the sum of their probabilities), as ``scale · log(count)``: three windows of a
   class outvote two of another, which attention or max pooling cannot express.

On Megapixel MNIST (docs/results/megapixel_mnist.md) this learns from a few thousand canvases what
the saliency sampler's zoom did not learn in an hour.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import register_model
from torch import nn

from hdvision.models.backbone import create_backbone, pooled_width
from hdvision.models.layers import cell_detail, conv_bn_act

# count: the expected number of windows showing each class (they can outvote); top_k: the mean
# probability of each class's top_k windows (multiple-instance pooling for sparse objects).
POOLINGS = ("count", "top_k")


def detail_peaks(
    x: torch.Tensor, count: int, cell: int = 4, spread: int = 3, radius: int = 2
) -> torch.Tensor:
    """(B, count, 2) pixel positions (y, x) of ``x``'s ``count`` strongest detail peaks: the
    detail map on ``cell``-pixel cells, box-summed over ``spread`` cells, then greedy non-maximum
    suppression (the strongest cell first; a chosen cell silences the cells within ``radius`` of
    it). An image with fewer peaks repeats silenced cells."""
    detail = cell_detail(x.float(), cell)
    width = detail.shape[-1]
    mass = F.avg_pool2d(detail[:, None], spread, 1, spread // 2, count_include_pad=False)[:, 0]
    mass = mass.clone()
    chosen = []
    for _ in range(count):
        best = mass.flatten(1).argmax(1)
        chosen.append(best)
        # Silence each image's neighbourhood in place: a slice per image, not a mask over the
        # whole map per step (count x batch tiny writes instead of count passes over the map).
        for image, index in enumerate(best.tolist()):
            row, col = divmod(index, width)
            top, left = max(row - radius, 0), max(col - radius, 0)
            mass[image, top : row + radius + 1, left : col + radius + 1] = -1.0
    best = torch.stack(chosen, 1)
    return torch.stack([best // width, best % width], -1) * cell + cell // 2


def background_centres(
    x: torch.Tensor, centres: torch.Tensor, count: int, cell: int = 4, radius: int = 2
) -> torch.Tensor:
    """(B, count, 2) positions drawn with probability ∝ detail among the cells no candidate
    (``centres``, B, K, 2) lies within ``radius`` cells of: textured places that are, with
    objects small and sparse, almost never an object (every object near a peak is a candidate)."""
    detail = cell_detail(x.float(), cell)  # (B, h, w)
    b, h, w = detail.shape
    taken = torch.zeros_like(detail)
    cells = (centres // cell).clamp_min(0)
    rows, cols = cells[..., 0].clamp_max(h - 1), cells[..., 1].clamp_max(w - 1)
    taken[torch.arange(b, device=x.device)[:, None], rows, cols] = 1.0
    taken = F.max_pool2d(taken[:, None], 2 * radius + 1, 1, radius)[:, 0]
    # A small floor: flat images (or every cell taken) still have somewhere to draw from.
    weight = (detail + 1e-6 * detail.mean((1, 2), keepdim=True) + 1e-12) * (1 - taken) + 1e-12
    drawn = torch.multinomial(weight.flatten(1), count, replacement=True)
    return torch.stack([drawn // w, drawn % w], -1) * cell + cell // 2


def crop_windows(x: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    """(B, K, C, size, size) crops of ``x`` (B, C, H, W) around ``centres`` (B, K, 2), shifted
    inwards where they would leave the image (in channels-last memory: what the encoder wants)."""
    limit = (torch.tensor(x.shape[-2:], device=x.device) - size).clamp_min(0)
    top_left = torch.minimum((centres - size // 2).clamp_min(0), limit)
    offsets = torch.arange(size, device=x.device)
    rows = (top_left[..., 0, None] + offsets)[..., :, None]  # (B, K, size, 1)
    cols = (top_left[..., 1, None] + offsets)[..., None, :]  # (B, K, 1, size)
    batch = torch.arange(x.shape[0], device=x.device)[:, None, None, None]
    return x[batch, :, rows, cols].permute(0, 1, 4, 2, 3)  # (B, K, size, size, C) -> channels


class WindowEncoder(nn.Sequential):
    """Conv-BN-ReLU ×2 at ``width``, max-pool, ×2 at 2·``width``, max-pool, one at 4·``width``,
    global average: a small network sized to objects of 10–30 px, trained from scratch."""

    def __init__(self, in_chans: int = 3, width: int = 16) -> None:
        super().__init__(
            conv_bn_act(in_chans, width),
            conv_bn_act(width, width),
            nn.MaxPool2d(2),
            conv_bn_act(width, 2 * width),
            conv_bn_act(2 * width, 2 * width),
            nn.MaxPool2d(2),
            conv_bn_act(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.num_features = 4 * width


class DetailWindows(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        window: int = 24,
        count: int = 64,
        cell: int = 4,
        spread: int = 3,
        radius: int = 2,
        width: int = 16,
        jitter: int = 2,
        nothing_prior: float = 0.0,
        pooling: str = "count",
        top_k: int = 3,
        background: int = 0,
        background_weight: float = 1.0,
        encoder: str | None = None,
        encoder_weights: str | None = None,
        train_count: int | None = None,
        train_pool: int | None = None,
        train_prior: int = 0,
        drop_rate: float = 0.0,
        in_chans: int = 3,
        **unused: Any,  # timm's factory options this model has no use for (global_pool, ...)
    ) -> None:
        super().__init__()
        if min(window, count, cell, spread, width) < 1 or min(radius, jitter) < 0:
            raise ValueError(
                "hdvision_detail_windows: window, count, cell, spread and width must be "
                f"positive, radius and jitter 0 or more; got window={window}, count={count}, "
                f"cell={cell}, spread={spread}, radius={radius}, width={width}, jitter={jitter}"
            )
        if pooling not in POOLINGS:
            raise ValueError(
                f"hdvision_detail_windows: pooling={pooling!r} must be one of {POOLINGS}"
            )
        if background < 0 or background_weight < 0:
            raise ValueError(
                f"hdvision_detail_windows: background={background} and background_weight="
                f"{background_weight} must be 0 or more"
            )
        if not 0.0 <= nothing_prior < 1.0:
            raise ValueError(
                f"hdvision_detail_windows: nothing_prior={nothing_prior} must be in [0, 1): the "
                "share of 'nothing' each window starts with (0: no prior)"
            )
        self.num_classes = num_classes
        self.pooling, self.top_k = pooling, top_k
        self.window, self.count, self.jitter = window, count, jitter
        self.set_training_windows(train_count, train_pool, train_prior)
        self.cell, self.spread, self.radius = cell, spread, radius
        self.background, self.background_weight = background, background_weight
        # Set by each training forward when background > 0; HDClassifier adds it to the loss.
        self.auxiliary_loss: torch.Tensor | None = None
        # The windows arrive in channels-last memory (crop_windows); so do the encoder's weights.
        # The whole image is better left as it is: the detail map runs faster on it.
        # ``encoder``: a timm model (e.g. pretrained EfficientNet-Lite0, ``encoder_weights``)
        # that already knows strokes and edges, instead of the small encoder from scratch.
        window_encoder: nn.Module = (
            WindowEncoder(in_chans, width)
            if encoder is None
            else create_backbone(encoder, num_classes=0, weights=encoder_weights, in_chans=in_chans)
        )
        self.encoder = window_encoder.to(memory_format=torch.channels_last)
        self.drop = nn.Dropout(drop_rate)
        # One more output than classes: "nothing of interest in this window".
        self.classifier = nn.Linear(pooled_width(window_encoder), num_classes + 1)
        if nothing_prior > 0:
            # Most candidates show no object. Starting them there keeps the counts small, so that
            # the first windows the encoder recognises can move the image's scores instead of
            # being averaged into a hundred uniform guesses (the focal-loss bias trick). On the
            # photo canvases it did not get learning started (docs/results/megapixel_mnist.md).
            with torch.no_grad():
                self.classifier.bias[num_classes] = math.log(
                    nothing_prior / (1 - nothing_prior) * num_classes
                )
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.pretrained_cfg: dict[str, Any] = {
            "architecture": "hdvision_detail_windows",
            "classifier": "classifier",
            "mean": (0.485, 0.456, 0.406),
            "std": (0.229, 0.224, 0.225),
        }

    def check_training_windows(
        self, train_count: int | None, train_pool: int | None = None, train_prior: int = 0
    ) -> None:
        """Raises ValueError, naming the value, for training windows this model cannot take."""
        if train_count is not None and train_count < 1:
            raise ValueError(
                f"hdvision_detail_windows: train_count={train_count} must be positive (or null: "
                "train on count windows)"
            )
        if train_pool is not None and not (
            train_count is not None and train_pool >= train_count > train_prior >= 0
        ):
            raise ValueError(
                f"hdvision_detail_windows: train_pool={train_pool} needs train_pool >= "
                f"train_count > train_prior >= 0 (got train_count={train_count}, train_prior="
                f"{train_prior}); or train_pool: null to train on the prior's strongest windows"
            )
        fewest = min(self.count, train_count or self.count)
        if self.pooling == "top_k" and not 1 <= self.top_k <= fewest:
            raise ValueError(
                f"hdvision_detail_windows: top_k={self.top_k} must be in [1, {fewest}] (the "
                "fewest windows: count, train_count)"
            )

    def set_training_windows(
        self, train_count: int | None, train_pool: int | None = None, train_prior: int = 0
    ) -> None:
        """Which windows training reads (evaluation always reads the prior's ``count``); a
        :class:`~hdvision.callbacks.WindowSchedule` changes them during a run."""
        self.check_training_windows(train_count, train_pool, train_prior)
        # Training reads the prior's train_count strongest windows, evaluation its count. Why:
        # from the image label alone, the encoder only starts learning when the objects are a
        # large enough share of its windows (photos: 3 digits among 8 windows learn, among 16 or
        # 32 the loss stays flat for long); once it knows them, more windows only add reach
        # (docs/results/megapixel_mnist.md). The count pooling takes any number of windows.
        self.train_count = train_count
        # With train_pool, the encoder itself picks the training windows past the prior's
        # train_prior best: it scores the prior's train_pool strongest without gradient and
        # trains on the most object-like (as Iterative Patch Selection does). Why: the prior's
        # top 8 hold a label digit on 73 % of the photo canvases, its top 32 on 90 %.
        self.train_pool, self.train_prior = train_pool, train_prior

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def candidates(self, x: torch.Tensor) -> torch.Tensor:
        """(B, count, 2) window centres (``train_count`` of them in training, when set); moved
        by up to ``jitter`` px in training."""
        count = self.train_count if self.training and self.train_count else self.count
        if self.training and self.train_pool:
            centres = self.encoder_choice(x)
        else:
            with torch.no_grad():
                centres = detail_peaks(x, count, self.cell, self.spread, self.radius)
        if self.training and self.jitter:
            centres = centres + torch.randint_like(centres, -self.jitter, self.jitter + 1)
        return centres

    @torch.no_grad()
    def encoder_choice(self, x: torch.Tensor) -> torch.Tensor:
        """(B, train_count, 2): the prior's ``train_prior`` strongest of its ``train_pool``
        candidates, then the rest ranked by the encoder's belief that they show an object
        (1 − p(nothing)). The scoring pass runs in eval mode: no dropout, and the batch-norm
        statistics are not moved by a pass that trains nothing. Each submodule gets its own mode
        back (a frozen part, e.g. batch norm kept in eval while fine-tuning, stays frozen)."""
        assert self.train_count is not None
        pool = detail_peaks(x, self.train_pool or 0, self.cell, self.spread, self.radius)
        kept, rest = pool[:, : self.train_prior], pool[:, self.train_prior :]
        modes = [(m, m.training) for m in self.modules()]
        self.train(False)
        try:
            objects = 1 - self.encode(x, rest).float().softmax(-1)[..., self.num_classes]
        finally:
            for module, mode in modes:
                module.training = mode
        best = objects.topk(self.train_count - self.train_prior, dim=1).indices
        chosen = rest.gather(1, best[..., None].expand(-1, -1, 2))
        return torch.cat([kept, chosen], 1)

    def window_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The windows' centres (B, K, 2) and their logits (B, K, classes + 1)."""
        centres = self.candidates(x)
        return centres, self.encode(x, centres)

    def encode(self, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        windows = crop_windows(x, centres, self.window)
        b, k = windows.shape[:2]
        features = self.encoder(windows.flatten(0, 1))
        return self.classifier(self.drop(features)).view(b, k, -1)

    def background_loss(self, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Cross-entropy toward "nothing" of ``background`` windows per image away from every
        candidate. Why: under the image label alone, a texture window is pushed toward the
        image's class and away from the others, which sums to no push toward "nothing"; on
        photos the ~125 texture candidates then stay a uniform guess that drowns the digits
        (docs/results/megapixel_mnist.md). Texture away from the candidates is a free, nearly
        clean label for what is not an object."""
        with torch.no_grad():
            where = background_centres(x, centres, self.background, self.cell, self.radius)
        logits = self.encode(x, where).flatten(0, 1).float()
        nothing = torch.full((len(logits),), self.num_classes, device=x.device)
        return self.background_weight * F.cross_entropy(logits, nothing)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centres, logits = self.window_logits(x)
        self.auxiliary_loss = None
        if self.training and self.background:
            self.auxiliary_loss = self.background_loss(x, centres)
        return self.pool(logits)

    def pool(self, logits: torch.Tensor) -> torch.Tensor:
        """The image's class scores (B, classes) from its windows' logits (B, K, classes + 1)."""
        probs = logits.float().softmax(-1)[..., : self.num_classes]  # (B, K, classes)
        if self.pooling == "top_k":
            # Each class scored by its top_k most confident windows: the gradient reaches those
            # windows alone, not the ~K - 3 texture windows a photo adds to every class's count.
            return self.scale * torch.log(probs.topk(self.top_k, dim=1).values.mean(1) + 1e-6)
        return self.scale * torch.log(probs.sum(1) + 1e-6)


@register_model
def hdvision_detail_windows(pretrained: bool = False, **kwargs: Any) -> DetailWindows:
    """timm entry point; trained from scratch, or with a pretrained timm ``encoder`` (offline
    ``encoder_weights``)."""
    if pretrained:
        raise ValueError(
            "hdvision_detail_windows has no pretrained weights; a pretrained window encoder "
            "comes from encoder=<timm name> and encoder_weights"
        )
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    return DetailWindows(**kwargs)
