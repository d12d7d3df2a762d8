"""Random access to single shard members (``hdvision predict`` and calibration on a shard set):
which members a URI holds, and one member's bytes, read through a per-process reader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hdvision.data.decode import DecodeSettings
from hdvision.data.listing import SPLITS, DataSourceError
from hdvision.data.shards import META_FILE, REMOTE_SCHEMES, ShardDataset, ShardSource, read_metadata


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
    if last in SPLITS and _holds_metadata(base):
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


def is_shard_set(item: str) -> bool:
    """A shard set or one of its splits: a URL, or a folder holding ``hdvision_shards.json``
    (itself or its parent)."""
    path = Path(item)
    return _holds_metadata(item) or (path.name in SPLITS and _holds_metadata(str(path.parent)))


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
