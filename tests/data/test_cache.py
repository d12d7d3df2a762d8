"""The decode cache returns what decoding returns, bit for bit, and is rebuilt when it must be."""

import os

import numpy as np
import pytest
import torch

from hdvision.data.cache import DecodeCache
from hdvision.data.datamodule import HDImageDataModule
from hdvision.data.decode import BadImageError, DecodeSettings
from hdvision.data.sources import FolderSource, HDDigitsSource, ManifestSource
from tests.conftest import write_image


def _files(tmp_path):
    paths = [
        write_image(tmp_path / "a.jpg", (48, 64), seed=1),
        write_image(tmp_path / "b.png", (40, 70), seed=2),
        write_image(tmp_path / "grey.png", (48, 64), mode="L", seed=3),
        write_image(tmp_path / "tall.jpg", (80, 30), seed=4),
    ]
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    return [str(p) for p in paths] + [str(tmp_path / "bad.jpg")]


@pytest.mark.parametrize("fit", ["letterbox", "crop"])
def test_the_cache_returns_the_direct_decode_bit_for_bit(tmp_path, fit):
    paths = _files(tmp_path)
    decode = DecodeSettings((24, 32), fit)
    cache = DecodeCache(tmp_path / "cache", "train", paths, decode)
    cache.build(workers=0)
    for path in paths[:-1]:
        direct = decode(path)
        cached = cache(path)
        assert cached.dtype == np.uint8 and cached.shape == direct.shape
        assert np.array_equal(cached, direct), path
    with pytest.raises(BadImageError, match="bad.jpg: not an image"):
        cache(paths[-1])
    # The grey image is stored once, not three times.
    sizes = [
        h * w * c
        for h, w, c in DecodeCache(tmp_path / "cache", "train", paths, decode)._open()[0]["shapes"]
    ]
    assert sizes[2] * 3 == decode(paths[2]).size
    # Read back by another object (another process): the files alone suffice.
    again = DecodeCache(tmp_path / "cache", "train", paths, decode)
    assert again.exists() and np.array_equal(again(paths[0]), decode(paths[0]))


def test_a_changed_setting_or_file_builds_a_new_cache(tmp_path):
    paths = _files(tmp_path)[:2]
    first = DecodeCache(tmp_path / "cache", "train", paths, DecodeSettings((24, 32)))
    first.build()
    smaller = DecodeCache(tmp_path / "cache", "train", paths, DecodeSettings((12, 16)))
    assert smaller.key != first.key and not smaller.exists()
    smaller.build()
    assert smaller(paths[0]).shape[:2] == (12, 16) and first(paths[0]).shape[:2] == (24, 32)
    write_image(tmp_path / "a.jpg", (48, 64), seed=9)  # the same path, new content
    os.utime(paths[0], ns=(1, 1))
    changed = DecodeCache(tmp_path / "cache", "train", paths, DecodeSettings((24, 32)))
    assert changed.key != first.key and not changed.exists()


def test_an_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    paths = _files(tmp_path)[:4]
    calls = []

    def dying_decode(self, path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # a Ctrl-C (or a kill) half-way through
        return np.zeros((24, 32, 3), np.uint8)

    monkeypatch.setattr(DecodeSettings, "__call__", dying_decode)
    cache = DecodeCache(tmp_path / "cache", "train", paths, DecodeSettings((24, 32)))
    with pytest.raises(KeyboardInterrupt):
        cache.build()
    assert not cache.exists()
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def _batches(datamodule, split):
    datamodule.prepare_data()
    datamodule.setup()
    loader = getattr(datamodule, f"{split}_dataloader")()
    return [b["image"] for b in loader]


@pytest.mark.parametrize("kind", ["folder", "manifest", "hd_digits"])
def test_every_source_trains_on_the_same_batches_with_the_cache(tmp_path, image_folder, kind):
    if kind == "folder":
        source = FolderSource(str(image_folder), seed=0)
    elif kind == "manifest":
        rows = ["path,label"] + [
            f"{p},{p.parent.name}" for p in sorted(image_folder.rglob("*.jpg"))
        ]
        train = [r for i, r in enumerate(rows[1:]) if i % 4]
        val = [r for i, r in enumerate(rows[1:]) if not i % 4]
        (tmp_path / "all.csv").write_text("\n".join(rows[:1] + train) + "\n")
        (tmp_path / "val.csv").write_text("\n".join(rows[:1] + val) + "\n")
        source = ManifestSource(str(tmp_path / "all.csv"), str(tmp_path / "val.csv"))
    else:
        source = HDDigitsSource(
            out_dir=str(tmp_path / "data"),
            canvas=(64, 96),
            digit_size=16,
            num_train=8,
            num_val=4,
            num_test=4,
        )
    common = {
        "image_size": (32, 48),
        "aug_scale": 1.0,
        "batch_size": 4,
        "num_workers": 0,
        "augmentations": {"HorizontalFlip": {"p": 0.5}, "Affine": {"rotate": [-10, 10]}},
    }
    plain = _batches(HDImageDataModule(source, **common), "train")
    cached_dm = HDImageDataModule(source, cache=True, cache_root=str(tmp_path / "cache"), **common)
    cached = _batches(cached_dm, "train")
    assert len(plain) == len(cached) > 0
    assert all(torch.equal(a, b) for a, b in zip(plain, cached, strict=True))
    assert {p.suffix for p in (tmp_path / "cache").iterdir()} >= {".u8", ".json"}
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            _batches(HDImageDataModule(source, **common), "val"),
            _batches(cached_dm, "val"),
            strict=True,
        )
    )
