"""logger=wandb without network: an offline run directory with metrics, config and images."""

import re
import time
from pathlib import Path

import pytest

from hdvision.cli.train import main
from hdvision.trainer.loggers import RUN_ID_FILE, wandb_logger
from tests.conftest import TINY, compose, counted_over


def _history_value(record_bytes: bytes, key: str) -> float:
    # HistoryItem protobuf: key (field 2), then value_json (field 16, tag bytes 0x82 0x01).
    match = re.search(re.escape(key.encode()) + rb"\x82\x01(.)", record_bytes, re.S)
    assert match, f"{key} not in the W&B run file"
    start = match.end()
    return float(record_bytes[start : start + match.group(1)[0]])


def _read_when_flushed(path: Path, last_key: bytes, timeout: float = 30.0) -> bytes:
    # wandb-core's writer may still be flushing the last records when wandb.finish() returns.
    deadline = time.monotonic() + timeout
    while last_key not in (data := path.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return data


@pytest.mark.slow
def test_offline_wandb_run_has_metrics_config_and_images(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc credentials
    cfg = compose("train", ["experiment=effnet_hd", *TINY, "logger=wandb"], tmp_path)
    main(cfg)
    out = tmp_path / "out"
    run_id = (out / RUN_ID_FILE).read_text()
    (run_dir,) = (out / "wandb").glob(f"offline-run-*-{run_id}")
    data = _read_when_flushed(run_dir / f"run-{run_id}.wandb", b"test/acc")
    test_acc = _history_value(data, "test/acc")
    assert counted_over(test_acc, 8)  # TINY: 8 test images
    assert b"effnet_hd" in data  # grouped by experiment (and the resolved config)
    assert b"hd_digits" in data
    media = run_dir / "files" / "media" / "images" / "val"
    assert list(media.glob("images_*.png")) and list(media.glob("confusion_*.png"))


def test_a_run_directory_keeps_its_wandb_run_id(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    first = wandb_logger(save_dir=str(tmp_path), project="t")
    again = wandb_logger(save_dir=str(tmp_path), project="t")  # e.g. ckpt_path=last
    other = wandb_logger(save_dir=str(tmp_path / "other"), project="t")
    assert first._wandb_init["id"] == again._wandb_init["id"] != other._wandb_init["id"]
    assert again._wandb_init["resume"] == "allow"
