import json

import pytest

from hdvision.cli.main import main
from hdvision.compress.prune import prune_checkpoint
from hdvision.inference.inputs import list_inputs
from hdvision.inference.predictor import TorchPredictor
from hdvision.inference.samples import decoded_batch


def test_bench_models_measures_each_checkpoint_on_the_same_images(trained_run, tmp_path, capsys):
    pruned = tmp_path / "p.ckpt"
    prune_checkpoint(trained_run["ckpt"], pruned, 0.5)
    out = tmp_path / "cmp.json"
    argv = ["bench-models", str(trained_run["ckpt"]), str(pruned), "--num-images", "8"]
    assert main([*argv, "--batch-size", "4", "--repeats", "2", "--json", str(out)]) == 0
    full, small = json.loads(out.read_text())
    assert (full["pruned"], small["pruned"]) == (0.0, 0.5)
    assert small["backbone_params"] < full["backbone_params"]
    assert small["backbone_gflops"] < full["backbone_gflops"]
    # The stem is not pruned: the whole model's FLOPs drop by the backbone's drop exactly.
    drop = full["backbone_gflops"] - small["backbone_gflops"]
    assert abs(full["gflops"] - small["gflops"] - drop) < 1e-6
    assert full["images"] == small["images"] == 8
    assert all(r["ms_per_image"] > 0 and r["backbone_ms_per_image"] > 0 for r in (full, small))
    # Measured on the 8 images the checkpoint's training data starts with: the predictor agrees.
    rows = list_inputs([trained_run["ckpt_training_data"]])[:8]
    predictor = TorchPredictor(pruned)
    images = decoded_batch(rows, predictor.meta["preprocessing"])
    labels = [int(r.label) for r in rows]
    assert small["accuracy"] == pytest.approx(float((predictor(images).argmax(1) == labels).mean()))
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 4 and table[2].startswith(f"| {trained_run['ckpt'].name} |")
