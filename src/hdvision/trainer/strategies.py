"""FSDP for stem → backbone: which modules become FSDP units (and get activation checkpointing)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from pytorch_lightning.strategies import FSDPStrategy
from torch import nn


def import_class(path: str) -> type[nn.Module]:
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"cannot import block class {path!r} for FSDP wrapping") from error
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"{path!r} is not an nn.Module class")
    return cls


def fsdp_strategy(
    wrap_blocks: Sequence[str], activation_checkpointing: bool = True, **kwargs: Any
) -> FSDPStrategy:
    """Lightning's FSDPStrategy with every module of the ``wrap_blocks`` classes (import paths,
    e.g. timm's EfficientNet blocks) as its own FSDP unit, and activation checkpointing on them.

    Lightning turns a *set* of classes into a ``ModuleWrapPolicy``; a list from YAML would be
    passed through unchanged and fail on the GPU, hence this factory.
    """
    blocks = {import_class(path) for path in wrap_blocks}
    checkpointed = set(blocks) if activation_checkpointing else None
    return FSDPStrategy(
        auto_wrap_policy=blocks, activation_checkpointing_policy=checkpointed, **kwargs
    )
