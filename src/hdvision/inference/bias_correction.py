"""Empirical bias correction of a static int8 ONNX model: each int8 convolution's bias is moved
so that, over real images, the mean of its output per channel equals the fp32 model's.

Why: rounding is not noise with zero mean on these images. In the default model most input
pixels are the same value (a black background, -1 after normalisation), which the uint8 grid
holds as -0.996, and depthwise convolutions sum few weights; so int8 shifts whole channels, and
every later layer carries the shift forward. Post-training int8 of the default model lost
4.8-10 points that way while each convolution's own error looked small (docs/results/inference.md).
Correcting the means (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and
Bias Correction", the empirical variant) one convolution at a time in graph order, each with
the corrections before it in place, is what a batch-norm re-estimation under simulated int8
does, written into the ONNX file: no training, no new operator, the same int8 kernels.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _session(model: Any) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # No fusion: the QDQ graph then runs as written (int8 values in float arithmetic), so any
    # tensor can be read back; the fused int8 kernels give the same values up to rounding.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def channel_means(
    model: Any, tensors: list[str], feeds: list[dict[str, np.ndarray]]
) -> list[np.ndarray]:
    """The mean over images and positions of each channel of each of ``tensors`` (N, C, H, W),
    ``model`` run on ``feeds`` with those tensors as extra outputs."""
    import onnx
    from onnx import TensorProto, helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = _session(probe)
    sums: list[Any] = [0.0] * len(tensors)
    count = 0
    for feed in feeds:
        outputs = session.run(tensors, feed)
        for i, out in enumerate(outputs):
            sums[i] = sums[i] + out.astype(np.float64).mean(axis=(2, 3)).sum(axis=0)
        count += len(outputs[0])
    return [np.asarray(s) / count for s in sums]


def int8_convolutions(int8_model: Any) -> list[tuple[Any, str, str]]:
    """The convolutions that run in int8: (node, its int32 bias initializer, the bias's scale
    initializer), in graph order. One whose input or bias is not dequantized stays float."""
    initializers = {i.name for i in int8_model.graph.initializer}
    producer = {out: node for node in int8_model.graph.node for out in node.output}
    found = []
    for node in int8_model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 3:
            continue
        source, bias = producer.get(node.input[0]), producer.get(node.input[2])
        if source is None or bias is None:
            continue
        dequantized = source.op_type == bias.op_type == "DequantizeLinear"
        if not dequantized or bias.input[0] not in initializers:
            continue
        found.append((node, bias.input[0], bias.input[1]))
    return found


def correct_biases(
    float_model: Any, int8_model: Any, feeds: list[dict[str, np.ndarray]]
) -> dict[str, Any]:
    """Correct ``int8_model``'s (an ``onnx.ModelProto`` from ``quantize_static`` of
    ``float_model``, QDQ format) convolution biases in place on ``feeds`` (calibration batches).
    Returns how many were corrected and, for each, the mean absolute shift per channel."""
    from onnx import numpy_helper

    initializers = {i.name: i for i in int8_model.graph.initializer}
    float_convs = {n.name: n for n in float_model.graph.node if n.op_type == "Conv"}
    # The fp32 convolution of the same name; its output is before any clip, like the int8 one's
    # (the quantizer folds a clip after a convolution into the next quantization).
    pairs = [
        (c, float_convs[c[0].name])
        for c in int8_convolutions(int8_model)
        if c[0].name in float_convs
    ]
    if not pairs:
        return {"convolutions": 0, "shifts": []}
    references = channel_means(float_model, [f.output[0] for _, f in pairs], feeds)
    shifts = []
    for ((node, bias_name, scale_name), _), reference in zip(pairs, references, strict=True):
        measured = channel_means(int8_model, [node.output[0]], feeds)[0]
        shift = reference - measured
        scale = numpy_helper.to_array(initializers[scale_name]).astype(np.float64)
        bias = numpy_helper.to_array(initializers[bias_name]).astype(np.int64)
        info = np.iinfo(np.int32)
        moved = np.clip(bias + np.round(shift / scale), info.min, info.max).astype(np.int32)
        initializers[bias_name].CopyFrom(numpy_helper.from_array(moved, bias_name))
        shifts.append(float(np.abs(shift).mean()))
    return {"convolutions": len(shifts), "shifts": shifts}
