"""Trainer-side pieces: atomic checkpoint writes, the FSDP strategy factory, logger factories, the
process's rank. Configs name them by these short paths (``hdvision.trainer.AtomicCheckpointIO``)."""

from hdvision.trainer.checkpoint_io import AtomicCheckpointIO
from hdvision.trainer.context import datamodule_of, is_rank_zero
from hdvision.trainer.loggers import wandb_logger
from hdvision.trainer.strategies import fsdp_strategy

__all__ = ["AtomicCheckpointIO", "datamodule_of", "fsdp_strategy", "is_rank_zero", "wandb_logger"]
