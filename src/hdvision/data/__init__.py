"""Images from disk or shards to uint8 batches: sources list (or stream) samples, the decoder
reads them at reduced scale, Albumentations augments, one LightningDataModule batches them.

Configs name these by their short paths (``_target_: hdvision.data.FolderSource``), so moving a
file inside the package does not break an experiment file. They are imported on first use: a
command that needs only the decoder does not pay for Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hdvision.data.datamodule import HDImageDataModule as HDImageDataModule
    from hdvision.data.decode import BadImageError as BadImageError
    from hdvision.data.decode import DecodeSettings as DecodeSettings
    from hdvision.data.decode import decode_image as decode_image
    from hdvision.data.listing import SPLITS as SPLITS
    from hdvision.data.listing import DataSourceError as DataSourceError
    from hdvision.data.listing import SampleList as SampleList
    from hdvision.data.shards import ShardSource as ShardSource
    from hdvision.data.sources import DataSource as DataSource
    from hdvision.data.sources import FolderSource as FolderSource
    from hdvision.data.sources import HDDigitsSource as HDDigitsSource
    from hdvision.data.sources import ManifestSource as ManifestSource
    from hdvision.data.sources import MNISTDigitsSource as MNISTDigitsSource

_EXPORTS = {
    "HDImageDataModule": "datamodule",
    "BadImageError": "decode",
    "DecodeSettings": "decode",
    "decode_image": "decode",
    "SPLITS": "listing",
    "DataSourceError": "listing",
    "SampleList": "listing",
    "DataSource": "sources",
    "FolderSource": "sources",
    "HDDigitsSource": "sources",
    "ManifestSource": "sources",
    "MNISTDigitsSource": "sources",
    "ShardSource": "shards",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
