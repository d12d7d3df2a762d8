"""Conditions as test markers (after lightning-hydra-template's ``tests/helpers/run_if.py``): a
test that needs CUDA, or needs its absence, says so and is skipped elsewhere, so that the suite
passes on a CPU machine and on a GPU machine alike."""

from __future__ import annotations

import pytest
import torch


def RunIf(  # noqa: N802
    min_gpus: int = 0, no_cuda: bool = False, cxx: bool = False
) -> pytest.MarkDecorator:
    """``@RunIf(min_gpus=1)``: needs that many CUDA devices; ``@RunIf(no_cuda=True)``: checks
    behaviour on a machine without CUDA; ``@RunIf(cxx=True)``: needs a C++ compiler (for
    ``torch.compile`` on CPU)."""
    from hdvision.inference.compiled import compiler_missing

    reasons = []
    if cxx and (missing := compiler_missing()):
        reasons.append(missing)
    if min_gpus and torch.cuda.device_count() < min_gpus:
        reasons.append(f"needs {min_gpus} CUDA device(s)")
    if no_cuda and torch.cuda.is_available():
        reasons.append("checks the behaviour without CUDA")
    return pytest.mark.skipif(bool(reasons), reason="; ".join(reasons) or "runs here")
