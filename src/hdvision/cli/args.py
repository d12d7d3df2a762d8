"""argparse value types shared by the commands: each refuses a bad value with one line."""

from __future__ import annotations

import argparse


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
