"""Logger factories with the defaults hdvision wants (Hydra targets these, not the classes)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        entry = netrc.netrc(Path.home() / ".netrc").authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
    return entry is not None


def wandb_logger(offline: bool | None = None, **kwargs: Any) -> WandbLogger:
    """W&B logger that runs offline (saved locally, `wandb sync` later) when no API key is set.

    ``offline=None`` decides from the credentials; ``WANDB_MODE=offline`` forces it as well.
    """
    if offline is None:
        offline = os.environ.get("WANDB_MODE") == "offline" or not wandb_has_credentials()
    return WandbLogger(offline=offline, **kwargs)
