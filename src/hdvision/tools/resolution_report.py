"""The table ``hdvision resolution-search`` prints, and its candidates as Hydra experiment files
that ``train.py`` trains (one multirun over all of them)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hdvision.tools.resolution_search import LENET, Cost


def _rel(value: int, reference: int) -> str:
    return f"{100 * (value / reference - 1):+.1f}%"


def format_results(
    name: str, source: int, target: int, original: Cost, results: Mapping[str, Any]
) -> str:
    lines = [
        f"{name}: {source} px -> {target} px",
        f"{'approach':<9}{'params':>11}{'Δ':>9}{'MFLOPs':>10}{'Δ':>9}{'act. KB':>9}  changes",
        f"{'original':<9}{original.params:>11,}{'':>9}{original.flops / 1e6:>10.3f}{'':>9}"
        f"{original.activation_bytes / 1024:>9.1f}  at {source} px",
    ]
    for approach, found in results.items():
        if isinstance(found, str):
            lines.append(f"{approach:<9}{found}")
            continue
        for candidate in found:
            cost = candidate.cost
            assert cost is not None
            lines.append(
                f"{approach:<9}{cost.params:>11,}{_rel(cost.params, original.params):>9}"
                f"{cost.flops / 1e6:>10.3f}{_rel(cost.flops, original.flops):>9}"
                f"{cost.activation_bytes / 1024:>9.1f}  {candidate.changes}"
            )
    return "\n".join(lines)


def write_experiment(
    folder: str | Path,
    name: str,
    comment: str,
    backbone: Mapping[str, Any],
    size: int,
    base_experiment: str | None = None,
) -> str:
    """``<folder>/experiment/<name>.yaml``: ``base_experiment`` (for the LeNet: ``lenet_mnist``)
    with this backbone at ``size`` px; returns ``name``."""
    lenet = backbone["name"] == LENET
    base = base_experiment or ("lenet_mnist" if lenet else None)
    body: dict[str, Any] = {"defaults": [base] if base else [], "tags": ["resolution_search"]}
    if lenet:
        body["data"] = {"image_size": [size, size]}
        body["model"] = {"backbone": dict(backbone, img_size=size)}
    else:
        body["model"] = {"backbone_input": [size, size], "backbone": dict(backbone)}
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=None)
    out = Path(folder) / "experiment"
    out.mkdir(parents=True, exist_ok=True)
    header = f"# @package _global_\n# hdvision resolution-search: {comment}\n"
    (out / f"{name}.yaml").write_text(header + text)
    return name


def write_experiments(
    folder: str | Path,
    backbone: Mapping[str, Any],
    source: int,
    target: int,
    results: Mapping[str, Any],
    base_experiment: str | None = None,
    prefix: str = "res",
    originals: bool = True,
) -> list[str]:
    """The original at both resolutions (unless ``originals`` is false) and every candidate as
    :func:`write_experiment` files named ``<prefix>_...``; returns the experiment names (for
    ``-m experiment=a,b,...``)."""
    names = []
    for size in (source, target) if originals else ():
        names.append(
            write_experiment(
                folder,
                f"{prefix}_original_{size}",
                f"the original network at {size} px",
                backbone,
                size,
                base_experiment,
            )
        )
    for approach, found in results.items():
        for i, candidate in enumerate([] if isinstance(found, str) else found):
            comment = f"approach {approach} at {target} px (budget of {source} px): "
            names.append(
                write_experiment(
                    folder,
                    f"{prefix}_{approach}_{i}_{target}",
                    comment + candidate.changes,
                    candidate.backbone,
                    target,
                    base_experiment,
                )
            )
    return names
