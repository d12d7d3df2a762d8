"""One interface over a trained model: a checkpoint (PyTorch) or an exported ONNX file
(onnxruntime). Both take uint8 (B, 3, H, W) batches at ``preprocessing.sample_size`` and return
float32 logits; ``meta`` says how to decode images for them and what the outputs mean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from hdvision.models.checkpoint import CheckpointError

if TYPE_CHECKING:
    from hdvision.models.module import HDClassifier

# The ONNX metadata_props key that holds :func:`model_meta` as JSON.
ONNX_META_KEY = "hdvision"


class ImagesToLogits(nn.Module):
    """uint8 images → logits: the model's own input preparation (normalisation, resize to
    ``input_size``), stem and backbone, as one module (what is exported)."""

    def __init__(self, model: HDClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.model.prepare_input(images))


def float_scopes(model: HDClassifier) -> list[str]:
    """The modules of the exported graph (``ImagesToLogits``' name scopes) whose own operations
    int8 must leave in float: the saliency sampler's zoom (its detail prior subtracts large
    squares, its resampling matrices come from float64 CDFs: int8 there moves where the model
    looks), found by module type so that a renamed file or attribute cannot hide it."""
    from hdvision.models.stems.zoom import SaliencySamplerStem

    return [
        f"model.{name}" for name, m in model.named_modules() if isinstance(m, SaliencySamplerStem)
    ]


def model_meta(model: HDClassifier) -> dict[str, Any]:
    """Plain data from a model's hyper-parameters: classes, preprocessing, normalisation, spec;
    and the graph scopes int8 keeps in float."""
    hp = model.hparams
    return {
        "float_scopes": float_scopes(model),
        "class_names": list(hp.class_names),
        "preprocessing": dict(hp.preprocessing),
        "normalization": dict(hp.normalization),
        "training_data": hp.get("training_data"),
        "model": {
            "backbone": hp.backbone.get("name"),
            "stem": dict(hp.stem),
            "backbone_input": hp.backbone_input,
            "input_size": hp.input_size,
        },
    }


class TorchPredictor:
    def __init__(self, path: str | Path, device: str = "cpu", **supplied: Any) -> None:
        from hdvision.models.module import HDClassifier

        self.path = str(path)
        self.model = HDClassifier.from_checkpoint(str(path), **supplied).to(device)
        self.device = torch.device(device)
        self.net = ImagesToLogits(self.model).eval()
        self.meta = model_meta(self.model)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        images = torch.as_tensor(images).to(self.device, non_blocking=True)
        return self.net(images).float().cpu().numpy()


class OnnxPredictor:
    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = str(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(self.path, options, providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types per failure
            raise CheckpointError(f"{path}: onnxruntime cannot load it ({err})") from err
        if device == "cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
            raise CheckpointError(
                f"{path}: --device cuda needs onnxruntime-gpu and a GPU; this onnxruntime "
                f"offers {self.session.get_providers()}"
            )
        custom = self.session.get_modelmeta().custom_metadata_map
        if ONNX_META_KEY not in custom:
            raise CheckpointError(
                f"{path}: an ONNX file without hdvision metadata (classes, preprocessing); "
                "export the checkpoint with `hdvision export CKPT --out model.onnx`"
            )
        self.meta = json.loads(custom[ONNX_META_KEY])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        array = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        return self.session.run(None, {self.input_name: np.ascontiguousarray(array)})[0]


def load_predictor(
    path: str | Path, device: str = "cpu", threads: int | None = None
) -> TorchPredictor | OnnxPredictor:
    """A predictor for a ``.ckpt`` (PyTorch) or ``.onnx`` file, chosen by the file's content."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file (pass a .ckpt or an exported .onnx)")
    if device == "cuda" and not torch.cuda.is_available():
        raise CheckpointError(f"{path}: --device cuda, but torch sees no CUDA device here")
    with open(path, "rb") as f:
        head = f.read(4)
    # torch checkpoints are zip archives; anything else is tried as ONNX (a protobuf).
    if head.startswith(b"PK") or path.suffix == ".ckpt":
        if threads:
            torch.set_num_threads(threads)
        return TorchPredictor(path, device)
    return OnnxPredictor(path, device, threads)
