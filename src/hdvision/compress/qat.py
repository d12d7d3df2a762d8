"""``hdvision qat``: quantization-aware fine-tuning. The checkpoint's backbone trains for a short
while with int8 rounding simulated in its forward pass, and the result is written as an ordinary
checkpoint of the same model, for ``hdvision export`` and ``hdvision quantize`` as before.

Why: post-training int8 can lose accuracy that no choice of calibration recovers; weights
trained under the rounding should tolerate it. For the default model ``quantize``'s bias
correction closed most of that gap without training (0.2-0.6 points over three seeds, where
post-training int8 lost 4.8-10), and this command's one measured epoch did worse (int8 93.2 %,
the float model 10 points down: docs/results/inference.md); it stays for models the correction
does not rescue.
Its batch norms learn statistics under the simulated rounding, which the float model then
lacks (measured: the statistics alone took the float model from 99.7 to 95.0 % on
validation). The simulation is PT2E's
(``torch.export``, ``prepare_qat_pt2e`` with ``X86InductorQuantizer``'s scheme: uint8 activations
per tensor, int8 weights per channel, the scheme ``quantize`` uses); the stem stays float, as the
zoom does in ``quantize``.

Why a checkpoint and not PT2E's own int8 graph: that graph exported to ONNX quantizes only the
convolutions' inputs, so onnxruntime ran about half of them in float, with layout changes between
(25 of 52 as ``QLinearConv``); ``quantize`` places its own, complete QDQ pairs on the fine-tuned
weights. The fine-tuning is a Lightning fit of the checkpoint's own module (its loss) on labelled
training images decoded as ``predict`` decodes them (no augmentation).
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from hdvision.compress.derived import save_derived_checkpoint
from hdvision.data.augment import build_augmentations
from hdvision.data.dataset import ImageDataset, collate_samples
from hdvision.data.decode import DecodeSettings
from hdvision.inference.inputs import InputError, required_labels
from hdvision.inference.samples import image_rows
from hdvision.models.checkpoint import read_checkpoint


class ExportedBackbone(nn.Module):
    """A ``torch.export`` graph in the backbone's place. An exported graph ignores ``train()`` /
    ``eval()`` (its batch norm and dropout are fixed as traced; its own ``train()`` raises), so
    this switches them the way PT2E provides; in eval mode the simulated int8 keeps the ranges
    it learned instead of following each batch's."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x)

    def train(self, mode: bool = True) -> ExportedBackbone:
        from torchao.quantization.pt2e import (
            move_exported_model_to_eval,
            move_exported_model_to_train,
        )
        from torchao.quantization.pt2e.fake_quantize import disable_observer, enable_observer

        self.training = mode
        (move_exported_model_to_train if mode else move_exported_model_to_eval)(self.graph)
        self.graph.apply(enable_observer if mode else disable_observer)
        return self


def simulated_int8(backbone: nn.Module, example: torch.Tensor) -> ExportedBackbone:
    """``backbone`` exported at ``example`` (a stem output; any batch size later) with int8
    rounding simulated (fake quantization) for training. Its parameters keep their names and
    are ``backbone``'s own tensors."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    batch = torch.export.Dim("batch", min=1, max=4096)
    was_training = backbone.training
    # Traced in training mode: PT2E's QAT matches the training batch norm after each convolution
    # (to fold it as int8 inference will) and keeps all of its state. Tracing runs on fake
    # tensors, so the running statistics do not move.
    backbone.train()
    graph = torch.export.export(backbone, (example,), dynamic_shapes=({0: batch},)).module()
    backbone.train(was_training)
    config = get_default_x86_inductor_quantization_config(is_qat=True)
    return ExportedBackbone(prepare_qat_pt2e(graph, X86InductorQuantizer().set_global(config)))


def training_images(source: str | None, meta: dict[str, Any], num_images: int) -> ImageDataset:
    """Labelled images decoded as ``predict`` decodes them (no augmentation); a bad file is
    skipped with a warning and replaced by another, as in training (``data.on_bad_image``)."""
    rows = image_rows(source, meta, num_images, "--images")
    labels = required_labels(rows, meta["class_names"], "--images: QAT")
    if any(r.member is not None for r in rows):
        raise InputError("--images: QAT reads image files; pass a folder or path,label CSV")
    decode = DecodeSettings.from_preprocessing(meta["preprocessing"])
    assert decode.size is not None  # from_preprocessing always sets it
    transform = build_augmentations(None, decode.size, decode.fit, train=False)
    samples = [(r.path, label) for r, label in zip(rows, labels, strict=True)]
    return ImageDataset(samples, decode, transform, on_bad_image="skip")


def qat_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    images: str | None = None,
    num_images: int = 4096,
    epochs: int = 1,
    lr: float = 1e-4,
    batch_size: int = 16,
    workers: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Fine-tune ``checkpoint``'s model with int8 simulated in its backbone for ``epochs`` passes
    over ``num_images`` labelled training images (default: the data the checkpoint records;
    AdamW at ``lr``, cosine to zero; their order from ``seed``) and write the float weights as a
    checkpoint of the same model to ``out`` (renamed into place when whole). Returns the images
    used and the last epoch's training loss."""
    import pytorch_lightning as pl

    from hdvision.inference.predictor import model_meta
    from hdvision.models.module import HDClassifier
    from hdvision.models.schedules import warmup_cosine

    source = read_checkpoint(checkpoint)
    model = HDClassifier.from_checkpoint(str(checkpoint), source)
    dataset = training_images(images, model_meta(model), num_images)
    pl.seed_everything(seed, workers=True, verbose=False)
    first = torch.stack([dataset[i]["image"] for i in range(min(2, len(dataset)))])
    with torch.no_grad():
        example = model.stem_output(model.prepare_input(first))
    backbone = model.backbone
    model.backbone = simulated_int8(backbone, example)
    model.optimizer_factory = functools.partial(torch.optim.AdamW, lr=lr)
    model.scheduler_factory = warmup_cosine
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(dataset) > batch_size,  # no batch of one for batch norm
        collate_fn=collate_samples,
        num_workers=workers,
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        devices=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's notes on the loader's worker count
        trainer.fit(model, train_dataloaders=loader)
    # The simulation's parameters and batch-norm statistics, under the backbone's own names.
    trained = model.backbone.graph.state_dict()
    backbone.load_state_dict({name: trained[name] for name in backbone.state_dict()})
    model.backbone = backbone
    # Plain data beside the model's hyper-parameters: how the weights were made.
    made = {"epochs": epochs, "images": len(dataset), "lr": lr}
    save_derived_checkpoint(
        source, out, model.state_dict(), source["hyper_parameters"], quantization_aware=made
    )
    loss = trainer.callback_metrics.get("train/loss_epoch")
    return {"images": len(dataset), "loss": float("nan") if loss is None else float(loss)}
