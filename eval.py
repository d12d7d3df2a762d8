"""Evaluate a checkpoint: `python eval.py ckpt_path=logs/train/runs/.../checkpoints/last.ckpt`."""

import os
import sys

import hydra
from omegaconf import DictConfig

from hdvision.cli.runtime import no_log_file_on_nonzero_ranks

os.environ.setdefault("HDVISION_ROOT", os.path.dirname(os.path.abspath(__file__)))


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from hdvision.cli.eval import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    no_log_file_on_nonzero_ranks(sys.argv)
    main()
