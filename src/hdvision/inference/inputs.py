"""What to predict on: image files, folders (recursive), CSV manifests (``path[,label]``) and
shard sets written by ``hdvision shard`` (a folder, ``http(s)://`` or ``s3://``, or one split of
one: ``.../val``), as one stable list of rows. Whether a file is an image is decided by decoding
it (its content), never by its extension."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hdvision.data.listing import DataSourceError, read_manifest
from hdvision.data.shard_members import ShardMember, is_shard_set, shard_members
from hdvision.errors import UserError


class InputError(UserError):
    """An input that cannot be listed; the message names it and says what to pass instead."""


@dataclass(frozen=True)
class InputRow:
    """``path`` names the row (a file, or a shard member's ``<uri>/<split>: <key>``); ``member``
    is where a shard member's bytes are read from."""

    path: str
    label: str | None = None
    member: ShardMember | None = None


def _shard_rows(item: str, limit: int | None) -> list[InputRow]:
    try:
        members = shard_members(item, limit=limit)
    except DataSourceError as err:
        raise InputError(str(err)) from err
    return [InputRow(name, label, member) for member, name, label in members]


def _manifest_rows(manifest: Path) -> list[InputRow]:
    try:
        listed = read_manifest(manifest, label=False)
    except DataSourceError as err:
        raise InputError(str(err)) from err
    rows = []
    for _, name, label in listed:
        path = Path(name)
        rows.append(InputRow(str(path if path.is_absolute() else manifest.parent / path), label))
    if not rows:
        raise InputError(f"manifest {manifest} lists no files")
    return rows


def list_inputs(inputs: list[str], limit: int | None = None) -> list[InputRow]:
    """Every file to predict on, in the order given (folders sorted), one row each.

    In folders, every regular file that is not hidden is a row, non-images too, so that they are
    reported (rows out = files in) instead of vanishing. Inputs named ``*.csv`` are manifests.
    """
    rows: list[InputRow] = []
    for item in inputs:
        path = Path(item)
        if is_shard_set(item):  # (``limit``: the rest of a large shard set is not downloaded)
            rows.extend(_shard_rows(item, None if limit is None else limit - len(rows)))
        elif path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise InputError(f"folder {path} holds no files to predict on")
            rows.extend(InputRow(str(p)) for p in files)
        elif path.suffix.lower() == ".csv" and path.is_file():
            rows.extend(_manifest_rows(path))
        elif path.is_file():
            rows.append(InputRow(str(path)))
        else:
            raise InputError(f"input {path} does not exist (pass image files, folders or a CSV)")
    return rows


def label_indices(rows: list[InputRow], class_names: list[str]) -> list[int | None]:
    """Each row's class index (None where the row has no label); a label that is not one of the
    model's classes is an :class:`InputError` naming it."""
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted({r.label for r in rows if r.label is not None and r.label not in index})
    if unknown:
        raise InputError(
            f"labels {unknown[:10]} in the manifest are not among the model's classes "
            f"{list(class_names)}"
        )
    return [None if r.label is None else index[r.label] for r in rows]


def required_labels(rows: list[InputRow], class_names: list[str], what: str) -> list[int]:
    """Every row's class index; a row without a label is an :class:`InputError` that says
    ``what`` needs them (e.g. ``"--importance taylor"``)."""
    indices = label_indices(rows, class_names)
    labels = complete_labels(indices)
    if len(labels) != len(indices):
        raise InputError(f"{what} needs labelled images (folders or path,label CSV)")
    return labels


def complete_labels(indices: list[int | None]) -> list[int]:
    """The class indices when every row has one, else ``[]``: accuracy needs every label."""
    labels = [i for i in indices if i is not None]
    return labels if len(labels) == len(indices) else []
