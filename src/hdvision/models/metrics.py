"""The classification metrics every stage logs (torchmetrics)."""

from __future__ import annotations

from typing import Any

from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


def classification_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """``{prefix}acc``, ``{prefix}f1`` (macro) and, above 5 classes, ``{prefix}acc_top5``."""
    metrics: dict[str, Any] = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
    }
    if num_classes > 5:
        metrics["acc_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    # No compute groups: torchmetrics merges metrics whose states happen to match after the
    # first update (top-5 accuracy and macro F1 after an all-correct first batch), and the merged
    # F1 then reads top-5 states (torchmetrics issues #2596, #2916).
    return MetricCollection(metrics, prefix=prefix, compute_groups=False)
