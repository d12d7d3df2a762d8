"""Self-describing checkpoints as plain data: read one safely, check it holds what inference
needs, compare it with a config (``HDClassifier.from_checkpoint`` rebuilds its model).

A checkpoint written by ``train.py`` holds, as plain data in ``hyper_parameters``, the model spec
(stem, backbone, sizes), ``class_names``, ``normalization`` and ``preprocessing`` (how images were
decoded for the model, from the datamodule). Everything loads with ``weights_only=True``.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdvision.errors import UserError

# What inference needs beyond the architecture; the keys under ``preprocessing`` included.
REQUIRED_FIELDS = ("class_names", "normalization", "preprocessing")
PREPROCESSING_FIELDS = ("image_size", "sample_size", "fit", "reduced_decode", "max_pixels")
# Hyper-parameters that change the architecture or what the model is fed: a config must agree.
MATCHED_FIELDS = (
    "backbone.name",
    "stem",
    "num_classes",
    "backbone_input",
    "input_size",
    "class_names",
    "preprocessing.image_size",
    "preprocessing.sample_size",
    "preprocessing.fit",
)


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with one clear error per way it can fail."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path}: empty file (0 bytes), probably an interrupted save; use an earlier checkpoint"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # A class weights_only refuses ("Unsupported global"), or bytes that are no pickle.
        if "unsupported global" not in str(err).lower():
            raise CheckpointError(f"{path}: truncated or not a torch checkpoint") from err
        raise CheckpointError(
            f"{path}: holds objects other than plain data, which weights_only=True refuses; "
            "it is not a checkpoint written by hdvision"
        ) from err
    except Exception as err:  # torch raises many types on foreign bytes (struct.error, ...)
        raise CheckpointError(
            f"{path}: truncated or not a torch checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})"
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def _get(tree: Mapping[str, Any], dotted: str, default: Any = KeyError) -> Any:
    node: Any = tree
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            if default is KeyError:
                raise KeyError(dotted)
            return default
        node = node[key]
    return node


def inference_hparams(
    checkpoint: Mapping[str, Any], path: str | Path, **supplied: Any
) -> dict[str, Any]:
    """The checkpoint's hyper-parameters, checked to hold everything inference needs;
    ``supplied`` fills fields an older checkpoint lacks (e.g. ``class_names=[...]``)."""
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    for key in ("backbone", "stem", "num_classes"):
        if key not in hparams:
            raise CheckpointError(
                f"{path}: not an hdvision classifier checkpoint (hyper_parameters lack {key!r})"
            )
    for key, value in supplied.items():
        if isinstance(value, Mapping) and isinstance(hparams.get(key), Mapping):
            value = {**hparams[key], **value}
        hparams[key] = value
    missing = [k for k in REQUIRED_FIELDS if hparams.get(k) is None]
    missing += [
        f"preprocessing.{k}"
        for k in PREPROCESSING_FIELDS
        if "preprocessing" not in missing and k not in (hparams.get("preprocessing") or {})
    ]
    if missing:
        raise CheckpointError(
            f"{path}: lacks hyper_parameters {', '.join(missing)}: it was written before "
            "checkpoints described themselves. Supply them, e.g. "
            "HDClassifier.from_checkpoint(path, class_names=[...], preprocessing={'image_size': "
            "[1080, 1920], 'sample_size': [270, 480], 'fit': 'letterbox', 'reduced_decode': "
            "True, 'max_pixels': 100000000}, normalization={'mean': [...], 'std': [...]}), "
            "or retrain with this version"
        )
    if len(hparams["class_names"]) != hparams["num_classes"]:
        raise CheckpointError(
            f"{path}: {len(hparams['class_names'])} class_names for "
            f"num_classes={hparams['num_classes']}"
        )
    return hparams


def config_mismatches(recorded: Mapping[str, Any], configured: Mapping[str, Any]) -> list[str]:
    """``key: checkpoint … vs config …`` for each of :data:`MATCHED_FIELDS` that differ (a field
    the checkpoint does not record is not compared)."""
    lines = []
    for key in MATCHED_FIELDS:
        old, new = _get(recorded, key, None), _get(configured, key, None)
        if old is not None and old != new:
            lines.append(f"{key}: checkpoint {old!r} vs config {new!r}")
    return lines


def check_config_matches(
    path: str | Path, checkpoint: Mapping[str, Any], configured: Mapping[str, Any]
) -> None:
    """Refuse a checkpoint (read from ``path``) trained with another architecture or
    preprocessing than the configured model's hyper-parameters."""
    lines = config_mismatches(checkpoint.get("hyper_parameters") or {}, configured)
    if lines:
        raise CheckpointError(
            f"{path} was trained with other settings than this config:\n  "
            + "\n  ".join(lines)
            + "\nPass the training run's overrides (its .hydra/overrides.yaml), or use "
            "`hdvision predict` which needs only the checkpoint"
        )
