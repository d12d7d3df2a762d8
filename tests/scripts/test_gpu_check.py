"""The GPU check cannot rot between lent sessions: its configs compose, its steps report, its
parser reads its own output."""

import importlib.util
import json
from pathlib import Path

import pytest
from hydra.utils import instantiate

from tests.conftest import compose
from tests.helpers.run_if import RunIf

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"
_spec = importlib.util.spec_from_file_location("gpu_check", _SCRIPT)
assert _spec is not None and _spec.loader is not None
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)

SAMPLE = """\
Tesla H200, 143771 MiB, 580.159
GPUCHECK {"step": "precision_bf16-mixed", "status": "ok", "train_img_s": 812.5, "peak_gpu_gb": 3.25}
some log line
GPUCHECK {"step": "fsdp_1_device", "status": "failed", "error": "RuntimeError: boom"}
"""


@pytest.mark.parametrize("step", [s for s, (o, _) in gpu_check.STEPS.items() if o])
def test_every_step_config_composes_and_builds_its_model(step, tmp_path):
    overrides, limit = gpu_check.STEPS[step]
    cfg = compose("train", overrides, tmp_path)
    assert cfg.trainer.accelerator == "gpu" and 0 < limit <= 120
    model = instantiate(cfg.model, num_classes=10)
    assert model.hparams.backbone["name"] == "tf_efficientnet_lite0"
    assert instantiate(cfg.data).sample_size == (270, 480)


def test_the_parser_reads_the_scripts_output():
    records = gpu_check.parse_output(SAMPLE)
    assert [r["step"] for r in records] == ["precision_bf16-mixed", "fsdp_1_device"]
    table = gpu_check.format_table(records)
    assert "train_img_s 812.5" in table and "failed" in table and "boom" in table


@RunIf(no_cuda=True)
def test_without_cuda_every_step_says_skipped(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gpu_check, "STEPS", {k: gpu_check.STEPS[k] for k in ("compile",)})
    assert gpu_check.main(["--root", str(tmp_path), "--out", str(tmp_path)]) == 0
    (record,) = json.loads((tmp_path / "gpu_check.json").read_text())
    assert record == {"step": "compile", "status": "skipped", "reason": "no CUDA device"}
    assert "compile" in capsys.readouterr().out
