"""Data pipeline benchmark: naive (full decode, full-resolution augmentation, resize) vs hdvision's
(reduced-scale decode, augmentation at ``aug_scale``), on the same files, same worker count."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from hdvision.data.augment import build_augmentations
from hdvision.data.datamodule import scaled_size
from hdvision.data.dataset import ImageDataset, collate_samples
from hdvision.data.decode import DecodeSettings, decode_image
from hdvision.data.device_augment import build_device_augmentations
from hdvision.errors import UserError

# The transforms both pipelines run; the naive one runs them at full resolution.
BENCH_AUGMENTATIONS = {
    "HorizontalFlip": {"p": 0.5},
    "Affine": {"scale": [0.9, 1.1], "rotate": [-10, 10], "p": 1.0},
    "ColorJitter": {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "p": 1.0},
    "GaussNoise": {"p": 1.0},
}


def make_test_jpegs(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """Photo-like JPEGs (smooth structure + texture, ~300-400 KB at 1080p, quality 90)."""
    rng = np.random.default_rng(seed)
    height, width = size
    paths = []
    for i in range(count):
        low = rng.normal(128, 50, (height // 32 + 1, width // 32 + 1, 3)).astype(np.float32)
        image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
        image += rng.normal(0, 6, (height, width, 3)).astype(np.float32)
        path = folder / f"bench_{i:04d}.jpg"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def naive_dataset(
    paths: Sequence[Path], size: tuple[int, int], out: tuple[int, int]
) -> ImageDataset:
    """Full decode, the transforms at full resolution ``size``, then an area resize to ``out``."""
    transform = build_augmentations(BENCH_AUGMENTATIONS, size, train=True, output_size=out)
    return ImageDataset(
        [(str(p), 0) for p in paths], DecodeSettings(size, reduced=False), transform
    )


def hdvision_dataset(
    paths: Sequence[Path], out: tuple[int, int], augmentations: Mapping[str, Any] | None
) -> ImageDataset:
    """hdvision's own dataset: reduced-scale decode, then ``augmentations`` at ``out``."""
    transform = build_augmentations(augmentations, out, train=bool(augmentations))
    return ImageDataset([(str(p), 0) for p in paths], DecodeSettings(out), transform)


def transform_ms(
    path: Path, sizes: Sequence[tuple[int, int]], repeats: int = 10
) -> dict[str, list[float]]:
    """Milliseconds per call of each benchmark transform alone, at each size (one thread)."""
    images = [decode_image(path, size, reduced=False) for size in sizes]
    result = {}
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # per core, like a loader worker
    try:
        for name, spec in BENCH_AUGMENTATIONS.items():
            times = []
            for image in images:
                transform = build_augmentations({name: spec}, image.shape[:2], train=True)
                transform(image=image)
                start = time.perf_counter()
                for _ in range(repeats):
                    transform(image=image)
                times.append(1000 * (time.perf_counter() - start) / repeats)
            result[name] = times
    finally:
        cv2.setNumThreads(cv2_threads)
    return result


def device_noise_ms(size: tuple[int, int], batch_size: int = 16, repeats: int = 10) -> float:
    """Milliseconds per image of ``GaussNoise`` as a device augmentation, run here on the CPU."""
    noise = build_device_augmentations({"GaussNoise": BENCH_AUGMENTATIONS["GaussNoise"]})
    assert noise is not None
    batch = torch.full((batch_size, 3, *size), 128.0)
    noise(batch)
    start = time.perf_counter()
    for _ in range(repeats):
        noise(batch)
    return 1000 * (time.perf_counter() - start) / (repeats * batch_size)


def images_per_second(dataset: Dataset, workers: int, batch_size: int = 8) -> float:
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_samples
    )
    start = time.perf_counter()
    count = sum(len(batch["label"]) for batch in loader)
    return count / (time.perf_counter() - start)


def run_benchmark(
    images: str | None, size: tuple[int, int], aug_scale: float, workers: int, limit: int
) -> dict:
    """Measure and print images/s of both pipelines and of the reduced-decode floor."""
    with tempfile.TemporaryDirectory() as tmp:
        if images:
            if not Path(images).is_dir():
                raise UserError(f"--images {images}: no such folder (pass a folder of JPEGs)")
            paths = sorted(
                p for p in Path(images).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")
            )
            if not paths:
                raise UserError(f"--images {images}: no .jpg files found in it")
        else:
            paths = make_test_jpegs(Path(tmp), min(limit, 32), size)
        paths = (paths * (limit // len(paths) + 1))[:limit]
        out = scaled_size(size, aug_scale)
        host_without_noise = {k: v for k, v in BENCH_AUGMENTATIONS.items() if k != "GaussNoise"}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # workers=0 measures one core, like each worker process
        try:
            result: dict[str, Any] = {
                "images": len(paths),
                "size": list(size),
                "aug_scale": aug_scale,
                "workers": workers,
                "naive_img_s": images_per_second(naive_dataset(paths, size, out), workers),
                "hdvision_img_s": images_per_second(
                    hdvision_dataset(paths, out, BENCH_AUGMENTATIONS), workers
                ),
                # GaussNoise moved to the device (model.device_augmentations): workers do the rest.
                "hdvision_device_noise_img_s": images_per_second(
                    hdvision_dataset(paths, out, host_without_noise), workers
                ),
                "decode_floor_img_s": images_per_second(
                    hdvision_dataset(paths, out, None), workers
                ),
            }
            result["transform_ms"] = transform_ms(paths[0], [out, size])
            result["device_noise_ms"] = device_noise_ms(out)
        finally:
            torch.set_num_threads(threads)
    result["speedup"] = result["hdvision_img_s"] / result["naive_img_s"]
    result["fraction_of_floor"] = result["hdvision_img_s"] / result["decode_floor_img_s"]
    result["device_noise_speedup"] = result["hdvision_device_noise_img_s"] / result["naive_img_s"]
    result["device_noise_fraction_of_floor"] = (
        result["hdvision_device_noise_img_s"] / result["decode_floor_img_s"]
    )
    print(f"{len(paths)} images, {size[0]}x{size[1]} -> {out[0]}x{out[1]}, {workers} workers")
    print(f"  naive (full decode + full-res aug + resize): {result['naive_img_s']:8.1f} img/s")
    print(
        f"  hdvision (reduced decode + aug at {aug_scale}): {result['hdvision_img_s']:8.1f} img/s"
    )
    print(
        f"  reduced-decode floor (no augmentation):      {result['decode_floor_img_s']:8.1f} img/s"
    )
    print(
        f"  speed-up {result['speedup']:.1f}x, "
        f"{100 * result['fraction_of_floor']:.0f}% of the floor"
    )
    print(
        f"  hdvision, GaussNoise on the device:           "
        f"{result['hdvision_device_noise_img_s']:8.1f} img/s in the workers "
        f"({result['device_noise_speedup']:.1f}x, "
        f"{100 * result['device_noise_fraction_of_floor']:.0f}% of the floor), "
        f"+ {result['device_noise_ms']:.2f} ms/image for the noise on this CPU"
    )
    print(f"  each transform alone, ms per image at {out[0]}x{out[1]} / {size[0]}x{size[1]}:")
    for name, (low, full) in result["transform_ms"].items():
        print(f"    {name:<16} {low:7.2f} / {full:7.2f}")
    return result


def time_loader(loader: DataLoader, batches: int, warmup: int = 1) -> dict:
    """Images/s of ``batches`` batches after ``warmup`` (worker start-up timed separately)."""

    def forever():
        while True:
            yield from loader

    stream = forever()
    start = time.perf_counter()
    for _ in range(warmup):
        next(stream)
    startup = time.perf_counter() - start
    images = 0
    start = time.perf_counter()
    for _ in range(batches):
        images += len(next(stream)["label"])
    seconds = time.perf_counter() - start
    return {"images": images, "img_s": images / seconds, "startup_s": startup}
