"""The `hdvision` console script."""

import re

import pytest

from hdvision.cli.main import main
from tests.conftest import write_image


def _write_folder(root, classes, count):
    for cls in classes:
        for i in range(count):
            write_image(root / cls / f"{i}.jpg", seed=i)


def _on_folder(command, root):
    return [
        command,
        "data=folder",
        f"data.source.root={root}",
        "data.source.val_fraction=0",
        "data.source.test_fraction=0",
    ]


def test_check_data_prints_a_summary_and_flags_bad_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    root = tmp_path / "images"
    _write_folder(root, ("cat", "dog"), 3)
    write_image(root / "dog" / "gray.png", mode="L", fmt="PNG")
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    code = main(_on_folder("check-data", root))
    out = capsys.readouterr().out
    assert code == 1
    assert "[train] 8 images" in out and "'cat': 4" in out and "'dog': 4" in out
    assert "'L': 1" in out and "64x48" in out
    assert "bad files and entries: 1" in out and "broken.jpg" in out


def test_check_data_on_a_clean_data_set_exits_0(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    root = tmp_path / "images"
    _write_folder(root, ("a", "b"), 1)
    code = main(_on_folder("check-data", root))
    assert code == 0 and "bad files and entries: 0" in capsys.readouterr().out


def test_check_data_names_every_problem_of_a_manifest(tmp_path, capsys, monkeypatch):
    # Each kind of row a training run would refuse: a missing file, an unknown label, a file
    # labelled twice differently; and a file in two splits.
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    for i in range(4):
        write_image(tmp_path / f"{i}.jpg", seed=i)
    (tmp_path / "train.csv").write_text(
        "path,label\n0.jpg,cat\n1.jpg,dog\n2.jpg,cat\ngone.jpg,dog\n1.jpg,cat\n"
    )
    (tmp_path / "val.csv").write_text("path,label\n3.jpg,cat\n3.jpg,dog\n2.jpg,zebra\n")
    args = ["check-data", "data=manifest", f"data.source.train={tmp_path / 'train.csv'}"]
    args += [f"data.source.val={tmp_path / 'val.csv'}", "data.source.test=null"]
    code = main(args)
    out = capsys.readouterr().out
    assert code == 1
    assert "bad files and entries: 4" in out
    assert "gone.jpg does not exist" in out and "unknown label 'zebra'" in out
    assert out.count("is labelled") == 2  # 1.jpg in train, 3.jpg in val


def test_check_data_names_links_and_duplicates_in_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    root = tmp_path / "images"
    _write_folder(root, ("a", "b"), 2)
    (root / "a" / "loop").symlink_to(root / "a")  # a link loop
    (root / "b" / "more").symlink_to(root / "a")  # a class folder's images under another class
    (root / "b" / "copy.jpg").symlink_to(root / "b" / "0.jpg")  # the same file twice
    code = main(_on_folder("check-data", root))
    out = capsys.readouterr().out
    assert code == 1 and "bad files and entries: 3" in out
    assert "a/loop: a link loop" in out and "b/more: a link to a folder" in out
    assert "b/copy.jpg: the same file as" in out or "b/0.jpg: the same file as" in out


def test_cost_prints_stem_and_backbone(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    code = main(
        [
            "cost",
            "model.backbone.name=test_efficientnet",
            "model.backbone.weights=null",
            "data.source.canvas=[64,96]",
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
    parts = r"inference \(eval, no grad\), ms per image: prepare [0-9.]+, stem [0-9.]+, backbone"
    assert re.search(parts, out)


def test_unknown_subcommand_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["train-everything"])


def test_bench_loader_times_the_configured_train_loader(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    root = tmp_path / "images"
    _write_folder(root, ("a", "b"), 3)
    code = main(
        [
            *_on_folder("bench-loader", root),
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


def test_check_data_reports_a_file_pillow_refuses_before_decoding(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDVISION_ROOT", str(tmp_path))
    root = tmp_path / "images"
    _write_folder(root, ("cat", "dog"), 3)
    write_image(root / "cat" / "huge.png", (200, 200), fmt="PNG")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    code = main(_on_folder("check-data", root) + ["data.max_pixels=10000"])  # huge: 4x that
    out = capsys.readouterr().out
    assert code == 1
    assert "bad files and entries: 2" in out
    assert "huge.png: too large" in out and "broken.jpg" in out
