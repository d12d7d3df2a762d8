import numpy as np
import pytest
from PIL import Image

from hdvision.data.datamodule import HDImageDataModule
from hdvision.data.listing import DataSourceError
from hdvision.data.sources import MNISTDigitsSource


def test_digits_are_written_once_as_28px_pngs_in_disjoint_class_folders(tmp_path):
    source = MNISTDigitsSource(str(tmp_path))
    root = source.prepare()
    assert source.prepare() == root  # the second call reuses the files
    splits = source.splits(source.class_names())
    counts = {s: len(lst.samples) for s, lst in splits.items()}
    assert sum(counts.values()) == 5000 and counts["train"] > 3 * counts["test"] > 0
    names = {s: {p.rsplit("/", 1)[-1] for p, _ in lst.samples} for s, lst in splits.items()}
    assert not (names["train"] & names["val"]) and not (names["train"] & names["test"])
    path, label = splits["val"].samples[0]
    image = Image.open(path)
    assert image.size == (28, 28) and image.mode == "L"
    assert path.split("/")[-2] == str(label)  # the class folder is the digit
    assert sorted({label for _, label in splits["test"].samples}) == list(range(10))


def test_any_resolution_is_a_decode_size(tmp_path):
    dm = HDImageDataModule(
        MNISTDigitsSource(str(tmp_path)),
        image_size=(7, 7),
        aug_scale=1.0,
        reduced_decode=False,
        batch_size=8,
        num_workers=0,
    )
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape[1:] == (3, 7, 7) and batch["image"].dtype.is_floating_point is False
    # Area downsampling keeps the stroke energy: a digit at 7 px is not blank.
    assert float(batch["image"].float().mean()) > 10
    assert np.all(batch["label"].numpy() < 10)


def test_bad_split_fractions_are_refused():
    with pytest.raises(DataSourceError, match="three positive fractions summing to 1"):
        MNISTDigitsSource("data", split_fractions=[0.5, 0.5])
