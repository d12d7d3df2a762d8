"""Logger factories with the defaults hdvision wants (Hydra targets these, not the classes)."""

from __future__ import annotations

import netrc
import os
import uuid
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger

from hdvision.trainer.context import is_rank_zero

RUN_ID_FILE = "wandb_run_id"


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        entry = netrc.netrc(Path.home() / ".netrc").authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
    return entry is not None


def wandb_logger(offline: bool | None = None, save_dir: str = ".", **kwargs: Any) -> WandbLogger:
    """W&B logger that runs offline (saved locally, `wandb sync` later) when no API key is set.

    ``offline=None`` decides from the credentials; ``WANDB_MODE=offline`` forces it as well.
    The run id is kept in ``<save_dir>/wandb_run_id``: a run resumed in the same directory
    (``ckpt_path=last``) continues the same W&B run.
    """
    if offline is None:
        offline = os.environ.get("WANDB_MODE") == "offline" or not wandb_has_credentials()
    if kwargs.get("id") is None:
        id_file = Path(save_dir, RUN_ID_FILE)
        if id_file.is_file():
            kwargs.update(id=id_file.read_text().strip(), resume="allow")
        else:
            kwargs["id"] = uuid.uuid4().hex[:8]
            if is_rank_zero():
                id_file.parent.mkdir(parents=True, exist_ok=True)
                id_file.write_text(kwargs["id"])
    return WandbLogger(offline=offline, save_dir=save_dir, **kwargs)
