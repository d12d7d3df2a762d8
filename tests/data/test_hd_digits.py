import csv
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hdvision.data.hd_digits import (
    SPLITS,
    HDDigitsSpec,
    generate_hd_digits,
    load_mnist_digits,
    split_source_digits,
)

SPEC = HDDigitsSpec(canvas=(96, 160), digit_size=20, num_train=12, num_val=4, num_test=4, seed=3)


def _digest_files(root):
    return {
        p.name: hashlib.sha1(p.read_bytes()).hexdigest()
        for s in SPLITS
        for p in sorted((root / s).glob("*.jpg"))
    }


def test_mnist_digits_come_from_the_wheel():
    digits, labels = load_mnist_digits()
    assert digits.shape == (5000, 28, 28) and digits.dtype == np.uint8
    assert set(labels.tolist()) == set(range(10))


def test_source_digits_of_splits_are_disjoint_and_cover_every_class():
    _, labels = load_mnist_digits()
    parts = split_source_digits(labels, (0.7, 0.15, 0.15), seed=0)
    sets = {s: set(p.tolist()) for s, p in parts.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"]
    assert not sets["val"] & sets["test"]
    assert sum(len(s) for s in sets.values()) == len(labels)
    for split in SPLITS:
        assert set(labels[parts[split]].tolist()) == set(range(10))


def test_generation_is_deterministic_and_complete(tmp_path):
    a = generate_hd_digits(SPEC, tmp_path / "a", workers=1)
    b = generate_hd_digits(SPEC, tmp_path / "b", workers=2)
    assert _digest_files(a) == _digest_files(b)
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        with open(a / f"{split}.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == n
        assert all((a / r["path"]).is_file() and 0 <= int(r["label"]) < 10 for r in rows)


def test_other_seed_gives_other_images(tmp_path):
    a = generate_hd_digits(SPEC, tmp_path, workers=1)
    b = generate_hd_digits(HDDigitsSpec(**{**SPEC.__dict__, "seed": 4}), tmp_path, workers=1)
    assert a != b and _digest_files(a) != _digest_files(b)


def test_too_many_digits_for_the_canvas_is_a_clear_error(tmp_path):
    spec = HDDigitsSpec(canvas=(40, 40), digit_size=30, num_train=1, num_val=1, num_test=1)
    with pytest.raises(ValueError, match="cannot place 5 digits"):
        generate_hd_digits(spec, tmp_path, workers=1)


def test_a_killed_generation_leaves_no_partial_data_set(tmp_path, monkeypatch):
    import hdvision.data.hd_digits as hd

    def die(job):
        raise KeyboardInterrupt  # killed while writing

    monkeypatch.setattr(hd, "write_chunk", die)
    with pytest.raises(KeyboardInterrupt):
        generate_hd_digits(SPEC, tmp_path, workers=1)
    assert list(tmp_path.iterdir()) == []  # neither a half-written folder nor a temporary one
    monkeypatch.undo()
    root = generate_hd_digits(SPEC, tmp_path, workers=1)
    assert (root / "spec.json").is_file() and [p.name for p in tmp_path.iterdir()] == [root.name]


def test_a_run_finishing_second_keeps_the_first_copy(tmp_path, monkeypatch):
    import hdvision.data.hd_digits as hd

    first = generate_hd_digits(SPEC, tmp_path / "first", workers=1)
    target = tmp_path / "shared" / first.name
    real = hd.write_chunk

    def other_run_finishes_meanwhile(job):
        if not target.exists():
            import shutil

            shutil.copytree(first, target)  # the other run renames its copy into place
        return real(job)

    monkeypatch.setattr(hd, "write_chunk", other_run_finishes_meanwhile)
    before = _digest_files(target) if target.exists() else None
    root = generate_hd_digits(SPEC, tmp_path / "shared", workers=1)
    assert root == target and before is None
    assert _digest_files(root) == _digest_files(first)
    assert [p.name for p in (tmp_path / "shared").iterdir()] == [root.name]


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(c) for c in text.split()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc (Linux)")
def test_generator_workers_die_with_a_killed_run(tmp_path):
    # A run killed with SIGKILL (no cleanup code runs) must not leave its pool writing on.
    script = (
        "from hdvision.data.hd_digits import HDDigitsSpec, generate_hd_digits\n"
        "spec = HDDigitsSpec(canvas=(540, 960), digit_size=40, num_train=4000, num_val=4,"
        " num_test=4)\n"
        f"generate_hd_digits(spec, {str(tmp_path)!r}, workers=2)\n"
    )
    run = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        # Killed once the pool writes images: a kill between a worker's fork and its
        # initializer (which arms the parent-death signal) is a race no code can close.
        while (
            len(workers := _children(run.pid)) < 2 or not any(tmp_path.rglob("*.jpg"))
        ) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) >= 2, "the generator pool did not start"
        time.sleep(0.5)  # both workers past their initializer
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers))


MEGAPIXEL = HDDigitsSpec(
    canvas=(200, 240),
    digit_size=28,
    num_target=3,
    num_distractors=2,
    num_noise_patches=50,
    num_train=6,
    num_val=2,
    num_test=3,
    image_format="png",
    seed=5,
)


def test_megapixel_layout_follows_the_published_spec():
    from hdvision.data.hd_digits import layout_canvas

    for i in range(20):
        target, placed, scribbles, noise = layout_canvas(MEGAPIXEL, np.random.default_rng(i))
        classes = [c for c, _, _ in placed]
        assert len(placed) == 5 and classes.count(target) == 3 and not scribbles
        assert all(c != target for c in classes[3:])  # the 2 others are of other classes
        for a, (_, ya, xa) in enumerate(placed):  # 28 px boxes inside, never overlapping
            assert 0 <= ya <= 200 - 28 and 0 <= xa <= 240 - 28
            for _, yb, xb in placed[a + 1 :]:
                assert abs(ya - yb) >= 28 or abs(xa - xb) >= 28
        assert len(noise) == 50
        assert all(0 <= p < 50 and 28 <= y < 172 and 28 <= x < 212 for p, y, x in noise)


def test_noise_patterns_are_two_line_scribbles():
    from hdvision.data.hd_digits import noise_patterns

    patterns = noise_patterns(0)
    assert patterns.shape == (50, 28, 28) and patterns.dtype == np.uint8
    lit = (patterns > 0).reshape(50, -1).sum(1)
    assert lit.min() >= 28 and lit.max() <= 2 * 56  # one or two lines of up to 56 points
    assert patterns[patterns > 0].min() >= 0.8 * 255 - 1
    assert np.array_equal(noise_patterns(0), patterns) and not np.array_equal(
        noise_patterns(1), patterns
    )


def test_megapixel_files_are_lossless_pngs_of_the_canvas_size(tmp_path):
    from PIL import Image

    root = generate_hd_digits(MEGAPIXEL, tmp_path, workers=1)
    with open(root / "test.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(r["path"].endswith(".png") for r in rows)
    image = Image.open(root / rows[0]["path"])
    assert image.format == "PNG" and image.size == (240, 200) and image.mode == "L"
    pixels = np.asarray(image)
    assert (pixels > 0).mean() > 0.01  # digits and 50 scribbles
    # Specs without noise hash as before the noise and format fields existed: the default run's
    # data set keeps its folder (hd_digits_9ac5f4b950, written by earlier versions).
    default_run = HDDigitsSpec(
        digit_size=80, num_distractors=0, num_train=4400, num_val=300, num_test=500
    )
    assert default_run.digest() == "9ac5f4b950"
    with pytest.raises(ValueError, match="image_format must be jpg or png"):
        HDDigitsSpec(image_format="bmp")
