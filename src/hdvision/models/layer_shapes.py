"""A pruned architecture as plain data: the channel counts of the layers pruning changed.

Torch-Pruning removes channels by rewriting modules in place; a checkpoint must not pickle those
modules (``weights_only=True``). What it records instead is, per changed layer, the attributes
that fix its parameter shapes (``out_channels`` ...); :func:`apply_layer_shapes` gives a freshly
built, unpruned model those shapes, and the checkpoint's state dict then fills the weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

# The attributes that decide each prunable layer type's parameter and buffer shapes.
SHAPE_ATTRIBUTES: dict[type[nn.Module], tuple[str, ...]] = {
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.Linear: ("in_features", "out_features"),
    _BatchNorm: ("num_features",),
}


def _attributes(module: nn.Module) -> tuple[str, ...] | None:
    for kind, names in SHAPE_ATTRIBUTES.items():
        if isinstance(module, kind):
            return names
    return None


def layer_shapes(model: nn.Module) -> dict[str, dict[str, int]]:
    """``{layer name: {attribute: value}}`` for every prunable layer of ``model``."""
    shapes = {}
    for name, module in model.named_modules():
        names = _attributes(module)
        if names is not None:
            shapes[name] = {a: int(getattr(module, a)) for a in names}
    return shapes


def changed_shapes(
    before: Mapping[str, Mapping[str, int]], after: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, int]]:
    """The layers whose shape attributes differ between two :func:`layer_shapes`."""
    return {name: dict(attrs) for name, attrs in after.items() if before.get(name) != attrs}


def _resized(param: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    if tuple(param.shape) == shape:
        return param
    # Values are placeholders: the checkpoint's state dict is loaded over them.
    return torch.zeros(shape, dtype=param.dtype, device=param.device)


def apply_layer_shapes(model: nn.Module, shapes: Mapping[str, Mapping[str, int]]) -> None:
    """Give ``model``'s layers the recorded shape attributes, resizing their parameters and
    buffers, so that a pruned checkpoint's state dict loads into it."""
    modules = dict(model.named_modules())
    for name, attrs in shapes.items():
        module = modules.get(name)
        if module is None or _attributes(module) is None:
            raise KeyError(f"pruned layer {name!r} is not a prunable layer of this backbone")
        for attr, value in attrs.items():
            setattr(module, attr, int(value))
        if isinstance(module, nn.Conv2d):
            out, per_group = module.out_channels, module.in_channels // module.groups
            new_weight = (out, per_group, *module.kernel_size)
            new_bias = (out,)
        elif isinstance(module, nn.Linear):
            new_weight, new_bias = (module.out_features, module.in_features), (module.out_features,)
        else:
            new_weight = new_bias = (module.num_features,)
            for buf in ("running_mean", "running_var"):
                buffer = getattr(module, buf, None)
                if buffer is not None:
                    setattr(module, buf, _resized(buffer, new_bias))
        for pname, shape in (("weight", new_weight), ("bias", new_bias)):
            param = getattr(module, pname, None)
            if param is not None:
                resized = _resized(param.data, shape)
                setattr(module, pname, nn.Parameter(resized, requires_grad=param.requires_grad))
