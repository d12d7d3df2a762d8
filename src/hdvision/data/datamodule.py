"""One LightningDataModule for every source (``data.source``: an image folder, CSV manifests,
HD digits, or your own :class:`~hdvision.data.sources.DataSource`): the source lists the
samples and classes of each split, the datamodule decodes, augments and batches them.
Batches are uint8 at ``sample_size = image_size * aug_scale``; the model normalises on device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from hdvision.data.augment import build_augmentations
from hdvision.data.cache import DecodeCache
from hdvision.data.dataset import ImageDataset, SeededSampler, collate_samples
from hdvision.data.decode import DEFAULT_MAX_PIXELS, DecodeSettings
from hdvision.data.listing import SPLITS, DataSourceError, SampleList, report_problems
from hdvision.data.sources import DataSource

log = logging.getLogger(__name__)


def scaled_size(image_size: Sequence[int], scale: float) -> tuple[int, int]:
    return max(1, round(image_size[0] * scale)), max(1, round(image_size[1] * scale))


def per_device_batch_size(global_batch_size: int, world_size: int, key: str) -> int:
    """``data.batch_size`` is global: split evenly over the devices (× nodes) of the run."""
    if global_batch_size % world_size:
        lower = global_batch_size - global_batch_size % world_size
        raise ValueError(
            f"{key}={global_batch_size} is the global batch size and does not divide over "
            f"{world_size} devices; use a multiple of {world_size}, e.g. {lower or world_size}"
        )
    return global_batch_size // world_size


def check_disjoint_splits(sources: Mapping[str, SampleList]) -> None:
    """The same file in two splits leaks test images into training: refuse it, naming a few."""
    owner: dict[str, str] = {}
    shared: list[str] = []
    for split, source in sources.items():
        for path, _ in source.samples:
            real = str(Path(path).resolve())
            if owner.setdefault(real, split) != split:
                shared.append(f"{path} ({owner[real]} and {split})")
    if shared:
        raise DataSourceError(
            f"{len(shared)} files are in more than one split, e.g. {shared[:3]}; "
            "each file must belong to one of train/val/test"
        )


class HDImageDataModule(pl.LightningDataModule):
    def __init__(
        self,
        source: DataSource,
        class_names: Sequence[str] | None = None,
        image_size: Sequence[int] = (1080, 1920),
        aug_scale: float = 0.5,
        batch_scale: float | None = None,
        fit: str = "letterbox",
        augmentations: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        reduced_decode: bool = True,
        on_bad_image: str = "raise",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        cache: bool | str = False,
        cache_root: str = "data/cache",
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        prefetch_factor: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0 < aug_scale <= 1:
            raise ValueError(f"data.aug_scale must be in (0, 1], got {aug_scale}")
        if batch_scale is not None and not 0 < batch_scale <= aug_scale:
            raise ValueError(
                f"data.batch_scale must be in (0, data.aug_scale={aug_scale}], got {batch_scale}"
            )
        for key, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"data.{key} must be a positive integer, got {value!r}")
        self.source = source
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.aug_scale = aug_scale
        # Training decodes and augments at aug_size; batches (and val/test) are at sample_size.
        self.aug_size = scaled_size(self.image_size, aug_scale)
        self.sample_size = scaled_size(self.image_size, batch_scale or aug_scale)
        # The decode settings of val/test (and of inference); training decodes them at aug_size.
        self.decode = DecodeSettings(self.sample_size, fit, reduced_decode, max_pixels)
        self.augmentations = augmentations
        self.on_bad_image = on_bad_image
        # True: decode once into cache_root; a path: there. Each split's decoded images are
        # memory-mapped and reused every epoch (hdvision.data.cache).
        self.cache_root = None if cache is False else Path(cache_root if cache is True else cache)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.prefetch_factor = prefetch_factor if num_workers > 0 else None
        self.seed = seed
        self._class_names = list(class_names) if class_names is not None else None
        self.datasets: dict[str, Dataset] = {}
        # Streamed splits: each loader gets its own data set object (a stream's position lives
        # in it), so a second loader over a split (precise BN) cannot move the training one's.
        self._streams: dict[str, Callable[[], Any]] = {}
        # Listing problems per split (missing files, unknown labels, ...), left out of the data
        # under on_bad_image=skip; `hdvision check-data` names them.
        self.problems: dict[str, list[str]] = {}
        self.skipped: dict[str, int] = {}

    # -- what the model config interpolates -------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            names = self._discover_classes()
            if len(names) < 2:
                raise DataSourceError(
                    f"{self.source!r} has {len(names)} class {names}: a classifier needs at "
                    "least 2 (one sub-folder or label per class)"
                )
            self._class_names = names
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def preprocessing(self) -> dict[str, Any]:
        """What inference must repeat to feed the model as evaluation did (plain data, saved in
        checkpoints): decode at ``sample_size`` with ``fit``, pad/crop to it, uint8 batches."""
        return {"image_size": list(self.image_size), **self.decode.to_preprocessing()}

    @property
    def training_data(self) -> str | None:
        """A folder or CSV manifest of the training images, when the source can name one
        (recorded in checkpoints: calibration and parity checks use the model's own data)."""
        name = getattr(self.source, "training_data", None)
        return name() if callable(name) else None

    def _discover_classes(self) -> list[str]:
        return list(self.source.class_names())

    # -- set-up ------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.source.prepare()

    def _transform(self, train: bool) -> Any:
        size = self.aug_size if train else self.sample_size
        return build_augmentations(
            self.augmentations, size, self.decode.fit, train, output_size=self.sample_size
        )

    def list_splits(self) -> dict[str, SampleList]:
        """Each split's samples as the source lists them, checked as training needs them: no
        file in two splits, listing problems raised or (``on_bad_image=skip``) recorded."""
        sources = self.source.splits(self.class_names)
        check_disjoint_splits(sources)
        for split, source in sources.items():
            report_problems(source, f"the {split} split", self.on_bad_image)
            self.problems[split] = list(source.problems)
        return sources

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if callable(getattr(self.source, "stream", None)):
            self._setup_streams()
            return
        online = getattr(self.source, "online_training", None)
        for split, source in self.list_splits().items():
            train = split == "train"
            size = self.aug_size if train else self.sample_size
            transform = self._transform(train)
            if train and callable(online):
                fresh = online(self.decode.at(size), transform)
                if fresh is not None:  # composed afresh every epoch: nothing to cache
                    self.datasets[split] = fresh
                    continue
            decode: Callable[[str], np.ndarray] = self.decode.at(size)
            if self.cache_root is not None:
                decode = self._cached(split, [p for p, _ in source.samples], self.decode.at(size))
            self.datasets[split] = ImageDataset(
                source.samples, decode, transform, self.on_bad_image
            )
        self._log_counts()

    def _setup_streams(self) -> None:
        """Sources that stream (shards): each split is an iterable data set that decodes and
        augments as the file sources do; LitData splits it over ranks and workers."""
        if self.cache_root is not None:
            raise DataSourceError(
                "data.cache does not apply to a streamed source (data=shards); set data.cache=false"
            )
        for split in SPLITS:
            train = split == "train"
            size = self.aug_size if train else self.sample_size
            stream = partial(
                self.source.stream,  # type: ignore[attr-defined]
                split,
                self.decode.at(size),
                self._transform(train),
                self.on_bad_image,
                train,
                self.seed,
            )
            dataset = stream()
            if dataset is not None:
                self.datasets[split] = dataset
                self._streams[split] = stream
        self._log_counts()

    def _log_counts(self) -> None:
        counts = {s: len(d) for s, d in self.datasets.items()}  # type: ignore[arg-type]
        log.info(
            "Data: %s, %d classes, samples at %s (aug_scale=%s)",
            counts,
            self.num_classes,
            self.sample_size,
            self.aug_scale,
        )

    def _cached(self, split: str, paths: list[str], decode: DecodeSettings) -> DecodeCache:
        assert self.cache_root is not None
        cache = DecodeCache(self.cache_root, split, paths, decode)
        if not cache.exists():
            step = max(1, len(paths) // 10)

            def progress(done: int, total: int) -> None:
                if done % step == 0 or done == total:
                    log.info("Decode cache (%s): %d / %d images", split, done, total)

            cache.build(self.num_workers, progress)
        return cache

    # -- loaders -----------------------------------------------------------------------------
    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            raise DataSourceError(f"no {split} split found in {self.source!r}")
        dataset: Any = self.datasets[split]
        world_size, rank = 1, 0
        if self.trainer is not None:
            world_size, rank = self.trainer.world_size, self.trainer.global_rank
        key = "data.batch_size" if train else "data.eval_batch_size"
        batch_size = per_device_batch_size(
            self.batch_size if train else self.eval_batch_size, world_size, key
        )
        if split in self._streams:
            # LitData's loader: its state_dict (samples yielded per worker) is what Lightning
            # saves in checkpoints, so a mid-epoch resume continues with the samples not yet seen.
            from litdata import StreamingDataLoader

            from hdvision.data.shards import collate_shard_samples

            dataset = self._streams[split]()  # its own stream: see _streams
            loader_class, collate, length = StreamingDataLoader, collate_shard_samples, len(dataset)
            extra: dict[str, Any] = {}
        else:
            sampler = SeededSampler(len(dataset), train, self.seed, world_size, rank)
            loader_class, collate, length = DataLoader, collate_samples, len(sampler)
            extra = {"sampler": sampler}
        return loader_class(
            dataset,
            batch_size=batch_size,
            num_workers=self.num_workers,
            collate_fn=collate,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers,
            prefetch_factor=self.prefetch_factor,
            drop_last=train and length > batch_size,
            **extra,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Skipped files are counted here, in the main process, whatever worker replaced them.
        for path in batch.pop("skipped", []) if isinstance(batch, dict) else []:
            self.skipped[path] = self.skipped.get(path, 0) + 1
        return batch
