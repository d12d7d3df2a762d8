"""What a process knows about the run it is part of: its rank, the trainer's datamodule."""

from __future__ import annotations

from typing import Any

from lightning_fabric.utilities.rank_zero import rank_zero_only


def is_rank_zero() -> bool:
    """Whether this process is global rank 0 (Lightning sets ``rank_zero_only.rank`` from the
    launcher's environment before the run starts; a plain process is rank 0)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def datamodule_of(trainer: Any) -> Any:
    """The trainer's LightningDataModule, or None (Lightning sets ``trainer.datamodule`` when a
    fit starts; it is not declared on the class)."""
    return getattr(trainer, "datamodule", None)
