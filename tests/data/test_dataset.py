import pytest
import torch

from hdvision.data.augment import build_augmentations
from hdvision.data.datamodule import HDImageDataModule
from hdvision.data.dataset import ImageDataset, SeededSampler
from hdvision.data.decode import BadImageError
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
    ds = ImageDataset(samples, (24, 32), on_bad_image="raise")
    with pytest.raises(BadImageError, match="bad.jpg: not an image"):
        ds[2]


def test_bad_file_is_replaced_and_reported_under_skip_policy(tmp_path):
    samples = _samples(tmp_path)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    samples.insert(2, (str(tmp_path / "bad.jpg"), 0))
    ds = ImageDataset(samples, (24, 32), on_bad_image="skip")
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
        kind="folder",
        root=str(root),
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
    ds = ImageDataset(samples, (24, 32), build_augmentations(AUGS, (24, 32)))
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
    plain = ImageDataset(_samples(tmp_path, 8), (24, 32))
    # The augmentation really changed the images.
    assert not torch.equal(single, torch.stack([plain[i]["image"] for i in range(8)]))


def test_sampler_order_depends_on_epoch():
    sampler = SeededSampler(20, shuffle=True, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(i for i, _ in first) == list(range(20))
