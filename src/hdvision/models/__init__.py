"""Models: a learned stem (``hdvision.models.stems``) in front of any timm backbone, as one
LightningModule (:class:`HDClassifier`); checkpoints, cost counting, schedules.

Importing the package registers hdvision's own model families with timm (``hdvision_lenet``,
``hdvision_patch_select``, ``hdvision_detail_windows``), the way ``timm/models/__init__.py``
imports its families: every backbone name resolves wherever a model is created. Configs name
classes by these short paths (``_target_: hdvision.models.HDClassifier``); the LightningModule is
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hdvision.models import detail_windows, lenet, patch_select  # noqa: F401  (register with timm)

if TYPE_CHECKING:
    from hdvision.models.module import HDClassifier as HDClassifier
    from hdvision.models.schedules import one_cycle as one_cycle
    from hdvision.models.schedules import reduce_on_plateau as reduce_on_plateau
    from hdvision.models.schedules import warmup_cosine as warmup_cosine
    from hdvision.models.schedules import warmup_cosine_restarts as warmup_cosine_restarts

_EXPORTS = {
    "HDClassifier": "module",
    "one_cycle": "schedules",
    "reduce_on_plateau": "schedules",
    "warmup_cosine": "schedules",
    "warmup_cosine_restarts": "schedules",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
