"""Candidate variants for ``hdvision resolution-search`` (:mod:`hdvision.tools.resolution_search`):
each approach's first-layer changes that map the target resolution onto the original's maps,
enumerated with the output-size formula, for the LeNet-style network and for timm CNNs."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hdvision.errors import UserError
from hdvision.models.backbone import create_backbone
from hdvision.models.lenet import conv_out

APPROACHES = ("I", "II", "III", "IV")
BUDGETS = ("params", "flops", "both")
LENET = "hdvision_lenet"
KEYS = ("params", "flops")


class SearchError(UserError):
    """A search that cannot run or finds nothing; the message says which and why."""


@dataclass
class Cost:
    params: int
    flops: int
    activation_bytes: int
    # (name, output shape, parameter count) of every leaf layer, in forward order.
    layers: list[tuple[str, tuple[int, ...], int]] = field(default_factory=list, repr=False)


@dataclass
class Candidate:
    approach: str
    changes: str
    backbone: dict[str, Any]  # the model.backbone spec that builds it
    cost: Cost | None = None


# -- LeNet --------------------------------------------------------------------------------------
@functools.cache
def _lenet_signature_defaults() -> dict[str, Any]:
    from inspect import signature

    from hdvision.models.lenet import LeNet

    params = signature(LeNet).parameters
    skip = ("unused", "num_classes")  # num_classes: the classifier's, set by whoever builds it
    return {k: p.default for k, p in params.items() if k not in skip}


def _lenet_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    # Called once per candidate (thousands per search): the signature is read once.
    return _lenet_signature_defaults() | dict(spec)


def _lenet_maps(a: Mapping[str, Any], size: int) -> tuple[int, int, int]:
    """(conv1 output side, conv2 input side, fc1 input side) of LeNet arguments at ``size``."""
    c1 = conv_out(size, a["k1"], a["s1"], a["p1"], a["d1"])
    pooled = conv_out(c1, a["extra_pool"], a["extra_pool"]) if a["extra_pool"] > 1 else c1
    c2_in = conv_out(pooled, 2, 2)
    fc = conv_out(conv_out(c2_in, a["k2"], a["s2"], a["p2"]), 2, 2)
    fc = conv_out(fc, a["head_pool"], a["head_pool"]) if a["head_pool"] > 1 else fc
    return c1, c2_in, fc


def lenet_cost_key(backbone: Mapping[str, Any]) -> tuple[int, ...]:
    """What a LeNet variant's params and FLOPs depend on: its layers' channels, kernels and
    output sides. Geometries with the same key (e.g. two paddings that give the same map) cost
    the same; the search counts the first, the simplest, of each."""
    a = _lenet_defaults(backbone)
    conv1, conv2_in, fc = _lenet_maps(a, a["img_size"])
    conv2 = conv_out(conv2_in, a["k2"], a["s2"], a["p2"])
    return (a["c1"], a["k1"], conv1, a["extra_pool"], a["k2"], conv2, fc, a["hidden"])


def lenet_candidates(base: Mapping[str, Any], source: int, target: int) -> Iterator[Candidate]:
    """Every geometrically valid variant of each approach (costs not yet counted)."""
    a = _lenet_defaults(base)
    c1_0, _, fc_0 = _lenet_maps(a, source)
    at = dict(a, img_size=target)

    def make(approach: str, changes: str, **kw: Any) -> Candidate:
        return Candidate(approach, changes, {"name": LENET, "weights": None, **at, **kw})

    fc_t = _lenet_maps(a, target)[2]
    for pool in range(2, fc_t + 1):  # I
        if conv_out(fc_t, pool, pool) == fc_0:
            for hidden in range(a["hidden"], 0, -1):
                yield make(
                    "I",
                    f"avg-pool {pool} before fc1, fc1 {hidden} units",
                    head_pool=pool,
                    hidden=hidden,
                )
    for s, d in itertools.product(range(1, 9), range(1, 9)):  # II
        for p in range(0, d * (a["k1"] - 1) + 1):
            if conv_out(target, a["k1"], s, p, d) == c1_0:
                yield make("II", f"conv1 stride {s}, dilation {d}, padding {p}", s1=s, d1=d, p1=p)
    for k, c, q in itertools.product(
        range(a["k1"] + 1, 4 * a["k1"]), range(1, a["c1"]), range(2, 9)
    ):  # III
        for p in sorted({0, (k - 1) // 2}):
            # conv1 then the new pool give conv1's original map: conv2's input is restored.
            if conv_out(conv_out(target, k, 1, p), q, q) == c1_0:
                yield make(
                    "III",
                    f"conv1 {c}x{k}x{k} padding {p}, new max-pool {q}",
                    k1=k,
                    c1=c,
                    p1=p,
                    s1=1,
                    d1=1,
                    extra_pool=q,
                )
    for k1, s1, k2, s2 in itertools.product((3, 5, 7, 9, 11), (1, 2, 3, 4), (3, 5, 7), (1, 2)):
        for p1, p2 in itertools.product(range(k1 // 2 + 1), range(k2 // 2 + 1)):  # IV
            trial = dict(a, k1=k1, s1=s1, p1=p1, d1=1, k2=k2, s2=s2, p2=p2)
            if (k2, s2, p2) == (a["k2"], a["s2"], a["p2"]):
                continue  # conv2 as it was: a conv1-only change, which is II's family
            if _lenet_maps(trial, target)[2] == fc_0:
                for c in range(1, 2 * a["c1"] + 1):
                    yield make(
                        "IV",
                        f"conv1 {c}x{k1}x{k1}/s{s1}/p{p1}, conv2 {k2}x{k2}/s{s2}/p{p2}",
                        k1=k1,
                        s1=s1,
                        p1=p1,
                        d1=1,
                        c1=c,
                        k2=k2,
                        s2=s2,
                        p2=p2,
                    )


# The layers each LeNet approach changes; everything after them must be the original's.
LENET_MODIFIED = {
    "I": ("head_pool", "fc1", "drop", "fc2"),
    "II": ("conv1",),
    "III": ("conv1", "extra_pool", "pool1", "conv2"),
    "IV": ("conv1", "extra_pool", "pool1", "conv2"),
}


# -- timm CNNs ----------------------------------------------------------------------------------
def timm_first_convs(base: Mapping[str, Any], size: int) -> list[tuple[str, nn.Conv2d, int]]:
    """The stem convolution and the next spatial (kernel > 1) convolution of a timm CNN, with
    their output sides at ``size``."""
    with torch.device("meta"):  # shapes only
        model = create_backbone(num_classes=10, **dict(base, weights=None)).eval()
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    spatial = [(n, m) for n, m in convs if m.kernel_size[0] > 1]
    if len(spatial) < 2 or convs[0][0] != spatial[0][0] or convs[0][1].in_channels != 3:
        raise SearchError(
            f"{base.get('name')}: cannot find a 3-channel stem convolution followed by a spatial "
            "convolution; resolution-search modifies LeNet-style networks and timm CNNs only"
        )
    sides: dict[str, int] = {}

    def record(name: str) -> Any:
        def hook(_module: nn.Module, inputs: Any, out: torch.Tensor) -> None:
            sides.setdefault(name, out.shape[-1])  # a hook that returns a value replaces out
            sides.setdefault(f"{name}:in", inputs[0].shape[-1])

        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in spatial[:2]]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, device="meta"))
    for hook in hooks:
        hook.remove()
    if sides[f"{spatial[1][0]}:in"] != sides[spatial[0][0]]:
        # Something between them (ResNet's max-pool) resizes the map: IV would need to re-solve
        # it too. Marked with side 0: II still applies, IV finds no geometry.
        sides[spatial[1][0]] = 0
    return [(n, m, sides[n]) for n, m in spatial[:2]]


def timm_candidates(base: Mapping[str, Any], source: int, target: int) -> Iterator[Candidate]:
    (stem_name, stem, stem_out), (next_name, nxt, next_out) = timm_first_convs(base, source)
    k = stem.kernel_size[0]

    def make(approach: str, changes: str, overrides: dict[str, dict[str, int]]) -> Candidate:
        return Candidate(approach, changes, {**base, "conv_overrides": overrides})

    for s, d in itertools.product(range(1, 9), range(1, 5)):  # II
        for p in range(0, d * (k - 1) + 1):
            if conv_out(target, k, s, p, d) == stem_out:
                geometry = {"kernel_size": k, "stride": s, "padding": p, "dilation": d}
                yield make(
                    "II",
                    f"{stem_name} stride {s}, dilation {d}, padding {p}",
                    {stem_name: geometry},
                )
    for k1, s1, k2, s2 in itertools.product((3, 5, 7), (1, 2, 3, 4), (3, 5, 7), (1, 2, 3)):
        for p1, p2 in itertools.product(range(k1 // 2 + 1), range(k2 // 2 + 1)):  # IV
            side = conv_out(conv_out(target, k1, s1, p1), k2, s2, p2)
            second = (k2, s2, p2) != (nxt.kernel_size[0], nxt.stride[0], _padding(nxt))
            if side == next_out and second:
                yield make(
                    "IV",
                    f"{stem_name} {k1}x{k1}/s{s1}/p{p1}, {next_name} {k2}x{k2}/s{s2}/p{p2}",
                    {
                        stem_name: {"kernel_size": k1, "stride": s1, "padding": p1},
                        next_name: {"kernel_size": k2, "stride": s2, "padding": p2},
                    },
                )


def _padding(conv: nn.Conv2d) -> int:
    """A convolution's symmetric padding (-1 for timm's dynamic 'same' padding)."""
    padding = conv.padding
    return int(padding[0]) if isinstance(padding, tuple) else -1
