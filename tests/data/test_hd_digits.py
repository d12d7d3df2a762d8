import csv
import hashlib

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
