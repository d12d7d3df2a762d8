"""Train: `python train.py experiment=effnet_hd` (see conf/train.yaml for every option)."""

import os
import sys

import hydra
from omegaconf import DictConfig

from hdvision.cli.runtime import no_log_file_on_nonzero_ranks

os.environ.setdefault("HDVISION_ROOT", os.path.dirname(os.path.abspath(__file__)))


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from hdvision.cli.train import main as run

    return run(cfg)


if __name__ == "__main__":
    no_log_file_on_nonzero_ranks(sys.argv)
    main()
