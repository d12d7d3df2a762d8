"""Shared fixtures: tiny generated images and a composed, tiny Hydra config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CONF_DIR = str(Path(__file__).resolve().parents[1] / "src" / "hdvision" / "conf")

# A whole train/val/test cycle in seconds: 64x96 canvases, a 0.1M-parameter timm test model.
TINY = [
    "data.source.canvas=[64,96]",
    "data.source.digit_size=16",
    "data.source.num_train=24",
    "data.source.num_val=8",
    "data.source.num_test=8",
    "data.source.workers=1",
    "data.batch_size=4",
    "data.eval_batch_size=4",
    "data.num_workers=0",
    "model.backbone.name=test_efficientnet",
    "model.backbone.weights=null",
    "model.backbone_input=[16,24]",
    "trainer.max_epochs=1",
    "extras.print_config=false",
    "extras.cost_report=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.rich_model_summary=null",
]
# The same for data=folder / data=manifest.
TINY_FOLDER = [o for o in TINY if not o.startswith("data.source.")] + [
    "data.image_size=[32,48]",
    "data.aug_scale=1.0",
]


def counted_over(value: float, n: int) -> bool:
    """Whether ``value`` is an accuracy over ``n`` images: k/n for a whole k in [0, n]."""
    k = value * n
    return 0 <= k <= n and abs(k - round(k)) < 1e-4


def compose(config_name: str, overrides: list[str], root: Path):
    """Compose ``hdvision/conf/<config_name>.yaml`` as Hydra would, with outputs under ``root``."""
    from hdvision.cli.runtime import compose_outside_hydra_main

    (root / "out").mkdir(parents=True, exist_ok=True)
    overrides = [*overrides, f"paths.root_dir={root}"]
    return compose_outside_hydra_main(CONF_DIR, config_name, overrides, root / "out", root)


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)


def write_image(path: Path, size=(48, 64), mode="RGB", fmt=None, seed=0) -> Path:
    """A textured image (h, w) so that resize differences are measurable."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(xx / 5.0) * 60 + np.cos(yy / 7.0) * 60 + 128).astype(np.float64)
    rgb = np.stack([base, base[::-1], base[:, ::-1]], -1) + rng.normal(0, 8, (h, w, 3))
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """root/<class>/*.jpg with 3 classes x 6 images."""
    root = tmp_path / "folder"
    for c, name in enumerate(["cat", "dog", "eel"]):
        for i in range(6):
            write_image(root / name / f"{i}.jpg", seed=c * 10 + i)
    return root


# The default run's stem (saliency sampler, channels-last) on the tiny data: one epoch.
TINY_SALIENCY = [*TINY, "model/stem=saliency_sampler", "model.channels_last=true"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> dict:
    """A tiny run trained once per session: its best checkpoint, data folder and trained model."""
    from hdvision.cli.train import train

    root = tmp_path_factory.mktemp("trained")
    metrics, objects = train(compose("train", TINY_SALIENCY, root))
    data = next((root / "data").glob("hd_digits_*"))
    ckpt = Path(objects["trainer"].checkpoint_callback.best_model_path)
    return {
        "ckpt": ckpt,
        "ckpt_training_data": str(data / "train.csv"),  # what the checkpoint records
        "data": data,
        "model": objects["model"],
        "metrics": metrics,
    }
