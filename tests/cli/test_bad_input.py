"""Every command answers bad input with one line that names the value, and a non-zero exit: a
config typo, an unknown option or backbone (with the closest names), a missing path, an unusable
file, an unwritable output and a malformed argument. The table must cover every command, so a new
command cannot skip it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hdvision.cli.main import HYDRA_COMMANDS, MODULE_OF, main
from tests.conftest import TINY, write_image

# (command, arguments, what the one line must say); {ckpt}: a trained checkpoint, {file}: a
# regular file (a folder expected below it cannot be written), {junk}: a file that is no model.
CASES = [
    ("check-data", ["experiment=effnet_hdd"], "closest: effnet_hd"),
    ("check-data", ["data=foldr"], "closest: folder"),
    ("check-data", ["data=folder", "data.source.root=/nonexistent"], "/nonexistent"),
    ("check-data", ["data.batch_size=0"], "data.batch_size must be a positive integer"),
    ("check-data", ["data=shards", "data.source.uri=/nonexistent"], "holds no hdvision shards"),
    ("shard", ["data=folder", "data.source.root=/nonexistent", "--out", "x"], "/nonexistent"),
    ("shard", ["--out", "x", "--shard-size", "lots"], "must be a size such as 256MB"),
    ("shard", ["--shard-size", "1GB"], "the following arguments are required: --out"),
    ("cost", ["model.backbone.name=resnet999"], "closest: resnet"),
    ("cost", ["data.batch_sizee=3"], "Could not override 'data.batch_sizee'"),
    ("cost", ["--batch-size", "0"], "must be a positive integer, got 0"),
    ("bench-loader", ["model/stem=zoomm"], "model/stem/zoomm"),
    ("bench-loader", ["--split", "tran"], "invalid choice: 'tran'"),
    ("bench-data", ["--size", "10x"], "must be HxW"),
    ("bench-data", ["--images", "/nonexistent"], "--images /nonexistent: no such folder"),
    ("bench-data", ["--aug-scale", "2"], "must be in (0, 1]"),
    ("sweep-summary", ["/nonexistent"], "/nonexistent: no trials.csv"),
    ("sweep-summary", ["{junk}"], "not a trials.csv of hdvision"),
    ("compare", ["experiment=effnet_hd", "--variants", "stems_rsize", "--images", "8"], "closest"),
    ("compare", ["experiment=effnet_hd", "--minutes", "-1"], "must be > 0"),
    ("resolution-search", ["--model", "resnet999", "--from", "7", "--to", "14"], "resnet999"),
    ("resolution-search", ["--from", "seven", "--to", "14"], "invalid int value: 'seven'"),
    ("predict", ["/nonexistent.ckpt", "{file}"], "/nonexistent.ckpt: no such model file"),
    ("predict", ["{junk}", "{file}"], "cannot load it"),
    ("predict", ["{ckpt}", "/nonexistent.jpg"], "input /nonexistent.jpg does not exist"),
    ("predict", ["{ckpt}", "{file}", "--out", "{file}/preds.csv"], "cannot write"),
    ("predict", ["{ckpt}", "{file}", "--top-k", "0"], "must be a positive integer, got 0"),
    ("predict", ["{ckpt}", "{file}", "--device", "tpu"], "invalid choice: 'tpu'"),
    ("export", ["/nonexistent.ckpt"], "/nonexistent.ckpt"),
    ("export", ["{ckpt}", "--calibration-images", "/nonexistent"], "/nonexistent"),
    ("export", ["{ckpt}", "--num-images", "none"], "must be an integer, got 'none'"),
    ("quantize", ["{junk}", "--calibration", "{file}"], "onnxruntime cannot load it"),
    ("quantize", ["{junk}", "--method", "kl"], "invalid choice: 'kl'"),
    ("quantize", ["{junk}", "--bias-correction", "-1"], "got -1"),
    ("bench-infer", ["/nonexistent.ckpt"], "/nonexistent.ckpt"),
    ("bench-infer", ["{ckpt}", "--images", "/nonexistent"], "/nonexistent"),
    ("bench-models", ["{ckpt}", "/nonexistent.ckpt"], "/nonexistent.ckpt"),
    ("prune", ["{ckpt}", "--ratio", "2"], "ratio"),
    ("prune", ["{junk}", "--ratio", "0.25"], "truncated or not a torch checkpoint"),
    ("prune", ["{ckpt}", "--ratio", "0.25", "--importance", "l3"], "invalid choice: 'l3'"),
    ("prune", ["{ckpt}", "--ratio", "0.25", "--round-to", "0"], "--round-to: must be a positive"),
    ("qat", ["{junk}"], "truncated or not a torch checkpoint"),
    ("qat", ["{ckpt}", "--lr", "0"], "must be > 0"),
    ("qat", ["{ckpt}", "--images", "{file}"], "labelled images"),
]


def test_the_table_covers_every_command():
    assert {c for c, _, _ in CASES} == set(MODULE_OF)
    assert {c for c, _, _ in HYDRA_CASES} == set(HYDRA_COMMANDS)


@pytest.mark.parametrize("command, arguments, message", CASES)
def test_bad_input_gets_one_line(command, arguments, message, trained_run, tmp_path, capsys):
    write_image(tmp_path / "image.jpg")
    (tmp_path / "junk").write_bytes(b"\x00junk")
    names = {"ckpt": str(trained_run["ckpt"]), "file": str(tmp_path / "image.jpg")}
    names["junk"] = str(tmp_path / "junk")
    argv = [command, *(a.format(**names) for a in arguments)]
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err


TINY_DATA = [o for o in TINY if o.startswith("data.source.")]
HYDRA_CASES = [
    ("train", ["experiment=effnet_hdd"], "effnet_hdd"),
    # Tiny data: the run generates its data set before it builds the model.
    ("train", [*TINY_DATA, "model.backbone.name=resnet999"], "closest: resnet"),
    ("eval", ["ckpt_path=/nonexistent.ckpt"], "/nonexistent.ckpt"),
]


@pytest.mark.parametrize("command, arguments, message", HYDRA_CASES)
def test_the_training_entry_points_answer_without_a_traceback(
    command, arguments, message, tmp_path
):
    run = subprocess.run(
        [sys.executable, "-m", f"hdvision.cli.hydra_{command}", *arguments, "hydra.run.dir=."],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"HDVISION_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and message in run.stderr, run.stderr
