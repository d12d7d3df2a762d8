"""A checkpoint of a model derived from a trained one (pruned, fine-tuned with int8 simulated):
what ``prune`` and ``qat`` write, in one place."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch


def save_derived_checkpoint(
    source: dict[str, Any],
    out: str | Path,
    state_dict: dict[str, torch.Tensor],
    hyper_parameters: dict[str, Any],
    **records: Any,
) -> None:
    """Write ``state_dict`` and ``hyper_parameters`` with ``source``'s loop counters and
    Lightning version (no optimizer or loop state), plus ``records`` (plain data saying how the
    weights were made), to ``out`` through ``AtomicCheckpointIO`` (written beside, renamed into
    place)."""
    # Imported here: it brings Lightning, which `hdvision prune --help` does not need.
    from hdvision.trainer.checkpoint_io import AtomicCheckpointIO

    written: dict[str, Any] = {
        key: copy.deepcopy(source[key])
        for key in ("epoch", "global_step", "pytorch-lightning_version")
        if key in source
    }
    written["state_dict"] = {k: v.detach().cpu() for k, v in state_dict.items()}
    written["hyper_parameters"] = hyper_parameters
    written.update(records)
    AtomicCheckpointIO().save_checkpoint(written, out)
