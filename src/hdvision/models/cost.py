"""Model cost: parameters, forward FLOPs (torch's FlopCounterMode) and training memory per image,
split into stem and backbone."""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from hdvision.models.module import HDClassifier

log = logging.getLogger("hdvision")


def count_params(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def forward_flops(module: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass (a multiply-add counts 2), counted by torch."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return int(counter.get_total_flops())


def saved_activation_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd keeps for backward in one training forward (distinct tensors only).

    That is the memory a training step holds beyond weights and optimizer state; on CPU it is
    measured this way because there is no allocator peak counter like CUDA's.
    """
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x.requires_grad_(False))
    del out
    return sum(seen.values())


def cost_report(
    stem: nn.Module, backbone: nn.Module, input_size: Sequence[int], batch_size: int = 2
) -> dict[str, Any]:
    """Parameters, GFLOPs and training activation MB per image for ``stem`` then ``backbone``."""
    was_training = (stem.training, backbone.training)
    stem.train()
    backbone.train()
    x = torch.randn(batch_size, 3, *input_size, device=next(backbone.parameters()).device)
    with torch.no_grad():
        mid = stem(x)
    report: dict[str, Any] = {
        "input_size": list(input_size),
        "backbone_input": list(mid.shape[-2:]),
    }
    for name, module, inp in (("stem", stem, x), ("backbone", backbone, mid)):
        total, trainable = count_params(module)
        report[name] = {
            "params": total,
            "trainable_params": trainable,
            "gflops": forward_flops(module, inp) / batch_size / 1e9,
            "train_activation_mb": saved_activation_bytes(module, inp) / batch_size / 2**20,
        }
    report["total"] = {k: report["stem"][k] + report["backbone"][k] for k in report["stem"]}
    stem.train(was_training[0])
    backbone.train(was_training[1])
    return report


def format_cost_report(report: dict[str, Any]) -> str:
    lines = [
        f"Cost at input {report['input_size']} -> backbone {report['backbone_input']}:",
        f"{'part':<9}{'params':>12}{'trainable':>12}{'GFLOPs':>10}{'act. MB/img':>13}",
    ]
    for part in ("stem", "backbone", "total"):
        r = report[part]
        lines.append(
            f"{part:<9}{r['params']:>12,}{r['trainable_params']:>12,}"
            f"{r['gflops']:>10.3f}{r['train_activation_mb']:>13.1f}"
        )
    return "\n".join(lines)


def stem_input_size(model: HDClassifier, sample_size: Sequence[int]) -> list[int]:
    """The size an HDClassifier's stem sees: ``model.input_size`` if set (batches are upsampled
    on the device), else the data's ``sample_size``."""
    return list(model.hparams.get("input_size") or sample_size)


def model_cost_report(model: HDClassifier, sample_size: Sequence[int]) -> dict[str, Any]:
    """:func:`cost_report` of an HDClassifier at the size its stem sees."""
    return cost_report(model.stem, model.backbone, stem_input_size(model, sample_size))


def _peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    # CPU has no allocator peak counter: the process's peak resident set. VmHWM is this process's
    # own; ru_maxrss keeps the parent's peak across fork + exec, so a tool started from a big
    # process (a late test of the suite) would never see its own peak rise.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def measure_train_step(
    model: HDClassifier, input_size: Sequence[int], batch_size: int = 4, steps: int = 3
) -> dict[str, float]:
    """Measured training step (prepare input, forward, cross-entropy, backward, AdamW step):
    wall ms per image after one untimed warm-up step, and how far the step raised the peak
    memory, per image (CPU: the process's peak RSS, so run it before anything bigger). The model
    is left unchanged."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    device = next(model.parameters()).device
    images = torch.randint(0, 256, (batch_size, 3, *input_size), dtype=torch.uint8, device=device)
    labels = torch.zeros(batch_size, dtype=torch.long, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    peak_before = _peak_memory_bytes(device)
    elapsed = 0.0
    for step in range(steps + 1):
        start = time.perf_counter()
        loss = F.cross_entropy(model(model.prepare_input(images)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step > 0:  # the first step pays one-off allocation and kernel selection
            elapsed += time.perf_counter() - start
    # VmHWM is only folded with the current RSS when read, so a later reading can come out a few
    # KiB lower than an earlier one after pages were given back: no rise is 0, not negative.
    peak_rise = max(0, _peak_memory_bytes(device) - peak_before)
    for p in params:
        p.grad = None
    model.load_state_dict(state)
    model.train(was_training)
    return {
        "ms_per_image": 1000 * elapsed / (steps * batch_size),
        "peak_mb_per_image": peak_rise / batch_size / 2**20,
    }


def measure_forward(
    model: HDClassifier,
    input_size: Sequence[int],
    batch_size: int = 16,
    steps: int = 3,
    train: bool = False,
) -> float:
    """Wall ms per image of a forward pass without gradient (input preparation included) in
    evaluation mode, or with ``train=True`` in training mode (the passes that recompute BatchNorm
    statistics), after one untimed round. The model is left as it was, buffers included."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train(train)
    device = next(model.parameters()).device
    images = torch.randint(0, 256, (batch_size, 3, *input_size), dtype=torch.uint8, device=device)
    elapsed = 0.0
    with torch.no_grad():
        for step in range(steps + 1):
            start = time.perf_counter()
            model(model.prepare_input(images))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step > 0:  # the first round pays one-off allocation and kernel selection
                elapsed += time.perf_counter() - start
    model.load_state_dict(state)
    model.train(was_training)
    return 1000 * elapsed / (steps * batch_size)


def measure_inference_parts(
    model: HDClassifier, input_size: Sequence[int], batch_size: int = 16, steps: int = 3
) -> dict[str, float]:
    """Eval-mode ms per image of each part of a prediction: input preparation (uint8 → normalised
    float), the stem and the backbone (with its head), timed apart after one untimed round; which
    part to make cheaper. The model is left in the mode it was in."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    images = torch.randint(0, 256, (batch_size, 3, *input_size), dtype=torch.uint8, device=device)
    totals = {"prepare_ms": 0.0, "stem_ms": 0.0, "backbone_ms": 0.0}

    def timed(name: str, step: int, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step > 0:  # the first round pays one-off allocation and kernel selection
            totals[name] += time.perf_counter() - start
        return out

    with torch.no_grad():
        for step in range(steps + 1):
            x = timed("prepare_ms", step, model.prepare_input, images)
            x = timed("stem_ms", step, model.stem_output, x)
            timed("backbone_ms", step, model.backbone, x)
    model.train(was_training)
    return {k: 1000 * v / (steps * batch_size) for k, v in totals.items()}


def log_cost_report(
    model: HDClassifier,
    input_size: Sequence[int],
    loggers: Sequence[Any],
    output_dir: str | Path | None = None,
) -> dict[str, Any]:
    report = model_cost_report(model, input_size)
    log.info("\n%s", format_cost_report(report))
    flat = {
        f"cost/{part}_{k}": v
        for part in ("stem", "backbone", "total")
        for k, v in report[part].items()
    }
    for logger in loggers:
        logger.log_metrics(flat, step=0)
    if output_dir is not None:
        Path(output_dir, "cost.json").write_text(json.dumps(report, indent=2))
    return report
