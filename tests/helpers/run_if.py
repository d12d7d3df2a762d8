"""Conditions as test markers (after lightning-hydra-template's ``tests/helpers/run_if.py``): a
test that needs CUDA, or needs its absence, says so and is skipped elsewhere, so that the suite
passes on a CPU machine and on a GPU machine alike."""

from __future__ import annotations

import pytest
import torch


def RunIf(min_gpus: int = 0, no_cuda: bool = False) -> pytest.MarkDecorator:  # noqa: N802
    """``@RunIf(min_gpus=1)``: needs that many CUDA devices; ``@RunIf(no_cuda=True)``: checks
    behaviour on a machine without CUDA."""
    reasons = []
    if min_gpus and torch.cuda.device_count() < min_gpus:
        reasons.append(f"needs {min_gpus} CUDA device(s)")
    if no_cuda and torch.cuda.is_available():
        reasons.append("checks the behaviour without CUDA")
    return pytest.mark.skipif(bool(reasons), reason="; ".join(reasons) or "runs here")
