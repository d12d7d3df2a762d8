"""Sharded data sets, streamed: ``data=shards data.source.uri=<folder | http(s)://... | s3://...>``.

Each split is a LitData optimized data set (``<uri>/<split>/index.json`` + ``chunk-*.bin``) whose
items hold an image's encoded bytes as stored, its label, its name and its position; the files are
written by ``hdvision shard`` (:mod:`hdvision.data.shard_writer`). Items go through the same decode
(reduced-scale JPEG included) and Albumentations path as every other source.

LitData, not WebDataset or a tar reader of our own (docs/results/shards.md): its
``StreamingDataLoader`` has a ``state_dict`` that Lightning saves in checkpoints (exact mid-epoch
resume), it splits chunks over DDP ranks and loader workers with equal counts (an exact epoch
length), and it ships S3/GCS/Azure clients; HTTP(S) is added in :mod:`shard_transport`. Random
access to single members (predict) is in :mod:`shard_members`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import requests
import torch
from litdata import StreamingDataset
from litdata.streaming.downloader import get_downloader
from litdata.streaming.resolver import Dir
from litdata.streaming.sampler import ChunkedIndex

from hdvision.data.dataset import augment_to_tensor
from hdvision.data.decode import BadImageError, DecodeSettings
from hdvision.data.listing import DataSourceError, SampleList
from hdvision.data.shard_transport import allow_plain_http_endpoint

META_FILE = "hdvision_shards.json"
SHARD_FORMAT = 1
REMOTE_SCHEMES = ("http://", "https://", "s3://")


def split_location(uri: str, split: str) -> str | Dir:
    """What LitData reads a split from: a local folder, or a URL it downloads chunks from."""
    url = f"{uri.rstrip('/')}/{split}"
    # LitData resolves s3:// itself; http(s):// must be marked as a URL, not a relative path.
    return Dir(path=None, url=url) if uri.startswith(("http://", "https://")) else url


def read_metadata(uri: str, storage_options: dict[str, Any], cache_dir: str | Path) -> dict:
    """The shard set's ``hdvision_shards.json`` (class names, splits, source digest), read fresh
    from the folder or URL; one clear line when it is missing or unreadable."""
    if not uri:
        raise DataSourceError(
            "data.source.uri is not set (a shard folder, http(s):// or s3:// URL)"
        )
    try:
        if uri.startswith(REMOTE_SCHEMES):
            local = Path(cache_dir) / hashlib.sha256(uri.encode()).hexdigest()[:16] / META_FILE
            local.unlink(missing_ok=True)  # shards rewritten in place: never trust an old copy
            fetch = get_downloader(uri, str(local.parent), [], storage_options)
            fetch.download_file(f"{uri.rstrip('/')}/{META_FILE}", str(local))
        else:
            local = Path(uri) / META_FILE
        meta = json.loads(local.read_text())
    except FileNotFoundError:
        raise DataSourceError(
            f"{uri} holds no hdvision shards ({META_FILE} not found); write them with "
            "`hdvision shard <data overrides> --out DIR` and copy DIR there"
        ) from None
    except (OSError, ValueError, requests.RequestException) as err:
        raise DataSourceError(f"{uri}/{META_FILE} cannot be read: {err}") from err
    except Exception as err:  # the object-store clients raise their own types
        raise DataSourceError(
            f"{uri}/{META_FILE} cannot be read: {type(err).__name__}: {err}"
        ) from err
    if meta.get("format") != SHARD_FORMAT:
        raise DataSourceError(
            f"{uri}/{META_FILE} has shard format {meta.get('format')!r}, this hdvision reads "
            f"{SHARD_FORMAT}; rewrite the shards with this version's `hdvision shard`"
        )
    return meta


def check_local_chunks(folder: Path) -> None:
    """A truncated or missing chunk of a local shard set, named before LitData waits on it."""
    index = json.loads((folder / "index.json").read_text())
    for chunk in index["chunks"]:
        path = folder / chunk["filename"]
        size = path.stat().st_size if path.is_file() else None
        if size != chunk["chunk_bytes"]:
            found = "missing" if size is None else f"{size:,} bytes"
            raise DataSourceError(
                f"shard {path} is truncated or replaced ({found}, its index says "
                f"{chunk['chunk_bytes']:,}); copy it again or rewrite the shards with "
                "`hdvision shard`"
            )


class ShardDataset(StreamingDataset):
    """One split's shards as decoded, augmented items (dicts as :class:`ImageDataset`'s, plus
    ``index``: the sample's position in the split).

    A sample's augmentation seed depends on (seed, epoch, its position in the split) only, so the
    same sample is augmented alike whatever rank or loader worker reads it.
    """

    def __init__(
        self,
        location: str | Dir,
        name: str,
        decode: DecodeSettings,
        transform: A.Compose | None,
        on_bad_image: str,
        shuffle: bool,
        seed: int,
        cache_dir: str,
        storage_options: dict[str, Any],
        max_cache_size: str | None = None,
    ) -> None:
        super().__init__(
            location,
            cache_dir=cache_dir,
            shuffle=shuffle,
            seed=seed,
            storage_options=storage_options,
            max_cache_size=max_cache_size,
            # One item deserialised at a time: "auto" decodes windows of rows for bytes+int
            # items, and a shuffled epoch reads ~20 rows per item it uses (0.4 ms per image).
            batch_decode=0,
        )
        self.name, self.decode, self.augment = name, decode, transform
        self.on_bad_image, self.augment_seed = on_bad_image, seed

    def member_name(self, index: ChunkedIndex | int, key: str) -> str:
        """``<uri>/<split>/<shard file>: <key>``: where a bad member is, to copy or rewrite."""
        if isinstance(index, ChunkedIndex):
            chunk = index.chunk_index
        else:  # a position in the split: count through the shards' sizes
            sizes = np.cumsum([end - start for start, end in self.region_of_interest])
            chunk = int(np.searchsorted(sizes, index, side="right"))
        files = self.subsampled_files
        return f"{self.name}/{files[chunk] if chunk < len(files) else '?'}: {key}"

    def raw(self, index: ChunkedIndex | int) -> dict[str, Any]:
        """The stored item: encoded ``image`` bytes, ``label``, ``key``, ``index``."""
        return super().__getitem__(index)

    def __getitem__(self, index: Any) -> dict[str, Any]:
        item = self.raw(index)
        name = self.member_name(index, item["key"])
        try:
            image = self.decode.decode_bytes(item["image"], name)
        except BadImageError:
            if self.on_bad_image == "raise":
                raise
            return {
                "image": None,
                "label": item["label"],
                "index": item["index"],
                "skipped": [name],
            }
        gen = torch.Generator().manual_seed(
            (self.augment_seed * 100_003 + self.current_epoch) * 1_000_003 + item["index"]
        )
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        tensor = augment_to_tensor(image, self.augment, seed)
        return {"image": tensor, "label": item["label"], "index": item["index"], "skipped": []}

    def members(self) -> Iterator[tuple[str, int, bytes]]:
        """Every stored member in order as (name, label, encoded bytes), for ``check-data``."""
        for i in range(len(self)):
            item = self.raw(i)
            yield self.member_name(i, item["key"]), item["label"], item["image"]


def collate_shard_samples(items: list[dict]) -> dict:
    """Stack the decoded items (``index``: their positions in the split, to trace what a rank
    read); a bad member under ``on_bad_image=skip`` is left out of its batch
    (a stream has no random access to replace it) and named in ``skipped``."""
    good = [it for it in items if it["image"] is not None]
    skipped = [p for it in items for p in it["skipped"]]
    if not good:
        raise BadImageError(
            skipped[0], "every member of this batch is bad; run `hdvision check-data`"
        )
    return {
        "image": torch.stack([it["image"] for it in good]),
        "label": torch.tensor([it["label"] for it in good], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in good], dtype=torch.long),
        "skipped": skipped,
    }


class ShardSource:
    """Shards written by ``hdvision shard``: a folder, ``http(s)://`` or ``s3://`` URI holding
    ``hdvision_shards.json`` and one LitData data set per split. ``storage_options`` go to the
    object-store client (e.g. ``endpoint_url`` for an S3-compatible server); chunks are cached
    under ``cache_dir`` (``max_cache_size`` at most)."""

    def __init__(
        self,
        uri: str,
        storage_options: dict[str, Any] | None = None,
        cache_dir: str = "data/shard_cache",
        max_cache_size: str | None = "50GB",
    ) -> None:
        self.uri = str(uri or "").rstrip("/")
        # Unset options (null in the config) are left to the client's own defaults.
        self.storage_options = {k: v for k, v in (storage_options or {}).items() if v is not None}
        self.cache_dir, self.max_cache_size = str(cache_dir), max_cache_size
        self._meta: dict | None = None
        allow_plain_http_endpoint(self.storage_options)

    def __repr__(self) -> str:
        return f"ShardSource({self.uri})"

    @property
    def metadata(self) -> dict:
        if self._meta is None:
            self._meta = read_metadata(self.uri, self.storage_options, self.cache_dir)
        return self._meta

    def prepare(self) -> None:
        if not self.uri.startswith(REMOTE_SCHEMES):
            for split in self.metadata["splits"]:
                check_local_chunks(Path(self.uri) / split)

    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])

    def training_data(self) -> str | None:
        """The train split's URI: checkpoints record it, and export / quantize calibrate on it."""
        if "train" not in self.metadata["splits"]:
            return None
        base = self.uri if self.uri.startswith(REMOTE_SCHEMES) else str(Path(self.uri).resolve())
        return f"{base}/train"

    def splits(self, class_names: Sequence[str]) -> dict[str, SampleList]:
        raise DataSourceError(
            f"{self!r} is streamed, it has no file list; use it through the datamodule "
            "(data=shards), or list the original images instead"
        )

    def stream(
        self,
        split: str,
        decode: DecodeSettings,
        transform: A.Compose | None,
        on_bad_image: str,
        shuffle: bool,
        seed: int,
    ) -> ShardDataset | None:
        """One split as a :class:`ShardDataset`, or None when the shards have no such split."""
        if split not in self.metadata["splits"]:
            return None
        return ShardDataset(
            split_location(self.uri, split),
            f"{self.uri}/{split}",
            decode,
            transform,
            on_bad_image,
            shuffle,
            seed,
            self.cache_dir,
            self.storage_options,
            self.max_cache_size,
        )
