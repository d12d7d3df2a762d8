"""Online canvases: fresh every epoch, from the training split's source digits only, decoded as
the files are."""

import numpy as np
import torch
from PIL import Image

from hdvision.data import HDImageDataModule
from hdvision.data.decode import DecodeSettings
from hdvision.data.hd_digits import HDDigitsSpec, load_mnist_digits, split_source_digits
from hdvision.data.online import OnlineCanvases
from hdvision.data.sources import HDDigitsSource

SPEC = HDDigitsSpec(
    canvas=(64, 96), digit_size=16, num_distractors=2, num_train=8, num_val=4, num_test=4
)


def test_online_canvases_never_draw_a_validation_or_test_digit():
    _, labels = load_mnist_digits()
    pools = split_source_digits(labels, SPEC.split_fractions, SPEC.seed)
    held_out = set(pools["val"].tolist()) | set(pools["test"].tolist())
    data = OnlineCanvases(SPEC, 8, DecodeSettings((32, 48)))
    drawn = [d for seed in range(60) for d in data.compose(seed % 8, seed)[2]]
    assert len(drawn) == 60 * 5
    assert not held_out & set(drawn)
    assert set(drawn) <= set(pools["train"].tolist())
    assert len(set(drawn)) > 100  # many different digits, not a few reused


def test_each_seed_composes_a_new_canvas_and_the_same_seed_the_same_one():
    data = OnlineCanvases(SPEC, 8, DecodeSettings((32, 48)))
    first, again, other = data.compose(3, 11), data.compose(3, 11), data.compose(3, 12)
    assert np.array_equal(first[0], again[0]) and first[1:] == again[1:]
    assert not np.array_equal(first[0], other[0])
    assert len({data.compose(0, seed)[1] for seed in range(80)}) == 10  # every class turns up


def test_an_online_canvas_decodes_as_its_file_would(tmp_path):
    decode = DecodeSettings((32, 48))
    for image_format in ("png", "jpg"):
        spec = HDDigitsSpec(**{**SPEC.__dict__, "image_format": image_format})
        data = OnlineCanvases(spec, 8, decode)
        canvas, _, _ = data.compose(0, 5)
        path = tmp_path / f"canvas.{image_format}"
        Image.fromarray(canvas).convert(spec.mode).save(path, quality=spec.jpeg_quality)
        assert np.array_equal(data.decoded(canvas), decode(path))


def test_the_datamodule_trains_on_fresh_canvases_and_evaluates_on_the_files(tmp_path):
    source = HDDigitsSource(out_dir=str(tmp_path), online=True, **SPEC.__dict__)
    dm = HDImageDataModule(
        source, image_size=(64, 96), aug_scale=0.5, batch_size=4, num_workers=0, seed=1
    )
    dm.prepare_data()
    dm.setup("fit")
    assert isinstance(dm.datasets["train"], OnlineCanvases)
    assert not isinstance(dm.datasets["val"], OnlineCanvases)
    loader = dm.train_dataloader()
    epochs = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        epochs.append(torch.cat([batch["image"] for batch in loader]))
    assert epochs[0].shape == (8, 3, 32, 48)
    assert not torch.equal(epochs[0], epochs[1])
    # Without online, the same source trains on the generated files.
    files = HDImageDataModule(
        HDDigitsSource(out_dir=str(tmp_path), **SPEC.__dict__),
        image_size=(64, 96),
        aug_scale=0.5,
        batch_size=4,
        num_workers=0,
    )
    files.setup("fit")
    assert not isinstance(files.datasets["train"], OnlineCanvases)
    assert len(files.datasets["train"]) == len(dm.datasets["train"]) == 8
