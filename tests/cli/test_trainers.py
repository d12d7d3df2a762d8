"""trainer=cpu|ddp_sim|fsdp|..., precision, and the rank-0-only run directory."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from hdvision.cli.train import train
from tests.conftest import TINY, compose

ROOT = Path(__file__).resolve().parents[2]


def test_bf16_mixed_fast_run_on_cpu(tmp_path):
    cfg = compose("train", [*TINY, "debug=fdr", "trainer.precision=bf16-mixed"], tmp_path)
    metrics, objects = train(cfg)
    assert objects["trainer"].precision == "bf16-mixed"
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))


def test_fsdp_strategy_wraps_and_checkpoints_the_backbone_blocks(tmp_path):
    from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual

    cfg = compose("train", [*TINY, "trainer=fsdp"], tmp_path)
    strategy = instantiate(cfg.trainer.strategy)
    assert type(strategy).__name__ == "FSDPStrategy"
    policy = strategy.kwargs["auto_wrap_policy"]
    assert isinstance(policy, ModuleWrapPolicy)
    assert policy._module_classes == {InvertedResidual, DepthwiseSeparableConv}
    checkpointing = strategy._activation_checkpointing_kwargs["auto_wrap_policy"]
    assert checkpointing._module_classes == {InvertedResidual, DepthwiseSeparableConv}
    assert strategy.sharding_strategy.name == "FULL_SHARD"
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.accelerator == "gpu"


def test_fsdp_unknown_block_class_is_a_clear_error(tmp_path):
    cfg = compose(
        "train", [*TINY, "trainer=fsdp", "trainer.strategy.wrap_blocks=[timm.Nope]"], tmp_path
    )
    with pytest.raises(Exception, match="cannot import block class .timm.Nope"):
        instantiate(cfg.trainer.strategy)


def test_ddp_config_has_sync_bn_and_no_unused_parameter_search(tmp_path):
    cfg = compose("train", [*TINY, "trainer=ddp"], tmp_path)
    assert cfg.trainer.sync_batchnorm is True
    assert instantiate(cfg.trainer.strategy)._ddp_kwargs["find_unused_parameters"] is False


@pytest.mark.slow
def test_ddp_sim_two_cpu_processes_one_run_directory(tmp_path):
    cmd = [sys.executable, str(ROOT / "train.py"), *TINY, "trainer=ddp_sim"]
    cmd += [f"paths.root_dir={tmp_path}", "trainer.max_epochs=2", "data.batch_size=8"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "MEMBER: 2/2" in output and "distributed_backend=gloo" in output
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()  # rank 1 made no directory
    files = sorted(p.name for p in run_dir.iterdir())
    assert [f for f in files if f.endswith(".log")] == ["train.log"]
    log = (run_dir / "train.log").read_text()
    assert log.count("Instantiating model_checkpoint") == 1  # rank 1 logged to the console only
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert "test/acc" in done.stdout


def test_slurm_trainer_takes_its_devices_from_the_submitit_launcher(tmp_path):
    overrides = [*TINY, "trainer=slurm", "hydra/launcher=slurm", "hydra.launcher.nodes=2"]
    cfg = compose("train", overrides, tmp_path)
    assert cfg.hydra.launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert cfg.trainer.devices == 4 and cfg.trainer.num_nodes == 2
    assert cfg.trainer.strategy._target_.endswith("DDPStrategy")
