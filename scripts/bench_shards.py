"""The shard benchmark of docs/results/shards.md (issue 33): the same HD images through the training
loader (2 workers, the same decode and transform) as files and as shards, from local disk and over
HTTP from a server on 127.0.0.1 that delays every request (a bucket's latency).

    python scripts/bench_shards.py data/hd_digits_08b23412f4 [--images 512] [--delay-ms 20]

``--webdataset`` adds the same rows for WebDataset tar shards (``pip install webdataset``; HTTP
through curl, its default), the library LitData was chosen over.

The one-file-per-image HTTP baseline is a GET per image then hdvision's decode: what a folder
source over a network mount or a bucket costs per file. Shards over HTTP start from an empty
chunk cache, so their rate includes every download.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import requests
import torch
from torch.utils.data import DataLoader, Dataset

from hdvision.data.datamodule import HDImageDataModule
from hdvision.data.listing import SampleList, manifest_samples
from hdvision.data.shard_writer import write_shards
from hdvision.data.shards import ShardSource
from hdvision.tools.data_pipeline import time_loader

_SERVERS = Path(__file__).resolve().parents[1] / "tests" / "helpers" / "servers.py"
_spec = importlib.util.spec_from_file_location("servers", _SERVERS)
assert _spec is not None and _spec.loader is not None
servers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(servers)


class ListedSource:
    """The first images of a data set's train split, as a source (one split: train)."""

    def __init__(self, listed: SampleList) -> None:
        self.listed = listed

    def prepare(self) -> None:
        pass

    def class_names(self) -> list[str]:
        return self.listed.class_names

    def splits(self, class_names: Sequence[str]) -> dict[str, SampleList]:
        return {"train": self.listed}


class HTTPFiles(Dataset):
    """One GET per image, then the training decode and transform (the per-file baseline)."""

    def __init__(self, urls: list[str], labels: list[int], datamodule: HDImageDataModule) -> None:
        self.urls, self.labels = urls, labels
        self.decode = datamodule.decode.at(datamodule.aug_size)
        self.transform = datamodule._transform(True)

    def __len__(self) -> int:
        return len(self.urls)

    def __getitem__(self, index: int) -> dict[str, Any]:
        data = requests.get(self.urls[index], timeout=60).content
        image = self.transform(image=self.decode.decode_bytes(data, self.urls[index]))["image"]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        return {"image": tensor, "label": self.labels[index]}


def webdataset_loader(urls: list[str], module: HDImageDataModule, workers: int) -> DataLoader:
    """WebDataset's own pipeline: shard shuffle, a 256-sample buffer, split over workers."""
    import webdataset as wds

    decode = module.decode.at(module.aug_size)
    transform = module._transform(True)

    def load(sample: dict) -> dict[str, Any]:
        image = transform(image=decode.decode_bytes(sample["jpg"], sample["__key__"]))["image"]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        return {"image": tensor, "label": int(sample["cls"])}

    dataset = (
        wds.WebDataset(urls, shardshuffle=len(urls), workersplitter=wds.split_by_worker)
        .shuffle(256)
        .map(load)
    )
    return DataLoader(dataset, batch_size=16, num_workers=workers)


def write_webdataset(listed: SampleList, folder: Path, shard_bytes: int) -> list[str]:
    import webdataset as wds

    folder.mkdir(parents=True)
    with wds.ShardWriter(str(folder / "shard-%06d.tar"), maxsize=shard_bytes, verbose=0) as sink:
        for i, (path, label) in enumerate(listed.samples):
            sink.write({"__key__": f"{i:08d}", "jpg": Path(path).read_bytes(), "cls": label})
    return sorted(p.name for p in folder.glob("*.tar"))


def datamodule(source: Any, args: argparse.Namespace) -> HDImageDataModule:
    module = HDImageDataModule(
        source,
        image_size=(1080, 1920),
        aug_scale=args.aug_scale,
        batch_size=16,
        num_workers=args.workers,
        persistent_workers=False,
    )
    module.setup()
    return module


def rate(loader: DataLoader, images: int, batch: int = 16) -> dict[str, float]:
    """One epoch, its first batch (workers starting, the first shard arriving) included."""
    result = time_loader(loader, max(1, images // batch - 1), warmup=1)
    seconds = result["images"] / result["img_s"] + result["startup_s"]
    return {**result, "epoch_img_s": (result["images"] + batch) / seconds}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", help="an HD-digits folder (train.csv beside its images)")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--aug-scale", type=float, default=0.25)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--shard-size", type=int, default=64 * 10**6)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loader")
    parser.add_argument("--webdataset", action="store_true", help="also WebDataset tar shards")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()

    full = manifest_samples(Path(args.data) / "train.csv")
    listed = SampleList(full.samples[: args.images], full.class_names)
    megabytes = sum(Path(p).stat().st_size for p, _ in listed.samples) / 1e6
    work = Path(tempfile.mkdtemp(prefix="bench_shards_"))
    result: dict[str, Any] = {"images": len(listed), "megabytes": round(megabytes, 1)}
    try:
        start = time.perf_counter()
        shards, _ = write_shards(
            {"train": listed}, listed.class_names, work / "site" / "shards", args.shard_size
        )
        result["write_s"] = time.perf_counter() - start
        print(
            f"{len(listed)} images, {megabytes:.0f} MB; shards written in {result['write_s']:.1f} s"
        )

        tars = []
        if args.webdataset:
            tars = write_webdataset(listed, work / "site" / "tars", args.shard_size)
        folder_dm = datamodule(ListedSource(listed), args)
        # The images themselves under the server root, for the one-GET-per-image baseline.
        root = Path(args.data).resolve()
        (work / "site" / "files").symlink_to(root)
        runs: dict[str, list[dict[str, float]]] = {}
        with servers.http_server(work / "site", args.delay_ms / 1000) as url:
            urls = [f"{url}/files/{Path(p).resolve().relative_to(root)}" for p, _ in listed.samples]
            files = HTTPFiles(urls, [label for _, label in listed.samples], folder_dm)
            loaders: dict[str, Callable[[int], DataLoader]] = {
                "local_files": lambda r: folder_dm.train_dataloader(),
                "local_shards": lambda r: datamodule(
                    ShardSource(str(shards), cache_dir=str(work / f"c{r}")), args
                ).train_dataloader(),
                "http_files": lambda r: DataLoader(files, batch_size=16, num_workers=args.workers),
                # A fresh chunk cache each round: every shard is downloaded in the timed epoch.
                "http_shards": lambda r: datamodule(
                    ShardSource(f"{url}/shards", cache_dir=str(work / f"h{r}")), args
                ).train_dataloader(),
            }
            if tars:
                local_tars = [str(work / "site" / "tars" / t) for t in tars]
                http_tars = [f"{url}/tars/{t}" for t in tars]
                loaders["local_webdataset"] = lambda r: webdataset_loader(
                    local_tars, folder_dm, args.workers
                )
                loaders["http_webdataset"] = lambda r: webdataset_loader(
                    http_tars, folder_dm, args.workers
                )
            # Rounds interleave the loaders, so that a slower spell of the machine hits them all.
            for round_ in range(args.repeats):
                for key, make in loaders.items():
                    runs.setdefault(key, []).append(rate(make(round_), len(listed)))
        for key, measured in runs.items():
            median = statistics.median(r["epoch_img_s"] for r in measured)
            result[key] = {"epoch_img_s": median, "rounds": measured}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    for key in sorted(runs, key=lambda k: (not k.startswith("local"), k)):
        rounds = ", ".join(f"{r['epoch_img_s']:.0f}" for r in result[key]["rounds"])
        print(f"{key:<16} {result[key]['epoch_img_s']:7.1f} images/s (median of epochs: {rounds})")
    local = result["local_shards"]["epoch_img_s"] / result["local_files"]["epoch_img_s"]
    http = result["http_shards"]["epoch_img_s"] / result["http_files"]["epoch_img_s"]
    delay = f"{args.delay_ms:g} ms per request"
    print(f"LitData shards / files: local {local:.2f}x, HTTP with {delay} {http:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
