"""The stem registry: names to classes. Imports no stem (timm's ``_registry.py`` is the model);
``hdvision.models.stems`` imports the families, which register themselves."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

STEMS: dict[str, Callable[..., nn.Module]] = {}


def register_stem(name: str) -> Callable:
    """Class decorator: ``create_stem(name, ...)`` builds it. A name is registered once."""

    def wrap(cls: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in STEMS and STEMS[name] is not cls:
            raise ValueError(f"stem {name!r} is already registered by {STEMS[name].__module__}")
        STEMS[name] = cls
        return cls

    return wrap


def create_stem(name: str, out_size: Sequence[int] | None, **kwargs) -> nn.Module:
    """Build a registered stem by name (``resize``, ``strided``, ``space_to_depth``, ...)."""
    if name not in STEMS:
        raise ValueError(f"unknown stem {name!r}; registered stems: {sorted(STEMS)}")
    return STEMS[name](out_size=out_size, **kwargs)
