"""Listing samples: an image folder (``root/<class>/*.jpg``) or a CSV manifest (path,label) as a
list of ``(path, label_index)`` pairs plus the class names; nothing is decoded here. Problems found
while listing (missing files, unknown labels) are reported with their row numbers before training
starts. The source classes that use these live in :mod:`hdvision.data.sources`.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hdvision.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SPLITS = ("train", "val", "test")


class DataSourceError(UserError):
    """A data set that cannot be used as configured; the message says what to fix."""


@dataclass
class SampleList:
    samples: list[tuple[str, int]]
    class_names: list[str]
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)


def folder_classes(root: str | Path) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise DataSourceError(
            f"image folder {root} does not exist or is not a directory; "
            "set data.source.root to a folder laid out as <root>/<class>/<image>"
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataSourceError(
            f"image folder {root} has no class sub-folders (<root>/<class>/*.jpg)"
        )
    return classes


def folder_samples(
    root: str | Path,
    class_names: Sequence[str] | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> SampleList:
    """All images under ``root/<class>/``, sorted, labelled by the sorted class folder names."""
    root = Path(root)
    names = list(class_names) if class_names is not None else folder_classes(root)
    if not root.is_dir():
        raise DataSourceError(f"image folder {root} does not exist or is not a directory")
    index = {name: i for i, name in enumerate(names)}
    samples, problems = [], []
    seen: dict[Path, str] = {}
    top = root.resolve()
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name not in index:
            problems.append(f"{sub}: class folder not among the training classes {names}")
            continue
        if sub.resolve() in (top, *top.parents):
            # A link back to the root (or above) would list every class again under this label.
            problems.append(f"{sub}: links to {sub.resolve()}, which contains the data root")
            continue
        entries = sorted(sub.rglob("*"))
        # rglob does not follow links to folders: say so, instead of leaving their images out
        # without a word (and name the loops among them).
        for link in (p for p in entries if p.is_symlink() and p.is_dir()):
            target = link.resolve()
            kind = (
                "a link loop"
                if target in (link.parent.resolve(), *link.parent.resolve().parents)
                else "a link to a folder"
            )
            problems.append(
                f"{link}: {kind} ({target}); links to folders are not followed, move or copy "
                "the images instead"
            )
        files = [p for p in entries if p.suffix.lower() in extensions and p.is_file()]
        if not files:
            log.warning("class folder %s holds no images", sub)
        for p in files:
            real = p.resolve()
            if real in seen:
                problems.append(f"{p}: the same file as {seen[real]} (a link or copy path)")
                continue
            seen[real] = str(p)
            samples.append((str(p), index[sub.name]))
    if not samples:
        raise DataSourceError(
            f"image folder {root} holds no images with extensions {tuple(extensions)} "
            "in its class sub-folders"
        )
    return SampleList(samples, names, problems)


def read_manifest(manifest: str | Path, label: bool) -> list[tuple[int, str, str | None]]:
    """``(row number, path, label)`` of each row of a CSV manifest with a header (row 1); the
    ``label`` column is required when ``label`` is true, else optional (None where empty)."""
    manifest = Path(manifest)
    required = ["path", "label"] if label else ["path"]
    try:
        # utf-8-sig: spreadsheet tools start CSV files with a byte-order mark.
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not set(required) <= set(reader.fieldnames):
                columns = "'path' and 'label' columns" if label else "a 'path' column"
                raise DataSourceError(
                    f"manifest {manifest} needs a header with {columns}, found {reader.fieldnames}"
                )
            return [
                (n, r["path"] or "", (r.get("label") or "").strip() or None)
                for n, r in enumerate(reader, start=2)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataSourceError(f"manifest {manifest} cannot be read as CSV: {err}") from err


def manifest_samples(
    manifest: str | Path,
    root: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    check_files: bool = True,
) -> SampleList:
    """Rows ``path,label`` of a CSV file (header required); relative paths are under ``root``.

    Labels are class names, or integers when ``class_names`` is None and every label is an
    integer. Rows with a missing file or an unknown label are collected in ``problems``
    ("manifest.csv row 7: ...", counting the header as row 1) instead of the sample list.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise DataSourceError(f"manifest {manifest} does not exist; set data.manifest paths")
    base = Path(root) if root is not None else manifest.parent
    rows = [(n, path, label or "") for n, path, label in read_manifest(manifest, label=True)]
    if class_names is None:
        labels = {label for _, _, label in rows}
        numeric = all(label.lstrip("-").isdigit() for label in labels)
        class_names = (
            [str(i) for i in range(max(int(x) for x in labels) + 1)]
            if numeric and labels
            else sorted(labels)
        )
    index = {name: i for i, name in enumerate(class_names)}
    samples, problems = [], []
    first: dict[str, tuple[int, str]] = {}
    duplicates = 0
    for row, path, label in rows:
        full = Path(path) if Path(path).is_absolute() else base / path
        key = str(full.resolve())
        if key in first:
            if first[key][1] != label:
                problems.append(
                    f"{manifest} row {row}: {path} is labelled {label!r} here and "
                    f"{first[key][1]!r} in row {first[key][0]}"
                )
            duplicates += 1
            continue
        if label not in index:
            problems.append(
                f"{manifest} row {row}: unknown label {label!r} (classes: {class_names})"
            )
        elif check_files and not full.is_file():
            problems.append(f"{manifest} row {row}: file {full} does not exist")
        else:
            first[key] = (row, label)  # only a usable row owns its file
            samples.append((str(full), index[label]))
    if duplicates:
        log.warning("%s: %d repeated rows left out (each file is used once)", manifest, duplicates)
    if not samples:
        detail = f"; first problem: {problems[0]}" if problems else ""
        raise DataSourceError(f"manifest {manifest} lists no usable samples{detail}")
    return SampleList(samples, list(class_names), problems)


def report_problems(source: SampleList, what: str, policy: str) -> None:
    """Raise on listing problems (policy ``raise``) or log every skipped row (``skip``)."""
    if not source.problems:
        return
    shown = "\n  ".join(source.problems[:20])
    more = f"\n  ... and {len(source.problems) - 20} more" if len(source.problems) > 20 else ""
    if policy == "raise":
        raise DataSourceError(
            f"{len(source.problems)} bad entries in {what}:\n  {shown}{more}\n"
            "Fix them, or set data.on_bad_image=skip to leave them out."
        )
    log.warning("Skipping %d bad entries in %s:\n  %s%s", len(source.problems), what, shown, more)
