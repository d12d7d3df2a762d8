"""Train: `python train.py experiment=effnet_hd` (see conf/train.yaml for every option)."""

import os

import hydra
from omegaconf import DictConfig

os.environ.setdefault("HDVISION_ROOT", os.path.dirname(os.path.abspath(__file__)))


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from hdvision.cli.train import main as run

    return run(cfg)


if __name__ == "__main__":
    main()
