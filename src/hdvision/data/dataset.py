"""A lazily decoding image data set with a bad-file policy and worker-independent augmentation.

Each item is decoded from disk when asked for. Augmentation randomness comes from a per-item seed
that :class:`SeededSampler` draws in the main process, so ``num_workers=0`` and ``num_workers=4``
produce the same samples for the same seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from hdvision.data.decode import BadImageError

log = logging.getLogger(__name__)

BAD_IMAGE_POLICIES = ("raise", "skip")


def augment_to_tensor(
    image: np.ndarray, transform: A.Compose | None, seed: int | None = None
) -> torch.Tensor:
    """A decoded (H, W, 3) image through ``transform`` (seeded when ``seed`` is given) as a
    (3, H, W) uint8 tensor: the last step of every training and evaluation item."""
    if transform is not None:
        if seed is not None:
            transform.set_random_seed(seed)
        image = transform(image=image)["image"]
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()


class ImageDataset(Dataset):
    """``(path, label)`` samples decoded with ``decode`` (a :class:`DecodeSettings`, or a
    :class:`~hdvision.data.cache.DecodeCache` of them) and passed through ``transform``.

    Items are dicts: ``image`` (3, H, W) uint8, ``label`` int, ``skipped`` (paths replaced by
    another sample under ``on_bad_image="skip"``).
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        decode: Callable[[str], np.ndarray],
        transform: A.Compose | None = None,
        on_bad_image: str = "raise",
        max_replacements: int = 16,
    ) -> None:
        if on_bad_image not in BAD_IMAGE_POLICIES:
            raise ValueError(
                f"data.on_bad_image must be one of {BAD_IMAGE_POLICIES}, got {on_bad_image!r}"
            )
        self.samples = list(samples)
        self.decode = decode
        self.transform = transform
        self.on_bad_image = on_bad_image
        self.max_replacements = max_replacements

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int, seed: int | None = None) -> dict:
        path, label = self.samples[index]
        return {"image": augment_to_tensor(self.decode(path), self.transform, seed), "label": label}

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        index, seed = item if isinstance(item, tuple) else (item, None)
        skipped: list[str] = []
        for attempt in range(self.max_replacements + 1):
            candidate = (index + attempt * 7919) % len(self.samples)
            try:
                sample = self.load(candidate, seed)
            except BadImageError as err:
                if self.on_bad_image == "raise":
                    raise
                log.warning("skipping bad image %s", err)
                skipped.append(err.path)
                continue
            sample["skipped"] = skipped
            return sample
        raise BadImageError(
            self.samples[index][0],
            f"{self.max_replacements + 1} consecutive replacement samples were bad too "
            f"(skipped: {skipped}); check the data set with `hdvision check-data`",
        )


class SeededSampler(Sampler):
    """Yields ``(index, augmentation_seed)``; order and seeds depend only on (seed, epoch).

    It shards itself over ``num_replicas`` processes (DDP; pad by repeating, as torch's
    DistributedSampler does), so Lightning's sampler replacement is switched off
    (``trainer.use_distributed_sampler: false``): a wrapped sampler would never see
    ``set_epoch`` and every epoch would repeat the same augmentations.
    """

    def __init__(
        self, length: int, shuffle: bool, seed: int = 0, num_replicas: int = 1, rank: int = 0
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.iterated_epoch: int | None = None  # the epoch the last iteration was started at
        self._skip = 0

    def skip_next(self, count: int) -> None:
        """The next iteration starts ``count`` samples into this rank's share of the epoch (a
        mid-epoch resume: those samples were trained on before the interruption)."""
        self._skip = count

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.length / self.num_replicas)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        self.iterated_epoch = self.epoch
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = (
            torch.randperm(self.length, generator=gen)
            if self.shuffle
            else torch.arange(self.length)
        )
        seeds = torch.randint(0, 2**31 - 1, (self.length,), generator=gen)
        total = len(self) * self.num_replicas
        if total > self.length:  # pad so that every rank gets the same number of samples
            repeat = torch.arange(total) % self.length
            order, seeds = order[repeat], seeds[repeat]
        start, self._skip = self.rank + self._skip * self.num_replicas, 0
        shard = slice(start, total, self.num_replicas)
        yield from zip(order[shard].tolist(), seeds[shard].tolist(), strict=True)


def collate_samples(items: list[dict]) -> dict:
    return {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "skipped": [p for it in items for p in it["skipped"]],
    }
