"""``hdvision prune``: structured channel pruning of a trained model's timm backbone with
Torch-Pruning (DepGraph), so that channels are really removed and the model really shrinks.

The stem is never pruned (its output is the backbone's 3-channel input and its own layers are a
few narrow convolutions); the backbone's head (``conv_head`` and the classifier) stays whole
unless ``prune_head``. The pruned checkpoint records the new channel counts as plain data
(:mod:`hdvision.models.layer_shapes`) and loads like any other checkpoint (``weights_only=True``).
Fine-tune it with ``python train.py experiment=prune_finetune init_from=<pruned.ckpt>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from hdvision.compress.derived import save_derived_checkpoint
from hdvision.models.checkpoint import CheckpointError, read_checkpoint
from hdvision.models.cost import count_params, forward_flops
from hdvision.models.layer_shapes import changed_shapes, layer_shapes

if TYPE_CHECKING:
    from hdvision.models.module import HDClassifier

IMPORTANCES = ("l1", "l2", "taylor", "random")


def _importance(name: str) -> Any:
    import torch_pruning as tp

    if name == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    if name == "random":
        return tp.importance.RandomImportance()
    raise ValueError(f"--importance {name!r}: choose one of {', '.join(IMPORTANCES)}")


def check_ratio(ratio: float) -> float:
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"prune ratio {ratio} is outside (0, 1): the share of channels removed")
    return ratio


def prune_backbone(
    backbone: nn.Module,
    example_input: torch.Tensor,
    ratio: float,
    importance: str = "l1",
    prune_head: bool = False,
    gradient_batches: Iterable[tuple[torch.Tensor, torch.Tensor]] = (),
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    round_to: int | None = None,
) -> dict[str, dict[str, int]]:
    """Remove ``ratio`` of the channels of every prunable group of ``backbone`` (in place) and
    return the changed layers' shapes. ``taylor`` needs ``gradient_batches`` of (backbone input,
    label) to accumulate gradients over. ``round_to``: every pruned group keeps a multiple of
    that many channels (Torch-Pruning's ``round_to``), counts the CPU kernels vectorise."""
    import torch_pruning as tp

    check_ratio(ratio)
    before = layer_shapes(backbone)
    get_classifier = getattr(backbone, "get_classifier", None)  # timm models have one
    classifier = get_classifier() if callable(get_classifier) else None
    ignored = [classifier] if isinstance(classifier, nn.Module) else []  # its outputs: classes
    conv_head = getattr(backbone, "conv_head", None)
    if not prune_head and isinstance(conv_head, nn.Module):
        ignored.append(conv_head)
    pruner = tp.pruner.MetaPruner(
        backbone,
        example_input,
        importance=_importance(importance),
        pruning_ratio=ratio,
        ignored_layers=ignored,
        round_to=round_to,
    )
    if importance == "taylor":
        batches = list(gradient_batches)
        if not batches:
            raise ValueError("--importance taylor needs labelled images (--images)")
        backbone.zero_grad()
        for x, y in batches:
            loss_fn(backbone(x), y).backward()
    pruner.step()
    backbone.zero_grad(set_to_none=True)
    return changed_shapes(before, layer_shapes(backbone))


def prune_checkpoint(
    checkpoint_path: str | Path,
    out: str | Path,
    ratio: float,
    importance: str = "l1",
    prune_head: bool = False,
    images: str | None = None,
    num_images: int = 64,
    round_to: int | None = None,
) -> dict[str, Any]:
    """Prune the backbone of a ``train.py`` checkpoint and write a checkpoint of the pruned
    model (no optimizer or loop state: fine-tune it with ``init_from``). Returns the cost of the
    backbone before and after."""
    from hdvision.models.module import HDClassifier

    check_ratio(ratio)
    _importance(importance)
    checkpoint = read_checkpoint(checkpoint_path)
    recorded = (checkpoint.get("hyper_parameters") or {}).get("pruned")
    if recorded:
        raise CheckpointError(
            f"{checkpoint_path} is already pruned (ratio {recorded['ratio']}, "
            f"{recorded['importance']}); prune the unpruned checkpoint with a higher ratio instead"
        )
    model = HDClassifier.from_checkpoint(str(checkpoint_path), checkpoint)
    size = model.hparams.backbone_input
    example = torch.randn(1, 3, *size)
    backbone = model.backbone
    cost_before = {"params": count_params(backbone)[0], "flops": forward_flops(backbone, example)}
    batches = []
    if importance == "taylor":
        batches = _gradient_batches(model, images, num_images)
    shapes = prune_backbone(
        backbone.eval(), example, ratio, importance, prune_head, batches, round_to=round_to
    )
    cost_after = {"params": count_params(backbone)[0], "flops": forward_flops(backbone, example)}
    hparams = dict(checkpoint["hyper_parameters"])
    hparams["pruned"] = {
        "ratio": ratio,
        "importance": importance,
        "round_to": round_to,
        "shapes": shapes,
    }
    save_derived_checkpoint(checkpoint, out, model.state_dict(), hparams)
    return {"before": cost_before, "after": cost_after, "layers": len(shapes)}


def _gradient_batches(
    model: HDClassifier, images: str | None, num_images: int, batch_size: int = 16
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Labelled images as (backbone input, label) batches, through the model's own stem."""
    from hdvision.inference.inputs import InputError, required_labels
    from hdvision.inference.predict import PredictionImages
    from hdvision.inference.samples import image_rows

    hparams = model.hparams
    rows = image_rows(images, hparams, num_images, "--images")
    labels = required_labels(rows, hparams.class_names, "--importance taylor")
    dataset = PredictionImages(
        [r.path for r in rows], hparams.preprocessing, [r.member for r in rows]
    )
    items = [(dataset[i], label) for i, label in enumerate(labels)]
    good = [(item["image"], label) for item, label in items if not item["error"]]
    if not good:
        raise InputError(f"none of the {len(rows)} images could be decoded (first: {rows[0].path})")
    decoded = torch.stack([image for image, _ in good])
    labels = [label for _, label in good]
    batches = []
    with torch.no_grad():
        for i in range(0, len(decoded), batch_size):
            x = model.stem_output(model.prepare_input(decoded[i : i + batch_size]))
            batches.append((x, torch.tensor(labels[i : i + batch_size])))
    return batches
