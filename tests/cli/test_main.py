"""The `hdvision` console script."""

import re

import pytest

from hdvision.cli.main import main
from tests.conftest import write_image


def _check_data(root):
    return [
        "check-data",
        "data=folder",
        f"data.root={root}",
        "data.val_fraction=0",
        "data.test_fraction=0",
    ]


def test_check_data_prints_a_summary_and_flags_bad_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    root = tmp_path / "images"
    for cls in ("cat", "dog"):
        for i in range(3):
            write_image(root / cls / f"{i}.jpg", seed=i)
    write_image(root / "dog" / "gray.png", mode="L", fmt="PNG")
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    code = main(_check_data(root))
    out = capsys.readouterr().out
    assert code == 1
    assert "[train] 8 images" in out and "'cat': 4" in out and "'dog': 4" in out
    assert "'L': 1" in out and "64x48" in out
    assert "bad files: 1" in out and "broken.jpg" in out


def test_check_data_on_a_clean_data_set_exits_0(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    root = tmp_path / "images"
    for cls in ("a", "b"):
        write_image(root / cls / "0.jpg")
    code = main(_check_data(root))
    assert code == 0 and "bad files: 0" in capsys.readouterr().out


def test_cost_prints_stem_and_backbone(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    code = main(
        [
            "cost",
            "model.backbone.name=test_efficientnet",
            "model.backbone.weights=null",
            "data.hd_digits.canvas=[64,96]",
            "data.aug_scale=1.0",
            "model.backbone_input=[16,24]",
            "--time-steps=1",
            "--batch-size=2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "stem" in out and "backbone" in out and "GFLOPs" in out
    step = r"train step: [0-9.]+ ms per image, peak memory \+\d+ MB per image \(batch 2"
    assert re.search(step, out)


def test_unknown_subcommand_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["train-everything"])


def test_bench_loader_times_the_configured_train_loader(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    root = tmp_path / "images"
    for cls in ("a", "b"):
        for i in range(3):
            write_image(root / cls / f"{i}.jpg", seed=i)
    code = main(
        [
            "bench-loader",
            "data=folder",
            f"data.root={root}",
            "data.val_fraction=0",
            "data.test_fraction=0",
            "data.image_size=[48,64]",
            "data.aug_scale=0.5",
            "data.batch_size=2",
            "data.num_workers=0",
            "--batches=4",
        ]
    )
    out = capsys.readouterr().out
    # 4 batches of 2 after the warm-up one: the 3-batch epoch is cycled, not cut short.
    assert code == 0 and "over 8 images" in out
    assert "decode/augment at 24x32, batches at 24x32, 0 workers" in out
