"""A save that dies half-way leaves the previous checkpoint whole and no temporary file."""

import pytest
import torch

from hdvision.trainer.checkpoint_io import AtomicCheckpointIO


class Unpicklable:
    def __reduce__(self):
        raise OSError(28, "No space left on device")  # as a full disk fails a write


def test_an_interrupted_save_keeps_the_previous_checkpoint(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "w": torch.ones(1000)}, path)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"global_step": 2, "w": torch.ones(1000), "x": Unpicklable()}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
    io.save_checkpoint({"global_step": 3}, path)
    assert io.load_checkpoint(path, weights_only=True)["global_step"] == 3


def test_the_trainer_config_uses_it(tmp_path):
    from hdvision.cli.runtime import build
    from tests.conftest import TINY, compose

    trainer = build(compose("train", TINY, tmp_path))["trainer"]
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
