"""Evaluate a checkpoint: `python eval.py ckpt_path=logs/train/runs/.../checkpoints/last.ckpt`.

The same as `hdvision eval ...`; here data/ and logs/ go beside this file, wherever you launch.
"""

import os

from hdvision.cli.entry import run

if __name__ == "__main__":
    run("eval", root=os.path.dirname(os.path.abspath(__file__)))
