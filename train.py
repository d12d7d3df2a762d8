"""Train: `python train.py experiment=effnet_hd` (every option: src/hdvision/conf/train.yaml).

The same as `hdvision train ...`; here data/ and logs/ go beside this file, wherever you launch.
"""

import os

from hdvision.cli.entry import run

if __name__ == "__main__":
    run("train", root=os.path.dirname(os.path.abspath(__file__)))
