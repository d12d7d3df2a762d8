from hdvision.cli.main import main
from hdvision.tools.data_pipeline import make_test_jpegs, run_benchmark


def test_benchmark_runs_on_generated_jpegs_and_prints_numbers(capsys):
    result = run_benchmark(None, (96, 160), aug_scale=0.25, workers=0, limit=6)
    assert result["naive_img_s"] > 0 and result["hdvision_img_s"] > 0
    assert result["speedup"] == result["hdvision_img_s"] / result["naive_img_s"]
    out = capsys.readouterr().out
    assert "speed-up" in out and "GaussNoise on the device" in out
    assert result["hdvision_device_noise_img_s"] > 0 and result["device_noise_ms"] > 0
    assert set(result["transform_ms"]) == {"HorizontalFlip", "Affine", "ColorJitter", "GaussNoise"}
    assert all(len(ms) == 2 and min(ms) > 0 for ms in result["transform_ms"].values())


def test_cli_benchmark_on_a_folder_writes_json(tmp_path):
    make_test_jpegs(tmp_path, 3, (64, 96))
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench-data",
            "--images",
            str(tmp_path),
            "--size",
            "64x96",
            "--workers",
            "0",
            "--limit",
            "4",
            "--json",
            str(out),
        ]
    )
    assert code == 0 and '"hdvision_img_s"' in out.read_text()
