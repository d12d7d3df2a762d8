import numpy as np
import torch
from PIL import Image

from hdvision.cli.train import train
from hdvision.models.module import HDClassifier
from hdvision.plots import plot_confusion, stem_views
from tests.conftest import TINY, compose


def _model(stem: dict) -> HDClassifier:
    backbone = {"name": "test_efficientnet", "weights": None}
    return HDClassifier(backbone=backbone, stem=stem, num_classes=10, backbone_input=[16, 24])


def test_stem_views_show_the_backbone_input_next_to_the_area_resize():
    images = torch.randint(0, 256, (3, 3, 64, 96), dtype=torch.uint8)
    resize_model = _model({"name": "resize"})
    views = stem_views(resize_model, resize_model.prepare_input(images))
    assert views["stem"].shape == (3, 16, 24, 3) and views["stem"].dtype == np.uint8
    np.testing.assert_array_equal(views["stem"], views["area"])  # the resize stem *is* area
    learned = _model({"name": "space_to_depth", "factor": 4})
    with torch.no_grad():  # move the learned path away from its zero init
        learned.stem.body[-1].weight.normal_(0, 1.0)
    views = stem_views(learned, learned.prepare_input(images))
    assert np.abs(views["stem"].astype(int) - views["area"].astype(int)).mean() > 1
    # The zoom is handed pixel values (it normalises inside): its views are still the pixels.
    zoom = _model({"name": "saliency_sampler", "inner": {"name": "resize"}, "detail_prior": False})
    views = stem_views(zoom, zoom.prepare_input(images))
    area = torch.nn.functional.adaptive_avg_pool2d(images.float(), (16, 24))
    expected = area.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.abs(views["area"].astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(views["stem"].astype(int) - expected.astype(int)).max() <= 1  # no zoom yet


def test_confusion_plot_is_an_image():
    confusion = np.diag([3, 4, 5])
    image = plot_confusion(confusion, ["a", "b", "c"])
    assert image.ndim == 3 and image.shape[2] == 3 and image.std() > 0


def test_a_run_writes_image_grids_and_confusion_matrices(tmp_path):
    cfg = compose("train", [*TINY, "trainer.max_epochs=2"], tmp_path)
    _, objects = train(cfg)
    callback = next(c for c in objects["callbacks"] if type(c).__name__ == "ValidationImages")
    out = tmp_path / "out" / "val_images"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "confusion_epoch_000.png",
        "confusion_epoch_001.png",
        "epoch_000.png",
        "epoch_001.png",
    ]
    grid = Image.open(out / "epoch_001.png")
    assert grid.width > 8 * 100  # 8 images side by side
    assert int(callback.last_confusion.sum()) == 8  # every val image counted once
