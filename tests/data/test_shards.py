"""`hdvision shard` and data=shards: round trip, bad shards, HTTP and S3 servers, DDP ranks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hdvision.data.augment import build_augmentations
from hdvision.data.datamodule import HDImageDataModule
from hdvision.data.decode import BadImageError, DecodeSettings
from hdvision.data.listing import DataSourceError
from hdvision.data.shard_writer import write_shards
from hdvision.data.shards import ShardSource, collate_shard_samples
from hdvision.data.sources import FolderSource
from tests.conftest import write_image
from tests.helpers.servers import http_server, s3_server

CLASSES = ["cat", "dog", "eel"]


@pytest.fixture
def split_folder(tmp_path: Path) -> Path:
    """root/{train,val,test}/<class>/*: JPEG and PNG files of several sizes."""
    root = tmp_path / "images"
    counts = {"train": 5, "val": 2, "test": 2}
    for split, count in counts.items():
        for c, name in enumerate(CLASSES):
            for i in range(count):
                fmt = ".png" if i % 3 == 2 else ".jpg"
                write_image(root / split / name / f"{i}{fmt}", (40 + 8 * i, 64), seed=c * 50 + i)
    return root


def _write(root: Path, out: Path, shard_bytes: int = 20_000) -> Path:
    source = FolderSource(str(root))
    splits = source.splits(source.class_names())
    written, wrote = write_shards(splits, source.class_names(), out, shard_bytes)
    assert wrote
    return written


def _members(source: ShardSource, split: str) -> dict[str, tuple[int, bytes]]:
    dataset = source.stream(split, DecodeSettings((16, 24)), None, "raise", False, 0)
    assert dataset is not None
    return {name.split(": ", 1)[1]: (label, data) for name, label, data in dataset.members()}


def test_round_trip_keeps_bytes_labels_and_class_names(split_folder, tmp_path):
    out = _write(split_folder, tmp_path / "shards")
    source = ShardSource(str(out), cache_dir=str(tmp_path / "cache"))
    source.prepare()
    assert source.class_names() == CLASSES
    meta = json.loads((out / "hdvision_shards.json").read_text())
    assert meta["splits"] == {"train": 15, "val": 6, "test": 6}
    assert len(list((out / "train").glob("chunk-*.bin"))) > 1  # 20 kB shards: several
    for split in ("train", "val", "test"):
        members = _members(source, split)
        folder = split_folder / split
        files = {p.relative_to(folder).as_posix(): p for p in folder.glob("*/*")}
        assert sorted(members) == sorted(files)
        for key, (label, data) in members.items():
            assert data == files[key].read_bytes()  # stored as is: no re-encode
            assert CLASSES[label] == files[key].parent.name


def _first_batch(datamodule: HDImageDataModule, split: str) -> dict:
    datamodule.setup()
    return next(iter(getattr(datamodule, f"{split}_dataloader")()))


def test_streamed_batches_equal_the_folder_sources(split_folder, tmp_path):
    out = _write(split_folder, tmp_path / "shards")
    common = dict(image_size=(32, 48), aug_scale=1.0, batch_size=6, eval_batch_size=6)
    folder = HDImageDataModule(FolderSource(str(split_folder)), num_workers=0, **common)
    shards = HDImageDataModule(
        ShardSource(str(out), cache_dir=str(tmp_path / "cache")), num_workers=0, **common
    )
    assert shards.class_names == folder.class_names
    a, b = _first_batch(folder, "val"), _first_batch(shards, "val")  # unshuffled: listing order
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    train = _first_batch(shards, "train")
    assert train["image"].shape == (6, 3, 32, 48) and train["image"].dtype == torch.uint8


def test_same_data_is_not_rewritten_other_data_and_other_folders_are_refused(
    split_folder, tmp_path
):
    out = _write(split_folder, tmp_path / "shards")
    source = FolderSource(str(split_folder))
    splits = source.splits(CLASSES)
    assert write_shards(splits, CLASSES, out, 20_000) == (out, False)
    write_image(split_folder / "train" / "cat" / "new.jpg", seed=99)
    with pytest.raises(DataSourceError, match="holds shards of another data set"):
        write_shards(source.splits(CLASSES), CLASSES, out, 20_000)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "readme.txt").write_text("mine")
    with pytest.raises(DataSourceError, match="not empty and holds no hdvision shards"):
        write_shards(splits, CLASSES, other, 20_000)


def test_an_interrupted_write_leaves_no_shards(split_folder, tmp_path):
    source = FolderSource(str(split_folder))
    splits = source.splits(CLASSES)

    def interrupt(split: str, done: int, total: int) -> None:
        if split == "val":
            raise KeyboardInterrupt

    out = tmp_path / "shards"
    with pytest.raises(KeyboardInterrupt):
        write_shards(splits, CLASSES, out, 20_000, interrupt)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [split_folder]  # no partial folder left either
    # A run killed outright (SIGKILL) leaves its partial folder: the next run removes it.
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    abandoned = tmp_path / f".shards.partial-{killed.pid}"
    (abandoned / "train").mkdir(parents=True)
    write_shards(splits, CLASSES, out, 20_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "shards"]


def test_a_truncated_shard_is_named(split_folder, tmp_path):
    out = _write(split_folder, tmp_path / "shards")
    chunk = sorted((out / "train").glob("chunk-*.bin"))[0]
    chunk.write_bytes(chunk.read_bytes()[:-100])
    with pytest.raises(DataSourceError, match=f"shard {chunk} is truncated"):
        ShardSource(str(out)).prepare()


def test_a_corrupt_member_is_named_and_follows_on_bad_image(split_folder, tmp_path):
    bad = split_folder / "val" / "dog" / "0.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg at all")
    out = _write(split_folder, tmp_path / "shards")
    source = ShardSource(str(out), cache_dir=str(tmp_path / "cache"))
    decode = DecodeSettings((16, 24))
    strict = source.stream("val", decode, None, "raise", False, 0)
    with pytest.raises(BadImageError, match=r"/val/chunk-0-\d+\.bin: dog/0\.jpg"):
        list(strict)
    pad = build_augmentations(None, (16, 24), "letterbox", False, output_size=(16, 24))
    lenient = source.stream("val", decode, pad, "skip", False, 0)
    batch = collate_shard_samples(list(lenient))
    assert len(batch["label"]) == 5
    assert len(batch["skipped"]) == 1 and batch["skipped"][0].endswith(".bin: dog/0.jpg")


def test_a_folder_without_shards_gets_one_line(tmp_path):
    with pytest.raises(DataSourceError, match="holds no hdvision shards"):
        ShardSource(str(tmp_path)).class_names()
    with pytest.raises(DataSourceError, match="data.source.uri is not set"):
        ShardSource("").class_names()


def test_ranks_and_workers_read_disjoint_samples_that_make_the_epoch(
    split_folder, tmp_path, monkeypatch
):
    from litdata import StreamingDataLoader
    from litdata.utilities.env import _DistributedEnv

    out = _write(split_folder, tmp_path / "shards", shard_bytes=4_000)  # ~1 image per shard
    source = ShardSource(str(out), cache_dir=str(tmp_path / "cache"))
    shares = []
    for rank in range(2):
        # What LitData detects in a DDP process of rank `rank` (torch.distributed initialised).
        env = _DistributedEnv(world_size=2, global_rank=rank, num_nodes=1)
        monkeypatch.setattr(_DistributedEnv, "detect", classmethod(lambda cls, env=env: env))
        dataset = source.stream("train", DecodeSettings((16, 24)), None, "raise", True, 3)
        loader = StreamingDataLoader(
            dataset, batch_size=1, num_workers=2, collate_fn=lambda items: items[0]
        )
        shares.append([item["index"] for item in loader])
    assert [len(s) for s in shares] == [7, 7]  # equal shares of 15: one sample dropped
    assert all(len(set(s)) == len(s) for s in shares)  # each worker its own samples
    assert not set(shares[0]) & set(shares[1])
    assert len(set(shares[0]) | set(shares[1])) == 14 and max(shares[0] + shares[1]) < 15


def test_http_shards_match_local_ones(split_folder, tmp_path):
    out = _write(split_folder, tmp_path / "site" / "shards")
    local = ShardSource(str(out), cache_dir=str(tmp_path / "cache_local"))
    with http_server(tmp_path / "site") as url:
        remote = ShardSource(f"{url}/shards", cache_dir=str(tmp_path / "cache_http"))
        assert remote.class_names() == CLASSES
        for split in ("train", "test"):
            assert _members(remote, split) == _members(local, split)
        with pytest.raises(DataSourceError, match="holds no hdvision shards"):
            ShardSource(f"{url}/nothing", cache_dir=str(tmp_path / "cache_http")).class_names()


def test_s3_shards_stream_through_loader_workers(split_folder, tmp_path, monkeypatch):
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    out = _write(split_folder, tmp_path / "shards")
    local = ShardSource(str(out), cache_dir=str(tmp_path / "cache_local"))
    with s3_server(out, "hdvision-test", "sets/digits") as endpoint:
        source = ShardSource(
            "s3://hdvision-test/sets/digits",
            storage_options={"endpoint_url": endpoint},
            cache_dir=str(tmp_path / "cache_s3"),
        )
        assert source.class_names() == CLASSES
        common = dict(image_size=(32, 48), aug_scale=1.0, batch_size=3, eval_batch_size=3)
        streamed = HDImageDataModule(source, num_workers=2, persistent_workers=False, **common)
        stored = HDImageDataModule(local, num_workers=0, **common)
        labels = torch.cat([b["label"] for b in (_first_batch(streamed, "test"),)])
        assert torch.equal(labels, _first_batch(stored, "test")["label"])
        batches = list(streamed.train_dataloader())
        assert sum(len(b["label"]) for b in batches) == 15


def test_a_truncated_shard_over_http_is_named_not_waited_for(split_folder, tmp_path):
    out = _write(split_folder, tmp_path / "site" / "shards")
    chunk = sorted((out / "val").glob("chunk-*.bin"))[0]
    chunk.write_bytes(chunk.read_bytes()[:-100])
    with http_server(tmp_path / "site") as url:
        source = ShardSource(f"{url}/shards", cache_dir=str(tmp_path / "cache"))
        dataset = source.stream("val", DecodeSettings((16, 24)), None, "raise", False, 0)
        with pytest.raises(Exception, match=f"shard {url}/shards/val/{chunk.name} is truncated"):
            list(dataset)


def test_check_data_names_a_corrupt_member_and_a_truncated_shard_in_one_line(
    split_folder, tmp_path, capsys
):
    from hdvision.cli.main import main

    (split_folder / "test" / "eel" / "1.jpg").write_bytes(b"\xff\xd8 broken")
    out = _write(split_folder, tmp_path / "shards")
    args = ["check-data", "data=shards", f"data.source.uri={out}", f"paths.root_dir={tmp_path}"]
    assert main(args) == 1
    printed = capsys.readouterr().out
    assert "bad files and entries: 1" in printed and ".bin: eel/1.jpg" in printed
    chunk = sorted((out / "train").glob("chunk-*.bin"))[-1]
    chunk.write_bytes(b"")
    assert main(args) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"shard {chunk} is truncated" in err[0]


def test_checkpoints_record_the_train_split_and_calibration_reads_a_few_members(
    split_folder, tmp_path
):
    from hdvision.inference.samples import decoded_batch, image_rows

    out = _write(split_folder, tmp_path / "shards")
    recorded = ShardSource(str(out)).training_data()
    assert recorded == f"{out.resolve()}/train"
    rows = image_rows(None, {"training_data": recorded}, 4, "--calibration")
    assert len(rows) == 4 and all(r.member is not None and r.label in CLASSES for r in rows)
    preprocessing = {"sample_size": [16, 24], "fit": "letterbox", "reduced_decode": True}
    batch = decoded_batch(rows, {**preprocessing, "max_pixels": 10**8})
    assert batch.shape == (4, 3, 16, 24) and batch.dtype == torch.uint8
