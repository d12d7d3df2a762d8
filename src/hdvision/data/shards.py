"""Sharded data sets, streamed: ``data=shards data.source.uri=<folder | http(s)://... | s3://...>``.

Each split is a LitData optimized data set (``<uri>/<split>/index.json`` + ``chunk-*.bin``) whose
items hold an image's encoded bytes as stored, its label, its name and its position; the files are
written by ``hdvision shard`` (:mod:`hdvision.data.shard_writer`). Items go through the same decode
(reduced-scale JPEG included) and Albumentations path as every other source.

LitData, not WebDataset or a tar reader of our own (docs/results/shards.md): its
``StreamingDataLoader`` has a ``state_dict`` that Lightning saves in checkpoints (exact mid-epoch
resume), it splits chunks over DDP ranks and loader workers with equal counts (an exact epoch
length), and it ships S3/GCS/Azure clients. HTTP(S) is one small downloader registered with its
``register_downloader`` hook.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import requests
import torch
from litdata import StreamingDataset
from litdata.streaming import downloader as litdata_downloader
from litdata.streaming.downloader import Downloader, get_downloader, register_downloader
from litdata.streaming.resolver import Dir
from litdata.streaming.sampler import ChunkedIndex

from hdvision.data.decode import BadImageError, DecodeSettings
from hdvision.data.listing import DataSourceError, SampleList

META_FILE = "hdvision_shards.json"
SHARD_FORMAT = 1
REMOTE_SCHEMES = ("http://", "https://", "s3://")


class HTTPDownloader(Downloader):
    """Chunks and index files over plain HTTP(S) GETs (a web server, a CDN, a presigned bucket)."""

    def download_file(self, remote_filepath: str, local_filepath: str) -> None:
        if os.path.exists(local_filepath):
            return
        os.makedirs(os.path.dirname(local_filepath) or ".", exist_ok=True)
        tmp = self._temp_download_path(local_filepath)
        timeout = float(self._storage_options.get("timeout", 60))
        try:
            with requests.get(remote_filepath, stream=True, timeout=timeout) as response:
                if response.status_code == 404:
                    raise FileNotFoundError(f"{remote_filepath}: HTTP 404 not found")
                response.raise_for_status()
                with open(tmp, "wb") as f:
                    for block in response.iter_content(1 << 20):
                        f.write(block)
            expected = self._expected_bytes(remote_filepath)
            if expected is not None and os.path.getsize(tmp) != expected:
                # LitData would wait for the rest of a short chunk forever.
                raise OSError(
                    f"shard {remote_filepath} is truncated or replaced ({os.path.getsize(tmp):,} "
                    f"bytes, its index says {expected:,}); upload it again or rewrite the shards"
                )
            self._publish_file(tmp, local_filepath)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def _expected_bytes(self, remote_filepath: str) -> int | None:
        name = remote_filepath.rsplit("/", 1)[-1]
        sizes = [c.get("chunk_bytes") for c in self._chunks if c.get("filename") == name]
        return int(sizes[0]) if sizes and sizes[0] is not None else None

    async def adownload_file(self, remote_filepath: str, local_filepath: str) -> None:
        await asyncio.to_thread(self.download_file, remote_filepath, local_filepath)
        self._notify_published(local_filepath)


for _scheme in ("http://", "https://"):
    register_downloader(_scheme, HTTPDownloader, overwrite=True)


def _allow_plain_http_endpoint(storage_options: dict[str, Any]) -> None:
    # LitData's S3 chunk reads go through obstore, which refuses an http:// endpoint unless told
    # (boto3 does not): S3-compatible servers on a private network (MinIO, moto) are often plain
    # HTTP. Only an endpoint the user configured as http:// turns this on.
    if str(storage_options.get("endpoint_url", "")).startswith("http://"):
        litdata_downloader._OBSTORE_CLIENT_OPTIONS["allow_http"] = "true"  # type: ignore[index]


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
        if self.augment is not None:
            gen = torch.Generator().manual_seed(
                (self.augment_seed * 100_003 + self.current_epoch) * 1_000_003 + item["index"]
            )
            self.augment.set_random_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            image = self.augment(image=image)["image"]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()
        return {"image": tensor, "label": item["label"], "index": item["index"], "skipped": []}

    def members(self) -> Iterator[tuple[str, int, bytes]]:
        """Every stored member in order as (name, label, encoded bytes), for ``check-data``."""
        for i in range(len(self)):
            item = self.raw(i)
            yield self.member_name(i, item["key"]), item["label"], item["image"]


@dataclass(frozen=True)
class ShardMember:
    """One stored image of a shard set, for random access (``hdvision predict`` on shards)."""

    uri: str
    split: str
    index: int


_READERS: dict[tuple[str, str], ShardDataset] = {}


def shard_members(
    target: str, cache_dir: str = "data/shard_cache", limit: int | None = None
) -> list[tuple[ShardMember, str, str]]:
    """Every member (the first ``limit``) of a shard set (``uri``) or of one split
    (``uri/<split>``) with its name and class name, in stored order; credentials and endpoints
    come from the usual AWS_* variables."""
    target = target.rstrip("/")
    uri, split = target, None
    base, _, last = target.rpartition("/")
    if last in ("train", "val", "test") and _holds_metadata(base):
        uri, split = base, last
    meta = read_metadata(uri, {}, cache_dir)
    names = meta["class_names"]
    members: list[tuple[ShardMember, str, str]] = []
    for name in [split] if split else list(meta["splits"]):
        dataset = _reader(uri, name, cache_dir)
        for i in range(len(dataset)):
            if limit is not None and len(members) >= limit:
                return members  # the shards after the first ones are not downloaded
            item = dataset.raw(i)
            member_name = dataset.member_name(i, item["key"])
            members.append((ShardMember(uri, name, i), member_name, names[item["label"]]))
    return members


def _holds_metadata(uri: str) -> bool:
    if uri.startswith(REMOTE_SCHEMES):
        return True  # the caller's read_metadata says so, in one line, when it does not
    return (Path(uri) / META_FILE).is_file()


def _reader(uri: str, split: str, cache_dir: str = "data/shard_cache") -> ShardDataset:
    """One unshuffled reader per (shard set, split) and process (loader workers open their own)."""
    key = (uri, split)
    if key not in _READERS:
        source = ShardSource(uri, cache_dir=cache_dir)
        dataset = source.stream(split, DecodeSettings(), None, "raise", False, 0)
        if dataset is None:
            raise DataSourceError(f"{uri} has no {split} split ({list(source.metadata['splits'])})")
        _READERS[key] = dataset
    return _READERS[key]


def read_member(member: ShardMember) -> tuple[str, bytes]:
    """A member's name (shard and key, for errors and CSV rows) and its encoded bytes."""
    dataset = _reader(member.uri, member.split)
    item = dataset.raw(member.index)
    return dataset.member_name(member.index, item["key"]), item["image"]


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
        _allow_plain_http_endpoint(self.storage_options)

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
