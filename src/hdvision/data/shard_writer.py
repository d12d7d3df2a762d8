"""``hdvision shard``: any listed data set → one LitData data set per split, read back by
:class:`hdvision.data.shards.ShardSource`.

Each image's bytes are stored as they are on disk (no re-encode: a JPEG still decodes at reduced
scale, and the shards are no larger than the files). The whole set is written in a hidden folder
beside ``out`` and renamed into place last, so a killed run never leaves shards that look
complete; ``hdvision_shards.json`` records the classes and a digest of what was listed, and a
second run over the same data finds it done instead of writing again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from litdata.streaming.writer import BinaryWriter

from hdvision.data.listing import DataSourceError, SampleList
from hdvision.data.shards import META_FILE, SHARD_FORMAT

Progress = Callable[[str, int, int], None]


def source_digest(splits: Mapping[str, SampleList], class_names: Sequence[str]) -> str:
    """What identifies a data set here: classes, and each split's member names, labels and sizes."""
    digest = hashlib.sha256(json.dumps(list(class_names)).encode())
    for split in sorted(splits):
        for path, label in splits[split].samples:
            digest.update(f"{split}\0{path}\0{label}\0{os.path.getsize(path)}\n".encode())
    return digest.hexdigest()


def member_keys(paths: Sequence[str]) -> list[str]:
    """Each file's name relative to the files' common folder: short, and unique as paths are."""
    if not paths:
        return []
    root = os.path.commonpath([os.path.abspath(p) for p in paths])
    if len(paths) == 1:
        root = os.path.dirname(root)
    return [os.path.relpath(os.path.abspath(p), root) for p in paths]


def existing_digest(out: Path) -> str | None:
    """The digest of the shard set already at ``out``, or None when there is none; refuses a
    folder that holds something else."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise DataSourceError(f"--out {out} is a file; choose a folder")
    meta = out / META_FILE
    if not meta.is_file():
        if any(out.iterdir()):
            raise DataSourceError(
                f"--out {out} is not empty and holds no hdvision shards; "
                "choose an empty or new folder"
            )
        return None
    return str(json.loads(meta.read_text()).get("source_digest"))


def write_shards(
    splits: Mapping[str, SampleList],
    class_names: Sequence[str],
    out: str | Path,
    shard_bytes: int = 256 * 10**6,
    progress: Progress | None = None,
) -> tuple[Path, bool]:
    """Write every split under ``out`` in shards of at most ``shard_bytes`` (one image more when
    it alone is larger); returns (``out``, whether anything was written)."""
    out = Path(out)
    digest = source_digest(splits, class_names)
    found = existing_digest(out)
    if found == digest:
        return out, False
    if found is not None:
        raise DataSourceError(
            f"--out {out} holds shards of another data set (digest {found[:12]}, this one "
            f"{digest[:12]}); choose another folder, or delete it to replace them"
        )
    _remove_abandoned(out)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        counts = {}
        for split, listed in splits.items():
            counts[split] = _write_split(split, listed, partial / split, shard_bytes, progress)
        meta = {
            "format": SHARD_FORMAT,
            "class_names": list(class_names),
            "splits": counts,
            "source_digest": digest,
            "shard_bytes": shard_bytes,
        }
        (partial / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty: checked above
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out, True


def _remove_abandoned(out: Path) -> None:
    """Partial folders of earlier runs killed outright (SIGKILL, power loss): no process of theirs
    is alive, and they would otherwise keep up to a whole data set's size on disk."""
    for partial in out.parent.glob(f".{out.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(partial, ignore_errors=True)
        except PermissionError:
            pass  # another user's live process


def _write_split(
    split: str, listed: SampleList, folder: Path, shard_bytes: int, progress: Progress | None
) -> int:
    folder.mkdir(parents=True)
    writer = BinaryWriter(str(folder), chunk_bytes=shard_bytes)
    paths = [path for path, _ in listed.samples]
    for index, ((path, label), key) in enumerate(
        zip(listed.samples, member_keys(paths), strict=True)
    ):
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise DataSourceError(f"{path}: cannot be read ({err.strerror or err})") from err
        writer[index] = {"image": data, "label": int(label), "key": key, "index": index}
        if progress is not None:
            progress(split, index + 1, len(paths))
    writer.done()
    writer.merge()
    return len(paths)
