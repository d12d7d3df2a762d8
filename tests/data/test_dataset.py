import pytest
import torch

from hdvision.data.augment import build_augmentations
from hdvision.data.datamodule import HDImageDataModule, per_device_batch_size
from hdvision.data.dataset import ImageDataset, SeededSampler
from hdvision.data.decode import BadImageError, DecodeSettings
from hdvision.data.sources import FolderSource, ManifestSource
from tests.conftest import write_image

AUGS = {
    "HorizontalFlip": {"p": 0.5},
    "Affine": {"rotate": [-20, 20], "p": 0.8},
    "ColorJitter": {"brightness": 0.3, "p": 0.8},
}


def _samples(tmp_path, n=6):
    return [(str(write_image(tmp_path / f"{i}.jpg", seed=i)), i % 2) for i in range(n)]


def test_bad_file_raises_under_raise_policy(tmp_path):
    samples = _samples(tmp_path)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    samples.insert(2, (str(tmp_path / "bad.jpg"), 0))
    ds = ImageDataset(samples, DecodeSettings((24, 32)), on_bad_image="raise")
    with pytest.raises(BadImageError, match="bad.jpg: not an image"):
        ds[2]


def test_bad_file_is_replaced_and_reported_under_skip_policy(tmp_path):
    samples = _samples(tmp_path)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    samples.insert(2, (str(tmp_path / "bad.jpg"), 0))
    ds = ImageDataset(samples, DecodeSettings((24, 32)), on_bad_image="skip")
    item = ds[2]
    assert item["image"].shape == (3, 24, 32) and item["skipped"] == [str(tmp_path / "bad.jpg")]
    assert ds[0]["skipped"] == []


def test_skip_policy_counts_in_the_datamodule_during_a_run(tmp_path):
    root = tmp_path / "folder"
    for c in ("a", "b"):
        for i in range(4):
            write_image(root / "train" / c / f"{i}.jpg", seed=i)
            write_image(root / "val" / c / f"{i}.jpg", seed=i)
    (root / "train" / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    dm = HDImageDataModule(
        source=FolderSource(str(root)),
        image_size=(24, 32),
        aug_scale=1.0,
        on_bad_image="skip",
        batch_size=3,
        num_workers=0,
    )
    dm.setup("fit")
    for batch in dm.train_dataloader():
        dm.on_before_batch_transfer(batch, 0)
    assert dm.skipped == {str(root / "train" / "a" / "broken.jpg"): 1}


def _all_samples(num_workers, tmp_path):
    samples = _samples(tmp_path, 8)
    ds = ImageDataset(samples, DecodeSettings((24, 32)), build_augmentations(AUGS, (24, 32)))
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=3,
        sampler=SeededSampler(len(ds), shuffle=True, seed=5),
        num_workers=num_workers,
        collate_fn=lambda items: torch.stack([i["image"] for i in items]),
    )
    return torch.cat(list(loader))


def test_workers_produce_the_same_augmented_samples_as_the_main_process(tmp_path):
    single = _all_samples(0, tmp_path)
    multi = _all_samples(2, tmp_path)
    assert torch.equal(single, multi)
    plain = ImageDataset(_samples(tmp_path, 8), DecodeSettings((24, 32)))
    # The augmentation really changed the images.
    assert not torch.equal(single, torch.stack([plain[i]["image"] for i in range(8)]))


def test_sampler_order_depends_on_epoch():
    sampler = SeededSampler(20, shuffle=True, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(i for i, _ in first) == list(range(20))


def test_sampler_shards_over_ranks_and_draws_new_seeds_every_epoch():
    shards = [
        list(SeededSampler(10, shuffle=True, seed=3, num_replicas=3, rank=r)) for r in range(3)
    ]
    assert [len(s) for s in shards] == [4, 4, 4]  # padded to 12 by repeating
    indices = [i for shard in shards for i, _ in shard]
    assert sorted(set(indices)) == list(range(10)) and len(indices) == 12
    sampler = SeededSampler(10, shuffle=True, seed=3, num_replicas=3, rank=1)
    first = dict(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert all(first.get(i) != seed for i, seed in second)  # no augmentation repeats


def test_global_batch_size_is_split_per_device_or_a_clear_error():
    assert per_device_batch_size(16, 4, "data.batch_size") == 4
    with pytest.raises(ValueError, match=r"data.batch_size=10 .* 4 devices.*e.g. 8"):
        per_device_batch_size(10, 4, "data.batch_size")


def test_full_resolution_augmentation_then_area_resize_to_the_batch_size(image_folder):
    dm = HDImageDataModule(
        source=FolderSource(str(image_folder)),
        image_size=(48, 64),
        aug_scale=1.0,
        batch_scale=0.25,
        augmentations=AUGS,
        batch_size=4,
        num_workers=0,
    )
    dm.setup("fit")
    assert dm.datasets["train"].decode.size == (48, 64)  # decoded and augmented at full size
    assert dm.datasets["val"].decode.size == (12, 16)  # eval decodes straight to the batch size
    assert next(iter(dm.train_dataloader()))["image"].shape == (4, 3, 12, 16)
    assert next(iter(dm.val_dataloader()))["image"].shape[-2:] == (12, 16)
    with pytest.raises(ValueError, match="batch_scale"):
        HDImageDataModule(FolderSource(str(image_folder)), aug_scale=0.25, batch_scale=0.5)


def test_a_file_in_two_splits_is_refused(tmp_path):
    from hdvision.data.listing import DataSourceError

    for name in ("img", "other", "third"):
        write_image(tmp_path / f"{name}.jpg")
    (tmp_path / "train.csv").write_text("path,label\nimg.jpg,a\nthird.jpg,b\n")
    (tmp_path / "val.csv").write_text("path,label\nother.jpg,b\nimg.jpg,a\n")
    dm = HDImageDataModule(
        source=ManifestSource(str(tmp_path / "train.csv"), str(tmp_path / "val.csv"))
    )
    with pytest.raises(DataSourceError, match="1 files are in more than one split.*train and val"):
        dm.setup()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "data.batch_size must be a positive integer, got 0"),
        ({"eval_batch_size": -4}, "data.eval_batch_size must be a positive integer"),
    ],
)
def test_bad_batch_sizes_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        HDImageDataModule(FolderSource(str(tmp_path)), **kwargs)


def test_one_class_data_is_refused(tmp_path):
    from hdvision.data.listing import DataSourceError

    write_image(tmp_path / "only" / "a.jpg")
    with pytest.raises(DataSourceError, match=r"has 1 class \['only'\].*at least 2"):
        _ = HDImageDataModule(FolderSource(str(tmp_path))).num_classes
