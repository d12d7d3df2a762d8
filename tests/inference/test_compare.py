import json

from hdvision.cli.main import main
from hdvision.compress.prune import prune_checkpoint


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
    assert 0.0 <= small["accuracy"] <= 1.0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 4 and table[2].startswith(f"| {trained_run['ckpt'].name} |")
