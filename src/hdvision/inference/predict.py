"""``hdvision predict``: a model file and images in, one CSV row per file out.

Images stream through the training decode path (reduced-scale JPEG decode, the evaluation
pad/crop to ``sample_size``) in DataLoader workers. A file that cannot be decoded becomes a row
with its error (``on_bad_image="skip"``) or stops the run naming it (``"raise"``): rows out =
files in.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hdvision.data.augment import build_augmentations
from hdvision.data.decode import BadImageError, DecodeSettings
from hdvision.data.shard_members import ShardMember, read_member
from hdvision.inference.inputs import InputRow, label_indices


class PredictionImages(Dataset):
    """Items ``{"index", "image" (3, H, W) uint8, "error"}``; a bad file gives a zero image and
    its error message instead of an exception (so workers never die on one file)."""

    def __init__(
        self,
        paths: Sequence[str],
        preprocessing: dict[str, Any],
        members: Sequence[ShardMember | None] | None = None,
    ) -> None:
        self.paths = list(paths)
        # Shard members (hdvision predict on a shard set) are read by position, not by path.
        self.members = list(members) if members is not None else [None] * len(self.paths)
        self.decode = DecodeSettings.from_preprocessing(preprocessing)
        assert self.decode.size is not None  # from_preprocessing always sets it
        self.size = self.decode.size
        self.transform = build_augmentations(None, self.size, self.decode.fit, train=False)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        member = self.members[index]
        try:
            if member is None:
                decoded = self.decode(self.paths[index])
            else:
                name, data = read_member(member)
                decoded = self.decode.decode_bytes(data, name)
            array = self.transform(image=decoded)["image"]
            image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()
            error = ""
        except BadImageError as err:
            image, error = torch.zeros(3, *self.size, dtype=torch.uint8), err.reason
        return {"index": index, "image": image, "error": error}


def prediction_loader(
    paths: Sequence[str],
    preprocessing: dict[str, Any],
    batch_size: int,
    workers: int,
    members: Sequence[ShardMember | None] | None = None,
) -> DataLoader:
    return DataLoader(
        PredictionImages(paths, preprocessing, members),
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if workers > 0 else None,
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(1, keepdims=True)


def run_predictions(
    predictor: Any,
    rows: Sequence[InputRow],
    batch_size: int = 16,
    workers: int = 2,
    on_bad_image: str = "raise",
    progress: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Logits (N, C) for every row (NaN for bad files) and each row's error ("" when none)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    if on_bad_image not in ("raise", "skip"):
        raise ValueError(f"--on-bad-image must be raise or skip, got {on_bad_image!r}")
    num_classes = len(predictor.meta["class_names"])
    logits = np.full((len(rows), num_classes), np.nan, dtype=np.float32)
    errors = [""] * len(rows)
    loader = prediction_loader(
        [r.path for r in rows],
        predictor.meta["preprocessing"],
        batch_size,
        workers,
        [r.member for r in rows],
    )
    columns = [TextColumn("predict"), BarColumn(), MofNCompleteColumn()]
    columns.append(TextColumn("{task.fields[rate]} images/s"))
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("predict", total=len(rows), rate="-")
        for batch in loader:
            index = batch["index"].numpy()
            for i, error in zip(index, batch["error"], strict=True):
                if error and on_bad_image == "raise":
                    hint = "pass --on-bad-image skip to record it in the CSV and go on"
                    raise BadImageError(rows[i].path, f"{error} ({hint})")
                errors[i] = error
            logits[index] = predictor(batch["image"])
            logits[[i for i in index if errors[i]]] = np.nan
            bar.advance(task, len(index))
            elapsed = bar.tasks[0].elapsed or 0.0
            bar.update(task, rate=f"{bar.tasks[0].completed / max(elapsed, 1e-9):.1f}")
    return logits, errors


def write_predictions(
    path: str | Path,
    rows: Sequence[InputRow],
    logits: np.ndarray,
    errors: Sequence[str],
    class_names: Sequence[str],
    top_k: int = 5,
) -> None:
    """CSV: ``path, label, score, top{i}_label, top{i}_score …, true_label, error``; a bad file's
    row has its error and empty predictions."""
    k = max(1, min(top_k, len(class_names)))
    probs = softmax(np.nan_to_num(logits, nan=0.0))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    header = ["path", "label", "score"]
    for i in range(1, k + 1):
        header += [f"top{i}_label", f"top{i}_score"]
    header += ["true_label", "error"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for n, row in enumerate(rows):
            if errors[n]:
                writer.writerow([row.path, "", ""] + [""] * (2 * k) + [row.label or "", errors[n]])
                continue
            tops = []
            for c in order[n]:
                tops += [class_names[c], f"{probs[n, c]:.6f}"]
            writer.writerow([row.path, *tops[:2], *tops, row.label or "", ""])


def labelled_metrics(
    rows: Sequence[InputRow],
    logits: np.ndarray,
    errors: Sequence[str],
    class_names: Sequence[str],
    confusion_png: str | Path | None = None,
) -> dict[str, Any] | None:
    """Accuracy and macro-F1 over the rows that have a label and no error (None when no row has
    a label); a confusion-matrix PNG when asked. A label outside the model's classes is an error."""
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
    )

    labels = label_indices(list(rows), list(class_names))
    keep = [n for n, label in enumerate(labels) if label is not None and not errors[n]]
    if not keep:
        return None
    preds = torch.from_numpy(logits[keep]).argmax(1)
    target = torch.tensor([labels[n] for n in keep])
    k = len(class_names)
    result = {
        "images": len(keep),
        "accuracy": float(multiclass_accuracy(preds, target, k, average="micro")),
        "macro_f1": float(multiclass_f1_score(preds, target, k, average="macro")),
    }
    if confusion_png is not None:
        from PIL import Image

        from hdvision.plots import plot_confusion

        confusion = multiclass_confusion_matrix(preds, target, k).numpy()
        Image.fromarray(plot_confusion(confusion, list(class_names))).save(confusion_png)
    return result
