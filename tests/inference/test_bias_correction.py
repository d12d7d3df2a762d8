"""Bias correction moves each int8 convolution's output means back onto the fp32 model's, one
convolution after the other, and leaves float convolutions alone."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from hdvision.inference.bias_correction import channel_means, correct_biases, int8_convolutions


class _Batches:
    def __init__(self, feeds):
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


def _images(seed: int, count: int = 32) -> np.ndarray:
    """Mostly a flat -1 background (what uint8 activations cannot hold exactly), a few strokes."""
    rng = np.random.default_rng(seed)
    images = np.full((count, 3, 24, 24), -1.0, dtype=np.float32)
    for image in images:
        y, x = rng.integers(0, 18, size=2)
        image[:, y : y + 6, x : x + 2] = 1.0
    return images


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise: few weights per output
        nn.ReLU6(),
        nn.Conv2d(8, 4, 1),
    ).eval()
    with torch.no_grad():  # weights of one sign, so that the input's rounding adds up
        net[0].weight.abs_().add_(0.2)
        net[0].bias.fill_(3.0)
        net[2].weight.abs_().add_(0.1)
        net[2].bias.fill_(-2.0)
    folder = tmp_path_factory.mktemp("bias")
    fp32 = folder / "m.onnx"
    torch.onnx.export(
        net,
        (torch.from_numpy(_images(0, 2)),),
        str(fp32),
        input_names=["x"],
        dynamic_axes={"x": {0: "batch"}},
        dynamo=False,
    )
    feeds = [{"x": b} for b in np.split(_images(1), 4)]
    outs = {}
    for name, exclude in (("all", []), ("first_float", ["/0/Conv"])):
        outs[name] = folder / f"{name}.onnx"
        quantize_static(
            str(fp32),
            str(outs[name]),
            _Batches(list(feeds)),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=exclude,
        )
    return onnx.load(str(fp32)), {k: onnx.load(str(v)) for k, v in outs.items()}, feeds


def _gaps(fp32, int8, feeds):
    """Per int8 convolution, |int8 mean - fp32 mean| per channel of its output (before any
    output quantization: the tensors bias correction aims at)."""
    nodes = {n.name: n for n in fp32.graph.node}
    convs = [node for node, _, _ in int8_convolutions(int8)]
    ours = channel_means(int8, [n.output[0] for n in convs], feeds)
    theirs = channel_means(fp32, [nodes[n.name].output[0] for n in convs], feeds)
    return [np.abs(a - b).mean() for a, b in zip(ours, theirs, strict=True)]


def test_correction_moves_the_int8_means_onto_fp32_and_changes_only_biases(models):
    fp32, int8, feeds = models
    model = onnx.ModelProto()
    model.CopyFrom(int8["all"])
    before = _gaps(fp32, model, feeds)
    weights_before = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    result = correct_biases(fp32, model, feeds)
    assert result["convolutions"] == 3 and len(result["shifts"]) == 3
    after = _gaps(fp32, model, feeds)
    assert min(before) > 1e-4  # int8 did shift the means of every convolution
    assert all(a < b / 10 for a, b in zip(after, before, strict=True)), (before, after)
    changed = {
        i.name
        for i in model.graph.initializer
        if not np.array_equal(onnx.numpy_helper.to_array(i), weights_before[i.name])
    }
    biases = {bias for _, bias, _ in int8_convolutions(model)}
    assert changed and changed <= biases
    # Images it was not corrected on are closer to fp32 too.
    held_out = [{"x": _images(7, 16)}]
    assert sum(_gaps(fp32, model, held_out)) < sum(_gaps(fp32, int8["all"], held_out)) / 2


def test_a_convolution_left_float_is_not_corrected(models):
    fp32, int8, feeds = models
    model = onnx.ModelProto()
    model.CopyFrom(int8["first_float"])
    convs = [node.name for node, _, _ in int8_convolutions(model)]
    assert len(convs) == 2 and "/0/Conv" not in convs
    assert correct_biases(fp32, model, feeds)["convolutions"] == 2
