"""A decode cache: each image of a split decoded once at the run's decode settings, kept as uint8
in one memory-mapped file, and read back every epoch instead of decoded again.

The file is named by a digest of the decode settings and of the split's files (path, size,
modification time), so a change of either builds a new cache. It is written beside its final
name and renamed into place, the index last: a killed build leaves no cache that looks complete.
Images are stored as decoded, one after another (letterboxed and cropped images differ in shape);
an image whose three channels are equal is stored once (a grey Megapixel-MNIST canvas takes a third
of the space) and widened again when read. A file that failed to decode is recorded with its
reason and raises the same :class:`BadImageError` when read, so ``data.on_bad_image`` applies as
it does without the cache.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from hdvision.data.decode import BadImageError, DecodeSettings
from hdvision.data.listing import DataSourceError

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the layout of the files changes


def cache_key(paths: Sequence[str], decode: DecodeSettings) -> str:
    """Digest of the decode settings and of every file's path, size and modification time."""
    digest = hashlib.sha1(json.dumps([FORMAT, asdict(decode)], sort_keys=True).encode())
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:16]


def _as_is(item: Any) -> Any:
    return item


class _Decoded(Dataset):
    """The files decoded in DataLoader workers: (index, array or None, error)."""

    def __init__(self, paths: Sequence[str], decode: DecodeSettings) -> None:
        self.paths, self.decode = list(paths), decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, str]:
        try:
            return index, self.decode(self.paths[index]), ""
        except BadImageError as err:
            return index, None, err.reason


class DecodeCache:
    """``cache(path)``: the decoded image of one of ``paths``, as ``decode`` would return it.

    Built on first use (:meth:`build`, ``workers`` decoding processes) under ``root``; later
    runs with the same files and settings reuse it.
    """

    def __init__(
        self, root: str | Path, name: str, paths: Sequence[str], decode: DecodeSettings
    ) -> None:
        self.paths = list(paths)
        self.decode = decode
        self.key = cache_key(self.paths, decode)
        self.root = Path(root)
        self.data_file = self.root / f"{name}_{self.key}.u8"
        self.index_file = self.root / f"{name}_{self.key}.json"
        self.position = {p: i for i, p in enumerate(self.paths)}
        self._index: dict[str, Any] | None = None
        self._data: np.ndarray | None = None  # opened lazily, once per (worker) process

    def exists(self) -> bool:
        return self.index_file.is_file() and self.data_file.is_file()

    def build(self, workers: int = 0, progress: Callable[[int, int], None] | None = None) -> None:
        """Decode every file once into the cache (a no-op when it exists). Concurrent builders
        (DDP ranks) wait for each other on a lock: one decodes, the others reuse its files."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{self.data_file.stem}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.exists():
                self._write(workers, progress)

    def _write(self, workers: int, progress: Callable[[int, int], None] | None) -> None:
        tmp_data = self.data_file.with_name(f".{self.data_file.name}.{os.getpid()}.tmp")
        tmp_index = self.index_file.with_name(f".{self.index_file.name}.{os.getpid()}.tmp")
        loader = DataLoader(
            _Decoded(self.paths, self.decode),
            batch_size=None,
            collate_fn=_as_is,  # numpy arrays as decoded, not converted to tensors
            num_workers=workers,
            prefetch_factor=8 if workers else None,
        )
        offsets, shapes, errors = [0] * len(self.paths), [(0, 0, 0)] * len(self.paths), {}
        written = 0
        log.info("Decode cache: decoding %d images once into %s", len(self.paths), self.data_file)
        try:
            with open(tmp_data, "wb") as f:
                for done, (index, image, error) in enumerate(loader, start=1):
                    if image is None:
                        errors[index] = error
                    else:
                        if image.ndim == 3 and (image == image[..., :1]).all():
                            image = image[..., :1]  # grey: one channel of the three
                        image = np.ascontiguousarray(image)
                        offsets[index], shapes[index] = written, image.shape
                        f.write(image.tobytes())
                        written += image.size
                    if progress is not None:
                        progress(done, len(self.paths))
                f.flush()
                os.fsync(f.fileno())
            index = {"offsets": offsets, "shapes": shapes, "errors": errors, "bytes": written}
            tmp_index.write_text(json.dumps(index))
            tmp_data.rename(self.data_file)
            tmp_index.rename(self.index_file)  # last: the cache is complete once this exists
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            raise DataSourceError(
                f"decode cache {self.data_file}: the disk is full after {written / 1e6:.0f} MB of "
                "decoded images; free space, point data.cache at a larger disk, or set "
                "data.cache=false"
            ) from err
        finally:
            tmp_data.unlink(missing_ok=True)
            tmp_index.unlink(missing_ok=True)
        log.info("Decode cache: %.1f MB in %s", written / 1e6, self.data_file)

    def _open(self) -> tuple[dict[str, Any], np.ndarray]:
        if self._index is None or self._data is None:
            if not self.exists():
                raise DataSourceError(
                    f"decode cache {self.index_file} is missing; it is built in setup() (or "
                    "remove data.cache to decode every time)"
                )
            self._index = json.loads(self.index_file.read_text())
            size = int(self._index["bytes"])
            self._data = (
                np.memmap(self.data_file, dtype=np.uint8, mode="r", shape=(size,))
                if size
                else np.zeros(0, np.uint8)
            )
        return self._index, self._data

    def __call__(self, path: str) -> np.ndarray:
        index, data = self._open()
        i = self.position.get(str(path))
        if i is None:
            raise KeyError(f"{path} is not in the decode cache {self.data_file}")
        if str(i) in index["errors"]:
            raise BadImageError(path, index["errors"][str(i)])
        h, w, c = index["shapes"][i]
        start = index["offsets"][i]
        image = np.asarray(data[start : start + h * w * c]).reshape(h, w, c)
        return np.repeat(image, 3, axis=2) if c == 1 else image.copy()

    def __getstate__(self) -> dict[str, Any]:
        # Workers re-open the memory map themselves rather than pickling its pages.
        return {**self.__dict__, "_index": None, "_data": None}
