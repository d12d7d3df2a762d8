"""``hdvision resolution-search``: let a network take a higher input resolution at the same number
of parameters and/or FLOPs, the four ways of Borji ("Enhancing sensor resolution improves CNN
accuracy given the same number of parameters or FLOPS"):

- I: average pooling before the first FC layer (params equal; FLOPs re-equalised by shrinking fc1);
- II: a dilated / strided first convolution whose output map is the original's;
- III: a larger first kernel with fewer filters, then a new pooling that restores conv2's input;
- IV: the first two convolutions re-solved (kernel, stride, padding, conv1's filters) so that
  everything after them is untouched.

Candidates are enumerated with the output-size formula, then every one is built and counted
(``sum(p.numel())``, ``FlopCounterMode``, the activations its layers output); the count decides,
never a hand formula. For timm CNNs, II and IV re-solve the stem convolution and the first
block's first spatial convolution (``model.backbone.conv_overrides``); I and III do not apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from hdvision.models.backbone import create_backbone
from hdvision.tools.resolution_candidates import (
    APPROACHES,
    BUDGETS,
    KEYS,
    LENET,
    LENET_MODIFIED,
    Candidate,
    Cost,
    SearchError,
    lenet_candidates,
    lenet_cost_key,
    timm_candidates,
)

__all__ = [
    "APPROACHES",
    "BUDGETS",
    "LENET",
    "Candidate",
    "Cost",
    "SearchError",
    "measure",
    "search",
]


def measure(backbone: Mapping[str, Any], size: int, num_classes: int = 10) -> Cost:
    """Parameters, forward FLOPs and activation bytes (batch 1) of the built backbone at a square
    ``size``, counted on the module; the leaf layers' output shapes for the unchanged-rest check."""
    spec = dict(backbone)
    # On the meta device: shapes, parameter counts and FLOPs without allocating or computing
    # anything (the same counts as on the CPU, ~15x faster: a search counts thousands).
    try:
        with torch.device("meta"):
            model = create_backbone(num_classes=num_classes, **spec).eval()
    except (ValueError, TypeError) as err:
        raise SearchError(f"cannot build {spec.get('name')} at {size} px: {err}") from err
    layers: list[tuple[str, tuple[int, ...], int]] = []
    hooks = [
        module.register_forward_hook(
            lambda m, _, out, name=name: layers.append(
                (name, tuple(out.shape), sum(p.numel() for p in m.parameters()))
            )
        )
        for name, module in model.named_modules()
        if not list(module.children())
    ]
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(1, 3, size, size, device="meta"))
    except RuntimeError as err:
        raise SearchError(f"{spec.get('name')} does not run at {size} px: {err}") from err
    finally:
        for hook in hooks:
            hook.remove()
    activations = sum(4 * torch.Size(shape).numel() for _, shape, _ in layers)
    params = sum(p.numel() for p in model.parameters())
    return Cost(params, counter.get_total_flops(), activations, layers)


def unchanged_after(original: Cost, variant: Cost, modified: Sequence[str]) -> bool:
    """Whether every layer after the last modified one has the original's output shape and
    parameter count (the rest of the network is untouched)."""

    def tail(cost: Cost) -> list[tuple[str, tuple[int, ...], int]]:
        names = [name for name, _, _ in cost.layers]
        last = max((names.index(m) for m in modified if m in names), default=-1)
        return cost.layers[last + 1 :]

    return tail(original) == tail(variant)


def search(
    backbone: Mapping[str, Any],
    source: int,
    target: int,
    budget: str = "params",
    tolerance: float = 0.02,
    approaches: Sequence[str] = APPROACHES,
    top: int = 5,
) -> tuple[Cost, dict[str, list[Candidate] | str]]:
    """The original's cost at ``source`` and, per approach, the ``top`` counted candidates at
    ``target`` within ``tolerance`` of it on ``budget`` (closest first), or a sentence saying
    why there is none."""
    if budget not in BUDGETS:
        raise SearchError(f"--budget must be one of {BUDGETS}, got {budget!r}")
    unknown = [a for a in approaches if a not in APPROACHES]
    if unknown or not approaches:
        raise SearchError(f"--approach takes {','.join(APPROACHES)}, got {list(approaches)}")
    if not 1 <= source < target:
        raise SearchError(f"--to ({target}) must be larger than --from ({source}), both >= 1")
    if tolerance < 0:
        raise SearchError(f"--tolerance must be >= 0, got {tolerance}")
    lenet = backbone.get("name") == LENET
    base = dict(backbone, img_size=source) if lenet else dict(backbone)
    original = measure(base, source)
    generate = lenet_candidates if lenet else timm_candidates
    found: dict[str, list[Candidate]] = {a: [] for a in approaches}
    seen: set[tuple[Any, ...]] = set()
    for candidate in generate(base, source, target):
        key = (candidate.approach, *lenet_cost_key(candidate.backbone)) if lenet else None
        if candidate.approach in found and key not in seen:
            found[candidate.approach].append(candidate)
            if key is not None:
                seen.add(key)
    keys = KEYS if budget == "both" else (budget,)
    results: dict[str, list[Candidate] | str] = {}
    for approach, candidates in found.items():
        if not candidates:
            results[approach] = _no_geometry(approach, lenet, source, target)
            continue
        best: list[tuple[float, float, Candidate]] = []
        closest, counted = float("inf"), set()
        for candidate in candidates:
            try:
                cost = candidate.cost = measure(candidate.backbone, target)
            except SearchError:  # e.g. a stride that breaks a residual connection
                continue
            if (cost.params, cost.flops, cost.activation_bytes) in counted:
                continue  # costs the same as a simpler variant listed before
            counted.add((cost.params, cost.flops, cost.activation_bytes))
            gap = max(abs(getattr(cost, k) / getattr(original, k) - 1) for k in keys)
            # Ties (e.g. equal params) go to the one closest on the other measure too.
            overall = max(abs(getattr(cost, k) / getattr(original, k) - 1) for k in KEYS)
            closest = min(closest, gap)
            modified = (
                LENET_MODIFIED[approach] if lenet else tuple(candidate.backbone["conv_overrides"])
            )
            if gap <= tolerance and (approach == "I" or unchanged_after(original, cost, modified)):
                best.append((gap, overall, candidate))
        best.sort(key=lambda item: item[:2])
        results[approach] = [c for _, _, c in best[:top]] or (
            f"{len(candidates)} candidates, none within {tolerance:.1%} on {budget}; the closest "
            f"differs by {closest:.1%} (raise --tolerance or choose another --budget)"
        )
    return original, results


def _no_geometry(approach: str, lenet: bool, source: int, target: int) -> str:
    if not lenet and approach == "I":
        return (
            "not applicable to timm CNNs: they pool globally before the classifier, so their "
            "params do not grow with the resolution and the head holds no FLOPs to give back"
        )
    if not lenet and approach == "III":
        return "not applicable to timm CNNs: fewer stem filters would change the first block"
    between = (
        ""
        if lenet
        else (
            " (IV re-solves two adjacent convolutions: a layer between them, such as ResNet's "
            "max-pool, is not re-solved)"
        )
    )
    return (
        f"no integer kernel / stride / padding / pooling maps {target} px onto the maps of "
        f"{source} px{between}"
    )
