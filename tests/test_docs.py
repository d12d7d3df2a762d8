"""Documentation that cannot rot: every `python train.py …`, `python eval.py …` and `hdvision …`
command in README.md and docs/ composes its overrides (Hydra) or parses (the CLI's own parser), so
a renamed config key or option fails here, not in a user's terminal."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from hdvision.cli.main import HYDRA_COMMANDS, build_parser
from tests.conftest import compose

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
STARTS = re.compile(r"(?:python (?:train|eval)\.py|hdvision [a-z][a-z-]*)\b")
# Placeholders the docs use for values a user fills in.
PLACEHOLDER = re.compile(r"<[^>]*>|\$\{?\w+\}?")


def _commands(text: str) -> list[str]:
    """Commands in fenced code blocks (backslash continuations joined, comments cut) and in
    inline code spans."""
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].split("  #")[0].strip()
            match = STARTS.search(line)
            if match:
                found.append(line[match.start() :])
    for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
        match = STARTS.match(span.strip())
        if match:
            found.append(span.strip())
    return found


def _tokens(command: str, placeholder: str) -> list[str]:
    text = PLACEHOLDER.sub(placeholder, command.replace("…", "..."))
    text = re.sub(r"\[(-[^\[\]]*)\]", r"\1", text)  # [--optional value] → --optional value
    try:
        tokens = shlex.split(text)
    except ValueError:  # an unbalanced quote in prose
        tokens = text.split()
    # a|b alternatives: the first; a trailing comma or semicolon of the sentence: dropped.
    tokens = [t.split("|")[0].rstrip(",;") for t in tokens]
    return [t.replace("...", placeholder) for t in tokens if t and t != "..."]


def _overrides(args: list[str]) -> list[str]:
    """Hydra overrides of a command line, each sweep (``a,b``, not a ``[list]``) at its first
    value, and group choices left to a user (a placeholder) dropped."""
    chosen = []
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            continue
        key, value = arg.split("=", 1)
        if "," in value and not value.startswith(("[", "{", "'", '"')):
            value = value.split(",")[0]
        if value in ("", "X", "1") and "." not in key:  # experiment=<e>: the user's choice
            continue
        chosen.append(f"{key}={value}")
    return chosen


CASES = sorted(
    {(doc.relative_to(ROOT).as_posix(), cmd) for doc in DOCS for cmd in _commands(doc.read_text())}
)


def test_the_docs_hold_commands():
    assert len(CASES) > 50 and {d for d, _ in CASES} >= {"README.md"}


@pytest.mark.parametrize("doc, command", CASES)
def test_a_documented_command_composes_or_parses(doc, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outputs a parser checks (--out) are created here
    tokens = _tokens(command, "X")
    task = tokens[1].removesuffix(".py")
    if task in HYDRA_COMMANDS:
        if any(a.startswith("--config-dir") for a in tokens):
            pytest.skip("a user's own config folder")
        cfg = compose(task, _overrides(tokens[2:]), tmp_path)
        assert cfg.model is not None, f"{doc}: {command}"
        return
    parser, commands = build_parser(task)
    assert task in commands, f"{doc}: {command}: no such command"
    if len(tokens) == 2 and command.strip() == f"hdvision {task}":
        return  # the command named in prose
    # A placeholder stands for a value the user gives: a path or name, or a number.
    for placeholder in ("X", "1", "0.5"):
        try:
            parsed = parser.parse_args(_tokens(command, placeholder)[1:])
            break
        except SystemExit:
            continue
    else:
        parser.parse_args(_tokens(command, "X")[1:])  # fails with argparse's message
    overrides = _overrides(getattr(parsed, "overrides", None) or [])
    if overrides:
        compose("train", overrides, tmp_path)
