"""Export with parity, int8 that loads and predicts, and the benchmark's table."""

import json

import numpy as np
import onnx
import pytest
import torch

from hdvision.cli.main import main
from hdvision.inference.bench import format_results, run_inference_benchmark
from hdvision.inference.export import ParityError, compare, export_onnx
from hdvision.inference.predictor import ONNX_META_KEY, OnnxPredictor, TorchPredictor
from hdvision.inference.quantize import float_nodes, quantize_onnx
from tests.conftest import counted_over


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    parity = export_onnx(trained_run["ckpt"], out, num_images=12)
    return out, parity


def test_export_is_one_graph_with_metadata_and_parity(trained_run, exported):
    path, parity = exported
    assert parity["images"] == 12 and parity["top1_agreement"] == 1.0
    assert parity["max_abs_diff"] <= parity["tolerance"]
    model = onnx.load(str(path))
    meta = json.loads({p.key: p.value for p in model.metadata_props}[ONNX_META_KEY])
    assert meta["class_names"] == [str(i) for i in range(10)]
    assert meta["preprocessing"]["sample_size"] == [32, 48]
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    ops = {n.op_type for n in model.graph.node}
    # The saliency sampler's zoom is inside the graph as matrix products, not a GridSample.
    assert "GridSample" not in ops and "MatMul" in ops
    # Dynamic batch: 1 and 5 images through the same file, equal to PyTorch.
    torch_model, onnx_model = TorchPredictor(trained_run["ckpt"]), OnnxPredictor(path)
    images = torch.randint(0, 255, (5, 3, 32, 48), dtype=torch.uint8)
    np.testing.assert_allclose(onnx_model(images), torch_model(images), rtol=1e-4, atol=1e-4)
    assert onnx_model(images[:1]).shape == (1, 10)


def test_parity_failure_is_loud(trained_run, exported, tmp_path):
    class Wrong:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, images):
            return self.inner(images)[:, ::-1].copy()

    torch_model = TorchPredictor(trained_run["ckpt"])
    images = torch.randint(0, 255, (4, 3, 32, 48), dtype=torch.uint8)
    result = compare(torch_model, Wrong(OnnxPredictor(exported[0])), images)
    assert result["max_abs_diff"] > 1e-3
    with pytest.raises(ParityError, match="tolerance 1e-12"):
        export_onnx(trained_run["ckpt"], tmp_path / "m.onnx", num_images=4, tolerance=1e-12)
    assert list(tmp_path.iterdir()) == []  # no model file, no draft left behind


def test_without_images_the_recorded_training_data_or_a_one_line_request(
    trained_run, tmp_path, capsys
):
    state = torch.load(trained_run["ckpt"], weights_only=True)
    assert state["hyper_parameters"]["training_data"] == trained_run["ckpt_training_data"]
    state["hyper_parameters"]["training_data"] = None  # a checkpoint that records none
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    assert main(["export", str(old), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --calibration-images" in err
    assert not (tmp_path / "m.onnx").exists()


def test_int8_model_loads_predicts_and_keeps_the_metadata(trained_run, exported, tmp_path):
    out = tmp_path / "model.int8.onnx"
    info = quantize_onnx(exported[0], out, None, num_images=16)  # the recorded training data
    assert info["calibration_images"] == 16
    model = onnx.load(str(out))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    int8, fp32 = OnnxPredictor(out), OnnxPredictor(exported[0])
    assert int8.meta == fp32.meta and fp32.meta["float_scopes"] == ["model.stem"]
    # The zoom (found by module: the export records the saliency sampler's scope) stays float:
    # none of its nodes reads a dequantized tensor; the inner stem and backbone are int8.
    zoom = set(float_nodes(exported[0], fp32.meta["float_scopes"])) - {
        n.name for n in onnx.load(str(exported[0])).graph.node if n.op_type == "MatMul"
    }
    assert len(zoom) > 10
    dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    assert not [n.name for n in model.graph.node if n.name in zoom and set(n.input) & dequantized]
    assert any(n.op_type == "Conv" and set(n.input) & dequantized for n in model.graph.node)
    assert out.stat().st_size < exported[0].stat().st_size


def test_quantize_corrects_the_int8_biases_unless_told_not_to(exported, tmp_path, capsys):
    argv = ["quantize", str(exported[0]), "--num-images", "8"]
    assert main([*argv, "--out", str(tmp_path / "c.onnx")]) == 0
    line = capsys.readouterr().out
    assert "biases of " in line and "corrected on 8 images" in line
    assert main([*argv, "--out", str(tmp_path / "p.onnx"), "--bias-correction", "0"]) == 0
    assert "no bias correction" in capsys.readouterr().out
    corrected, plain = (
        {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(f)).graph.initializer}
        for f in (tmp_path / "c.onnx", tmp_path / "p.onnx")
    )
    # Same calibration, same weights; only int32 biases moved.
    moved = [k for k in plain if not np.array_equal(plain[k], corrected[k])]
    assert moved and all(plain[k].dtype == np.int32 for k in moved)


def test_keep_float_leaves_the_named_module_in_float_and_names_an_unknown_one(
    exported, tmp_path, capsys
):
    scopes = OnnxPredictor(exported[0]).meta["float_scopes"]
    plain = set(float_nodes(exported[0], scopes))
    kept = set(float_nodes(exported[0], scopes, ["model.backbone.blocks.0"]))
    assert plain < kept and any("conv" in n.lower() for n in kept - plain)
    out = tmp_path / "q.onnx"
    argv = ["quantize", str(exported[0]), "--out", str(out), "--num-images", "8"]
    assert main([*argv, "--keep-float", "model.backbone.blocks.0"]) == 0
    assert "kept in float: model.backbone.blocks.0" in capsys.readouterr().out
    model = onnx.load(str(out))
    dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    block_convs = [n for n in model.graph.node if n.name in kept - plain and n.op_type == "Conv"]
    # Float weights (its input may still arrive through the previous layer's int8 output).
    assert block_convs and not [n for n in block_convs if n.input[1] in dequantized]
    others = [n for n in model.graph.node if n.op_type == "Conv" and n.name not in kept]
    assert others and all(n.input[1] in dequantized for n in others)
    assert main([*argv, "--keep-float", "model.backbone.nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--keep-float model.backbone.nope" in err
    assert "model.backbone.blocks.0" in err  # the paths it could have given


def test_quantize_refuses_an_onnx_file_it_did_not_export(tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07junk")
    assert main(["quantize", str(tmp_path / "junk.onnx"), "--out", str(tmp_path / "q.onnx")]) == 2
    assert "junk.onnx" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_infer_measures_every_variant_on_the_same_images(trained_run, tmp_path, monkeypatch):
    # The torch.compile rows (tests/inference/test_compiled.py) compile for minutes: here the
    # machine says it has no compiler, and the table says so instead of the rows.
    monkeypatch.setattr("hdvision.inference.bench.compiler_missing", lambda: "no C++ compiler")
    result = run_inference_benchmark(
        str(trained_run["ckpt"]),
        images=str(trained_run["data"] / "test.csv"),
        num_images=8,
        calibration=str(trained_run["data"] / "train.csv"),
        workers=0,
        repeats=1,
        work_dir=str(tmp_path),
        keep_float=["model.backbone.blocks.0"],
    )
    variants = [r["variant"] for r in result["results"]]
    assert variants == [
        "pytorch fp32 channels-last",
        "pytorch fp32",
        "onnxruntime fp32",
        "onnxruntime int8",
    ]
    for row in result["results"]:
        assert row["ms_batch1"] > 0 and row["ms_batch16"] > 0 and row["e2e_img_s"] > 0
        assert counted_over(row["accuracy"], 8)
    # fp32 variants compute the same function: the same accuracy; int8 within one image of it.
    assert len({r["accuracy"] for r in result["results"][:3]}) == 1
    assert abs(result["results"][3]["accuracy"] - result["results"][0]["accuracy"]) <= 1 / 8
    assert result["decode_floor_img_s"] > 0
    table = format_results(result)
    assert "onnxruntime int8" in table
    assert table.splitlines()[-2:] == [
        "onnxruntime int8 keeps in float: model.backbone.blocks.0",
        "torch.compile rows left out: no C++ compiler",
    ]


def test_quantize_reports_the_tensors_int8_moves_most(exported, tmp_path, capsys):
    out = tmp_path / "q.onnx"
    argv = ["quantize", str(exported[0]), "--out", str(out), "--num-images", "8"]
    assert main([*argv, "--report", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index(next(ln for ln in lines if "worst first" in ln)) + 1 :]
    assert len(table) == 3
    model_db = [float(line.split()[0]) for line in table]
    assert model_db == sorted(model_db) and all(np.isfinite(model_db))
