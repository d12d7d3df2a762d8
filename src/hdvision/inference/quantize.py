"""``hdvision quantize``: an exported fp32 ONNX model → static int8 (onnxruntime), calibrated on
real decoded images, weights per channel, then the convolutions' biases corrected
(:mod:`~hdvision.inference.bias_correction`).

Why onnxruntime here: the int8 model is the ONNX file that ``hdvision predict`` and any
onnxruntime deployment load, with no torch at run time. PT2E (``X86InductorQuantizer``,
:mod:`hdvision.inference.compiled`, a row of ``bench-infer``) needs ``torch.compile`` and a C++
toolchain at run time. Without the bias correction onnxruntime's int8 lost 4-9 points of the
default model; with it, 0.2-0.6 over three seeds (docs/results/inference.md). Check an int8
file's accuracy on labelled images (``hdvision predict``) before deploying it.
"""

from __future__ import annotations

import ast
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from hdvision.inference.bias_correction import correct_biases
from hdvision.inference.export import set_metadata
from hdvision.inference.inputs import InputError
from hdvision.inference.predictor import OnnxPredictor
from hdvision.inference.samples import decoded_batch, image_rows

# onnxruntime's calibration methods by the name ``hdvision quantize --method`` takes.
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# Calibration images the bias correction averages over: 128 took the default model's seed 1 from
# 90.0 % to fp32's 99.7 % on validation, in under a minute on 2 cores; 512 gained nothing on any
# seed (docs/results/inference.md).
BIAS_CORRECTION_IMAGES = 128


def node_scopes(node: Any) -> list[str]:
    """The module paths an exported node belongs to (``ImagesToLogits``' names, outermost first)."""
    meta = {p.key: p.value for p in node.metadata_props}
    return list(ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]")))


def float_nodes(path: str | Path, scopes: list[str] | None, keep: Sequence[str] = ()) -> list[str]:
    """Nodes to keep in float: those of the ``scopes`` modules (the export records them, see
    :func:`~hdvision.inference.predictor.float_scopes`) except their ``inner`` stem, the area
    resizes (MatMul with averaging constants, on the image's skip path), and every node of the
    modules named in ``keep`` (e.g. ``model.backbone.blocks.0``; one that matches no node is an
    :class:`InputError`). An export that predates the record: the saliency sampler found by its
    class's path in the node scopes."""
    import onnx

    from hdvision.models.stems.zoom import SaliencySamplerStem

    zoom_class = f"{SaliencySamplerStem.__module__}.{SaliencySamplerStem.__qualname__}"
    names: list[str] = []
    matched: set[str] = set()
    modules: set[str] = set()
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        found = node_scopes(node)
        modules.update(s for s in found if s.count(".") in (2, 3) and s.startswith("model."))
        if scopes is not None:
            owner = next((s for s in scopes if s in found), None)
            in_zoom = owner is not None and f"{owner}.inner" not in found
        else:
            namespace = meta.get("namespace", "")
            in_zoom = zoom_class in namespace and ".inner:" not in namespace
        kept = {k for k in keep if k in found}
        matched |= kept
        if in_zoom or kept or node.op_type == "MatMul":
            names.append(node.name)
    if missing := [k for k in keep if k not in matched]:
        # The exporter folds each BatchNorm into its convolution under the norm's name, so a
        # convolution followed by a norm is kept by its block's (or its norm's) path.
        examples = ", ".join(sorted(modules)[:8])
        raise InputError(
            f"--keep-float {missing[0]}: no node of {path} belongs to that module; give a module "
            f"path of the exported model, such as {examples}"
        )
    return names


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over a uint8 image tensor."""

    def __init__(self, name: str, images: torch.Tensor, batch_size: int) -> None:
        self.feeds = iter(
            {name: images[i : i + batch_size].numpy()} for i in range(0, len(images), batch_size)
        )

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def calibration_images(
    calibration: str | None, meta: dict[str, Any], num_images: int = 512
) -> torch.Tensor:
    """``num_images`` decoded uint8 images of ``calibration`` (a folder or manifest of training
    images; default: the training data the model's ``meta`` records)."""
    rows = image_rows(calibration, meta, num_images, "--calibration")
    return decoded_batch(rows, meta["preprocessing"])


def quantize_onnx(
    model: str | Path,
    out: str | Path,
    calibration: str | None = None,
    num_images: int = 512,
    batch_size: int = 16,
    method: str = "minmax",
    keep_float: Sequence[str] = (),
    images: torch.Tensor | None = None,
    bias_correction: int = BIAS_CORRECTION_IMAGES,
) -> dict[str, Any]:
    """Static int8 (QDQ, activations uint8, weights int8 per channel) of an hdvision ONNX file,
    calibrated on :func:`calibration_images` (or on ``images``, already decoded); the modules in
    ``keep_float`` stay float (:func:`float_nodes`); then the int8 convolutions' biases corrected
    on the first ``bias_correction`` of those images (0: not corrected;
    :mod:`~hdvision.inference.bias_correction`). The metadata is carried over."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"--method must be one of {CALIBRATION_METHODS}, got {method!r}")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    source = OnnxPredictor(model)  # checks it is an hdvision export and reads its metadata
    keep = float_nodes(model, source.meta.get("float_scopes"), keep_float)
    if images is None:
        images = calibration_images(calibration, source.meta, num_images)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Shape inference and graph optimisation first, as onnxruntime recommends for static int8.
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=False)
        quantize_static(
            str(prepared),
            str(out),
            _Batches(source.input_name, images, batch_size),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=methods[method],
            nodes_to_exclude=keep,
        )
        # Read back once: corrected (when asked) and given the metadata, then written once.
        int8 = onnx.load(str(out))
        corrected: dict[str, Any] = {"convolutions": 0, "images": 0}
        if bias_correction > 0:
            chosen = images[:bias_correction]
            feeds = [
                {source.input_name: chosen[i : i + batch_size].numpy()}
                for i in range(0, len(chosen), batch_size)
            ]
            done = correct_biases(onnx.load(str(prepared)), int8, feeds)
            corrected = {"convolutions": done["convolutions"], "images": len(chosen)}
        set_metadata(int8, source.meta)
        onnx.save(int8, str(out))
    return {
        "calibration_images": len(images),
        "method": method,
        "keep_float": list(keep_float),
        "bias_correction": corrected,
    }
