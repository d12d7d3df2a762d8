"""argparse value types shared by the commands: each refuses a bad value with one line."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def image_size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. 1080x1920): two positive integers."""
    try:
        height, width = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be HxW with two positive integers (e.g. 1080x1920), got {text!r}"
        ) from None
    if min(height, width) < 1:
        raise argparse.ArgumentTypeError(f"must be HxW with positive sizes, got {text!r}")
    return height, width


def byte_size(text: str) -> int:
    """A size in bytes: ``256MB``, ``1GB``, ``512kB`` (powers of 10) or a plain number."""
    value = text.strip().lower()
    factor = 1
    for unit, scale in (("kb", 10**3), ("mb", 10**6), ("gb", 10**9), ("b", 1)):
        if value.endswith(unit):
            value, factor = value.removesuffix(unit).strip(), scale
            break
    try:
        size = int(float(value) * factor)
    except ValueError:
        size = 0
    if size < 1:
        raise argparse.ArgumentTypeError(f"must be a size such as 256MB or 1GB, got {text!r}")
    return size


def unit_fraction(text: str) -> float:
    """A number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def output_file(text: str) -> str:
    """A file the command can write: its folder exists (it is created) and is writable, and the
    path is not a folder. Checked before the work, not after it."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot write {text}: {err.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: its folder is not writable")
    return text
