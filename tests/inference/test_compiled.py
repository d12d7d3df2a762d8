"""torch.compile and PT2E int8 predictors: the same predictions as the eager model, the zoom left
in float, and a clear reason where no compiler is present."""

import numpy as np
import pytest
import torch

from hdvision.inference.bench import graph_bytes, state_bytes
from hdvision.inference.compiled import CompiledPredictor, compiler_missing, pt2e_int8
from hdvision.inference.predictor import TorchPredictor
from hdvision.inference.samples import decoded_batch, image_rows
from tests.helpers.run_if import RunIf


def test_without_a_cxx_compiler_the_reason_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no g++, no clang++
    monkeypatch.delenv("CXX", raising=False)
    assert "no C++ compiler (g++ / clang++)" in str(compiler_missing())
    monkeypatch.setenv("CXX", "my-cxx")
    assert "(my-cxx)" in str(compiler_missing())
    (tmp_path / "my-cxx").write_text("#!/bin/sh\n")
    (tmp_path / "my-cxx").chmod(0o755)
    assert compiler_missing() is None
    monkeypatch.setenv("CXX", "my-cxx -O2")  # flags after the compiler's name
    assert compiler_missing() is None


@RunIf(cxx=True)
@pytest.mark.slow
def test_compiled_and_pt2e_int8_predict_like_the_eager_model(trained_run):
    eager = TorchPredictor(trained_run["ckpt"])
    rows = image_rows(str(trained_run["data"] / "train.csv"), eager.meta, 32, "--calibration")
    images = decoded_batch(rows, eager.meta["preprocessing"])
    reference = eager(images[:8])
    np.testing.assert_allclose(CompiledPredictor(eager)(images[:8]), reference, atol=1e-3)

    int8 = pt2e_int8(eager, images, batch_size=8)
    graph = int8.module  # the converted graph torch.compile runs
    quantized = [n for n in graph.graph.nodes if "quantize_per" in str(n.target)]
    assert quantized, "PT2E quantized nothing"

    # Nothing of the zoom reads a dequantized tensor (its squares and resampling products stay
    # float); the inner stem's and the backbone's convolutions read int8 weights.
    def scopes(node):
        return list(node.meta.get("nn_module_stack", {}).values())

    def in_zoom(node):
        names = [name for name, _ in scopes(node)]
        return "model.stem" in names and "model.stem.inner" not in names

    dequantized = {n for n in graph.graph.nodes if "dequantize" in str(n.target)}
    zoom = [n for n in graph.graph.nodes if in_zoom(n)]
    assert len(zoom) > 20 and not [n for n in zoom if set(n.all_input_nodes) & dequantized]
    convs = [n for n in graph.graph.nodes if n.target == torch.ops.aten.conv2d.default]
    outside = [n for n in convs if not in_zoom(n)]
    assert outside and all(n.args[1] in dequantized for n in outside)
    # Its weights are int8: the tensors the graph reads take well under half the float model's.
    assert graph_bytes(graph) < state_bytes(eager.model) / 2
    logits = int8(images[:8])
    assert logits.shape == reference.shape and np.isfinite(logits).all()
    # The tiny model's logits are close together (argmax ties): compare the logits themselves.
    error = np.linalg.norm(logits - reference) / np.linalg.norm(reference - reference.mean())
    assert error < 0.25
