"""Patch selection, after Iterative Patch Selection (Bergner et al., ICLR 2023), as a timm model
(``hdvision_patch_select``) that HDClassifier takes like any backbone (with ``model/stem=none``):

1. the image is cut into ``patch_size`` patches (stride ``stride``);
2. every patch is scored on a low-resolution view (``score_size`` px) by the encoder and the
   attention scorer, without gradients and in eval mode, ``chunk`` patches at a time, keeping a
   running top ``k``: memory does not grow with the number of patches;
3. the ``k`` best patches, at full resolution, are encoded with gradients by the timm encoder;
4. attention-based multiple-instance pooling (Ilse et al., 2018) weighs their embeddings into one,
   and a linear layer classifies it. The pooling weights are the scores of step 2, recomputed with
   gradients on the same low-resolution views in the same (eval) mode: the scorer learns on the
   views it selects from, so what it learns on the selected patches decides the next selection.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.models import register_model
from torch import nn

from hdvision.models.backbone import create_backbone, pooled_width


class PatchSelect(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        encoder: str = "tf_efficientnet_lite0",
        encoder_weights: str | None = None,
        patch_size: int = 64,
        stride: int | None = None,
        k: int = 8,
        score_size: int = 32,
        chunk: int = 64,
        attention_dim: int = 128,
        drop_rate: float = 0.0,
        in_chans: int = 3,
        **unused: Any,  # timm's factory options this model has no use for (global_pool, ...)
    ) -> None:
        super().__init__()
        if min(patch_size, k, score_size, chunk) < 1:
            raise ValueError(
                f"hdvision_patch_select: patch_size, k, score_size and chunk must be positive, "
                f"got {patch_size}, {k}, {score_size}, {chunk}"
            )
        self.patch_size, self.stride = patch_size, stride or patch_size
        self.k, self.score_size, self.chunk = k, score_size, chunk
        self.num_classes = num_classes
        self.encoder = create_backbone(encoder, num_classes=0, weights=encoder_weights)
        dim = pooled_width(self.encoder)
        self.attention = nn.Sequential(
            nn.Linear(dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1)
        )
        self.drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(dim, num_classes)
        # timm's data config (hdvision normalises with it): the encoder's.
        self.pretrained_cfg: dict[str, Any] = {
            **dict(getattr(self.encoder, "pretrained_cfg", None) or {}),
            "architecture": "hdvision_patch_select",
            "classifier": "classifier",
        }

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C, P, P): the image's patches, row by row."""
        b, c = x.shape[:2]
        p, s = self.patch_size, self.stride
        if min(x.shape[-2:]) < p:
            raise ValueError(f"a {tuple(x.shape[-2:])} image is smaller than patch_size={p}")
        tiles = x.unfold(2, p, s).unfold(3, p, s)  # (B, C, rows, cols, P, P)
        return tiles.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c, p, p)

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.attention(embeddings).squeeze(-1)

    def score_views(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, N) scores of (B, N, C, P, P) patches: each at ``score_size`` px, the encoder in
        eval mode (low-resolution views must not move BatchNorm's statistics, and selection and
        pooling must see one function); gradients flow when the caller allows them."""
        b, n = patches.shape[:2]
        views = F.interpolate(patches.flatten(0, 1), size=self.score_size, mode="area")
        # Each module's own mode comes back, not the encoder's: precise BN sets only the
        # BatchNorms of an eval-mode model to train, and they must stay so for the full-resolution
        # pass that follows (encoder.train(False) would leave them in eval: no statistics).
        modes = [(m, m.training) for m in self.encoder.modules()]
        self.encoder.eval()
        try:
            return self.scores(self.encoder(views).view(b, n, -1))
        finally:
            for m, training in modes:
                m.training = training

    @torch.no_grad()
    def select(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, k) indices of the best-scoring patches (:meth:`score_views`), ``chunk`` at a time
        with a running top-k (nothing is kept for backward)."""
        b, n = patches.shape[:2]
        k = min(self.k, n)
        best_scores = patches.new_full((b, 0), float("-inf"))
        best_index = torch.zeros(b, 0, dtype=torch.long, device=patches.device)
        for start in range(0, n, self.chunk):
            part = patches[:, start : start + self.chunk]
            scored = self.score_views(part)
            index = torch.arange(start, start + part.shape[1], device=patches.device)
            all_scores = torch.cat([best_scores, scored], 1)
            all_index = torch.cat([best_index, index.expand(b, -1)], 1)
            best_scores, top = all_scores.topk(min(k, all_scores.shape[1]), dim=1)
            best_index = all_index.gather(1, top)
        return best_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.patches(x)
        index = self.select(patches)
        b, k = index.shape
        chosen = patches.gather(1, index[:, :, None, None, None].expand(-1, -1, *patches.shape[2:]))
        # Scored as selection scored them (an attention trained on full-resolution embeddings
        # would rank the low-resolution views with a function it never learned), and before the
        # train-mode pass below moves BatchNorm's statistics.
        weights = self.score_views(chosen).softmax(1)
        embeddings = self.encoder(chosen.flatten(0, 1)).view(b, k, -1)
        pooled = (weights[..., None] * embeddings).sum(1)
        return self.classifier(self.drop(pooled))


@register_model
def hdvision_patch_select(pretrained: bool = False, **kwargs: Any) -> PatchSelect:
    """timm entry point; the encoder's weights come from ``encoder_weights`` (offline)."""
    if pretrained:
        raise ValueError("hdvision_patch_select: use encoder_weights for the encoder's weights")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    return PatchSelect(**kwargs)
