"""Bad input as one line: what the argparse commands print instead of a traceback."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that bad input raises: hdvision's own (:class:`~hdvision.errors.UserError`),
    Hydra's and OmegaConf's for configs, and the operating system's for paths."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from hdvision.errors import UserError

    return (UserError, HydraException, OmegaConfBaseException, OSError)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in str(text).splitlines() if line.strip()]


def one_line(err: BaseException) -> str:
    """The error's message as one line; for a config error, the offending key and the closest
    valid names where there are some."""
    from hydra.errors import InstantiationException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(err, MissingConfigException):
        first = _lines(str(err))[0] if _lines(str(err)) else "config not found"
        wanted = (err.missing_cfg_file or "").rsplit("/", 1)[-1]
        close = difflib.get_close_matches(wanted, list(err.options or []), n=3)
        hint = f"; closest: {', '.join(close)}" if close else ""
        options = f"; options: {', '.join(err.options)}" if err.options and not close else ""
        return f"{first}{hint}{options}"
    if isinstance(err, InstantiationException):
        lines = _lines(str(err))
        key = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), "")
        cause = err.__cause__
        reason = str(cause) if cause is not None else " ".join(lines[:2])
        if cause is not None and not isinstance(cause, user_errors()):
            reason = f"{type(cause).__name__}: {reason}"
        return f"{key}: {' '.join(_lines(reason))}" if key else " ".join(_lines(reason))
    if isinstance(err, OmegaConfBaseException):
        return " ".join(ln for ln in _lines(str(err)) if not ln.startswith("object_type"))
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return " ".join(_lines(str(err))) or type(err).__name__


def report(command: str, err: BaseException) -> int:
    print(f"hdvision {command}: error: {one_line(err)}", file=sys.stderr)
    return 2
