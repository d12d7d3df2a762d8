"""`hdvision predict` from the checkpoint alone: rows = files, errors in the CSV, metrics."""

import csv
import shutil

import pytest

from hdvision.cli.main import main
from tests.conftest import write_image


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def mixed_folder(trained_run, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    tests = sorted((trained_run["data"] / "test").glob("*.jpg"))[:5]
    for p in tests:
        shutil.copy(p, folder / p.name)
    shutil.copy(tests[0], folder / "jpeg_without_extension.dat")  # read by content
    (folder / "notes.txt").write_text("not an image")
    (folder / "cut.jpg").write_bytes(tests[1].read_bytes()[:200])
    return folder


def test_bad_files_stop_the_run_naming_the_file(trained_run, mixed_folder, tmp_path, capsys):
    code = main(
        [
            "predict",
            str(trained_run["ckpt"]),
            str(mixed_folder),
            "--out",
            str(tmp_path / "p.csv"),
            "--workers",
            "0",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "cut.jpg" in err and "--on-bad-image skip" in err and "Traceback" not in err


def test_skip_writes_one_row_per_file_with_the_errors(trained_run, mixed_folder, tmp_path, capsys):
    out = tmp_path / "p.csv"
    code = main(
        [
            "predict",
            str(trained_run["ckpt"]),
            str(mixed_folder),
            "--out",
            str(out),
            "--on-bad-image",
            "skip",
            "--top-k",
            "3",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    rows = _rows(out)
    assert len(rows) == 8  # rows out = files in
    assert list(rows[0]) == [
        "path",
        "label",
        "score",
        "top1_label",
        "top1_score",
        "top2_label",
        "top2_score",
        "top3_label",
        "top3_score",
        "true_label",
        "error",
    ]
    bad = {r["path"].rsplit("/", 1)[-1]: r for r in rows if r["error"]}
    assert set(bad) == {"cut.jpg", "notes.txt"}
    assert "not an image" in bad["notes.txt"]["error"] and bad["notes.txt"]["label"] == ""
    good = [r for r in rows if not r["error"]]
    for r in good:
        assert r["label"] == r["top1_label"] and r["label"] in [str(i) for i in range(10)]
        assert 1 >= float(r["top1_score"]) >= float(r["top2_score"]) >= float(r["top3_score"]) >= 0
    same = {r["path"].rsplit("/", 1)[-1]: r["label"] for r in good}
    first = sorted(p.name for p in mixed_folder.glob("0*.jpg"))[0]
    assert same["jpeg_without_extension.dat"] == same[first]
    assert "2 bad files" in capsys.readouterr().out


def test_predictions_match_the_trained_model(trained_run, tmp_path):
    out = tmp_path / "p.csv"
    manifest = trained_run["data"] / "test.csv"
    assert (
        main(
            [
                "predict",
                str(trained_run["ckpt"]),
                str(manifest),
                "--out",
                str(out),
                "--workers",
                "0",
            ]
        )
        == 0
    )
    rows = _rows(out)
    assert [r["true_label"] for r in rows] == [r["label"] for r in _rows(manifest)]
    accuracy = sum(r["label"] == r["true_label"] for r in rows) / len(rows)
    # The same images, decode path and weights as train.py's test of the best checkpoint.
    assert accuracy == pytest.approx(trained_run["metrics"]["test/acc"])
    assert (tmp_path / "p_confusion.png").stat().st_size > 1000


def test_save_views_writes_input_and_stem_output(trained_run, tmp_path):
    images = sorted((trained_run["data"] / "test").glob("*.jpg"))[:3]
    views = tmp_path / "views"
    args = [
        "predict",
        str(trained_run["ckpt"]),
        *map(str, images),
        "--out",
        str(tmp_path / "p.csv"),
    ]
    assert main([*args, "--save-views", str(views), "--num-views", "2", "--workers", "0"]) == 0
    assert len(list(views.glob("*.png"))) == 2


@pytest.mark.parametrize("case", ["missing", "empty_folder", "foreign_onnx"])
def test_bad_model_or_input_gets_one_line(trained_run, tmp_path, capsys, case):
    image = write_image(tmp_path / "a.jpg")
    model, inputs = str(trained_run["ckpt"]), [str(image)]
    if case == "missing":
        model = str(tmp_path / "nope.ckpt")
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        inputs = [str(tmp_path / "empty")]
    else:
        import onnx
        from onnx import helper

        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
        )
        model = str(tmp_path / "other.onnx")
        onnx.save(helper.make_model(graph), model)
    assert main(["predict", model, *inputs, "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hdvision predict: error:")
    assert {
        "missing": "nope.ckpt",
        "empty_folder": "holds no files",
        "foreign_onnx": "without hdvision metadata",
    }[case] in err


def test_cuda_without_a_gpu_and_foreign_labels_get_one_line(trained_run, tmp_path, capsys):
    import torch

    image = write_image(tmp_path / "a.jpg")
    ckpt, out = str(trained_run["ckpt"]), str(tmp_path / "p.csv")
    real = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        assert main(["predict", ckpt, str(image), "--out", out, "--device", "cuda"]) == 2
    finally:
        torch.cuda.is_available = real
    assert "torch sees no CUDA device" in capsys.readouterr().err
    (tmp_path / "m.csv").write_text("path,label\na.jpg,zebra\n")
    assert main(["predict", ckpt, str(tmp_path / "m.csv"), "--out", out, "--workers", "0"]) == 2
    assert "['zebra'] in the manifest are not among the model's classes" in capsys.readouterr().err


def test_predict_on_shards_over_http_matches_the_files(trained_run, tmp_path, monkeypatch):
    from hdvision.data.shard_writer import write_shards
    from hdvision.data.sources import ManifestSource
    from tests.helpers.servers import http_server

    data = trained_run["data"]
    source = ManifestSource(*(str(data / f"{s}.csv") for s in ("train", "val", "test")))
    names = source.class_names()
    write_shards(source.splits(names), names, tmp_path / "site" / "digits", 4_000)
    monkeypatch.chdir(tmp_path)  # the chunk cache goes to ./data/shard_cache
    out = tmp_path / "p.csv"
    with http_server(tmp_path / "site") as url:
        args = ["predict", str(trained_run["ckpt"]), f"{url}/digits/test", "--out", str(out)]
        assert main([*args, "--workers", "2"]) == 0
    rows = _rows(out)
    assert len(rows) == len(_rows(data / "test.csv"))
    assert all("/digits/test/chunk-" in r["path"] and ".bin: " in r["path"] for r in rows)
    accuracy = sum(r["label"] == r["true_label"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(trained_run["metrics"]["test/acc"])
