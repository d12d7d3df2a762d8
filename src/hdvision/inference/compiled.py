"""A checkpoint through PyTorch's compiler: ``torch.compile`` (Inductor) in fp32, and PT2E static
int8 (torchao's ``X86InductorQuantizer``, then ``torch.compile``), the two rows ``bench-infer``
puts beside eager PyTorch and onnxruntime.

Both need a C++ compiler at run time (Inductor builds CPU kernels): :func:`compiler_missing`
says why not, and ``bench-infer`` leaves the rows out with that line. PT2E keeps the zoom in
float, as ``hdvision quantize`` does for onnxruntime (``predictor.float_scopes``).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import torch
from torch import nn

from hdvision.inference.predictor import TorchPredictor, float_scopes


def compiler_missing() -> str | None:
    """Why Inductor cannot build CPU kernels on this machine, or None when it can."""
    # CXX may carry a launcher or flags ("ccache g++"): the first word is what must exist.
    names = (
        [os.environ["CXX"].split()[0]] if os.environ.get("CXX", "").strip() else ["g++", "clang++"]
    )
    if not any(shutil.which(name) for name in names):
        return f"no C++ compiler ({' / '.join(names)}) on PATH: torch.compile needs one on CPU"
    return None


class CompiledPredictor:
    """A :class:`TorchPredictor`'s model (or a transformed copy, ``net``) under ``torch.compile``.
    The first call of each batch size compiles (tens of seconds on a small CPU)."""

    def __init__(self, base: TorchPredictor, net: nn.Module | None = None) -> None:
        self.path, self.meta, self.device = base.path, base.meta, base.device
        self.module = net if net is not None else base.net  # what is compiled
        # dynamic=False: one graph per batch size, each at full speed; a benchmark calls few.
        self.net = torch.compile(self.module, dynamic=False)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        images = torch.as_tensor(images).to(self.device)
        return self.net(images).float().cpu().numpy()


def pt2e_int8(
    base: TorchPredictor, calibration: torch.Tensor, batch_size: int = 16
) -> CompiledPredictor:
    """Static int8 by PT2E: export the model, observe ``calibration`` (uint8 images), convert,
    compile. Activations per tensor, weights per channel (the quantizer's defaults); the
    saliency sampler's own operations stay float, its inner stem and the backbone are int8."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    config = xiq.get_default_x86_inductor_quantization_config()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(config)
    # The quantizer annotates products too (matmul, mul): left to the global setting, the zoom's
    # detail prior (squares) and resampling matrices would be int8, and the model looked in the
    # wrong places (49 % against 100 % on HD digits). Module settings apply in the order given
    # and a node keeps its first: the inner stem int8, then the rest of the zoom float.
    for scope in float_scopes(base.model):
        quantizer.set_module_name_qconfig(f"{scope}.inner", config)
        quantizer.set_module_name_qconfig(scope, None)
    batch = torch.export.Dim("batch", min=1, max=1024)
    example = calibration[: min(batch_size, len(calibration))]
    graph = torch.export.export(base.net, (example,), dynamic_shapes=({0: batch},)).module()
    prepared = prepare_pt2e(graph, quantizer)  # type: ignore[arg-type]
    with torch.no_grad():
        for start in range(0, len(calibration), batch_size):
            prepared(calibration[start : start + batch_size])
    return CompiledPredictor(base, convert_pt2e(prepared))
