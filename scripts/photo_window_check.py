"""Is it where to look, or the image label? A diagnostic for the photo canvases (issue 31).

Trains detail windows' encoder and count pooling (``hdvision_detail_windows``) on bags of
``--count`` windows per canvas, from the image label alone, for ``--steps`` steps, in one of
two ways:

- ``prior``: the windows the model itself would see (the detail prior's peaks);
- ``oracle``: the canvas's digits (their positions from the generator's layout, which only a
  generated data set knows) plus ``count - digits`` detail-prior peaks at least 16 px from every
  digit: the same multiple-instance problem with every digit among the windows.

It prints how many digits lie within 8 px of a window, the training loss every 50 steps and the
validation accuracy at the end (``--eval-counts``: also over more of the prior's windows). Usage:
    python scripts/photo_window_check.py data/hd_digits_<digest> --mode oracle --count 32
    python scripts/photo_window_check.py data/hd_digits_<digest> --mode prior --count 8 \
        --steps 1200 --eval-counts 16,32,64,128
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hdvision.data.decode import DecodeSettings
from hdvision.data.hd_digits import HDDigitsSpec, layout_canvas
from hdvision.data.listing import SPLITS
from hdvision.models.backbone import normalization
from hdvision.models.detail_windows import DetailWindows, detail_peaks


def load_split(root: Path, spec: HDDigitsSpec, split: str, limit: int, scale: float):
    """Decoded images (N, 3, h, w) uint8, labels, and each canvas's digit centres at ``scale``."""
    rows = (root / f"{split}.csv").read_text().splitlines()[1 : limit + 1]
    size = (round(spec.canvas[0] * scale), round(spec.canvas[1] * scale))
    decode = DecodeSettings(size)
    images, labels, centres = [], [], []
    for row in rows:
        path, label = row.rsplit(",", 1)
        index = int(Path(path).stem)
        rng = np.random.default_rng([spec.seed, SPLITS.index(split), index])
        target, placed, _, _ = layout_canvas(spec, rng)  # the first draws of render_canvas
        assert target == int(label), f"{path}: the layout does not reproduce the label"
        half = spec.digit_size / 2
        centres.append([((y + half) * scale, (x + half) * scale) for _, y, x in placed])
        images.append(torch.from_numpy(np.array(decode(root / path))).permute(2, 0, 1))
        labels.append(target)
    return torch.stack(images), torch.tensor(labels), torch.tensor(centres).round().long()


def bags(images, digits, count: int, mode: str, cell: int = 4) -> torch.Tensor:
    """(N, count, 2) window centres per canvas."""
    peaks = detail_peaks(images.float(), count if mode == "prior" else 4 * count, cell)
    if mode == "prior":
        return peaks
    out = []
    for peak, digit in zip(peaks, digits, strict=True):
        far = (peak[:, None] - digit[None]).abs().amax(-1).amin(1) >= 16
        texture = peak[far][torch.arange(count - len(digit)) % int(far.sum())]
        out.append(torch.cat([digit, texture]))
    return torch.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a generated HD-digits folder (spec.json)")
    parser.add_argument("--mode", choices=("prior", "oracle"), default="oracle")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--train", type=int, default=1500, help="training canvases used")
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-counts",
        default="",
        help="also score validation with this many detail-prior windows, e.g. 32,128",
    )
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    spec_fields = json.loads((args.root / "spec.json").read_text())
    for key in ("canvas", "split_fractions"):
        spec_fields[key] = tuple(spec_fields[key])
    spec = HDDigitsSpec(**spec_fields)
    start = time.time()
    x, y, digits = load_split(args.root, spec, "train", args.train, args.scale)
    vx, vy, vdigits = load_split(args.root, spec, "val", 300, args.scale)
    centres, vcentres = (
        bags(x, digits, args.count, args.mode),
        bags(vx, vdigits, args.count, args.mode),
    )
    print(f"decoded and bagged {len(x)} + {len(vx)} canvases in {time.time() - start:.0f} s")
    # How many digits lie within 8 px of a window centre (in prior mode: the detail prior's reach).
    near = (centres[:, :, None] - digits[:, None]).abs().amax(-1).amin(1) <= 8  # (N, digits)
    print(
        f"digits within 8 px of a window: {100 * near.float().mean():.1f} %; canvases with at "
        f"least one: {100 * near.any(1).float().mean():.1f} %"
    )
    if args.steps < 1:
        return  # --steps 0: the coverage alone
    model = DetailWindows(num_classes=10, count=args.count, nothing_prior=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=args.steps)

    # The model's own normalisation and pooling, on windows this script chooses.
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) * 255 for v in normalization(model))

    def scores(images, where):
        return model.pool(model.encode((images.float() - mean) / std, where))

    def val_accuracy(where) -> float:
        with torch.no_grad():
            predicted = torch.cat(
                [scores(vx[i : i + 50], where[i : i + 50]).argmax(1) for i in range(0, len(vx), 50)]
            )
        return (predicted == vy).float().mean().item()

    losses = []
    for step in range(args.steps):
        model.train()
        pick = torch.randint(0, len(x), (16,))
        jitter = torch.randint(-2, 3, centres[pick].shape)
        loss = F.cross_entropy(scores(x[pick], centres[pick] + jitter), y[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}: train loss {np.mean(losses[-50:]):.3f}", flush=True)
    model.eval()
    accuracy = val_accuracy(vcentres)
    print(
        f"{args.mode}, {args.count} windows, {args.steps} steps: val acc {100 * accuracy:.1f} % "
        f"({time.time() - start:.0f} s)"
    )
    # The same trained model over more (or fewer) of the prior's windows: the count pooling
    # takes any number.
    for count in [int(c) for c in args.eval_counts.split(",") if c]:
        accuracy = val_accuracy(detail_peaks(vx.float(), count))
        print(f"  validated with {count} prior windows: {100 * accuracy:.1f} %")


if __name__ == "__main__":
    main()
