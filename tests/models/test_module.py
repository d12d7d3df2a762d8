import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from hdvision.models.metrics import classification_metrics
from hdvision.models.module import HDClassifier

BACKBONE = {"name": "test_efficientnet", "weights": None}


def _module(**kwargs):
    args = {
        "backbone": BACKBONE,
        "stem": {"name": "resize"},
        "num_classes": 10,
        "backbone_input": [16, 24],
    }
    return HDClassifier(**{**args, **kwargs})


def test_low_resolution_batch_is_upsampled_on_device_after_transfer():
    module = _module(stem={"name": "space_to_depth", "factor": 4}, input_size=[64, 96])
    batch = {
        "image": torch.randint(0, 255, (2, 3, 16, 24), dtype=torch.uint8),
        "label": torch.tensor([1, 2]),
    }
    prepared = module.on_after_batch_transfer(batch, 0)
    assert prepared["image"].shape == (2, 3, 64, 96) and prepared["image"].dtype == torch.float32
    assert module(prepared["image"]).shape == (2, 10)


def test_full_resolution_batch_is_only_normalised():
    module = _module()
    images = torch.full((1, 3, 32, 48), 255, dtype=torch.uint8)
    x = module.prepare_input(images)
    assert x.shape == (1, 3, 32, 48)
    expected = (1.0 - module.mean[0, 0, 0, 0] / 255) / (module.std[0, 0, 0, 0] / 255)
    assert torch.allclose(x[0, 0], expected.expand(32, 48))


def test_the_zoom_gets_pixel_values_and_normalises_once_it_has_shrunk_them():
    # The zoom's reads of its input (area resizes, resampling rows that sum to one, the
    # variance of the detail prior) commute with per-channel normalisation: handed pixels, it
    # computes what the same stem computes on the normalised image.
    torch.manual_seed(0)
    stem = {"name": "saliency_sampler", "inner": {"name": "strided"}}
    module = _module(stem=stem, backbone_input=[12, 20]).eval()
    torch.nn.init.normal_(module.stem.saliency[-1].weight, std=0.5)  # a correction that zooms
    images = torch.randint(0, 256, (2, 3, 48, 80), dtype=torch.uint8)
    images[..., 20:28, 30:40] = 255
    assert module.stem_normalizes
    x = module.prepare_input(images)
    torch.testing.assert_close(x, images.float())  # pixel values, not normalised
    normalised = (images.float() - module.mean) / module.std
    reference = _module(stem=stem, backbone_input=[12, 20]).eval()
    reference.load_state_dict(module.state_dict())
    reference.stem.set_input_normalization(torch.zeros(1), torch.ones(1))  # the identity
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(normalised), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            module.stem.warp(x), reference.stem.warp(normalised), atol=1e-4, rtol=1e-4
        )
    assert "stem.input_mean" not in module.state_dict()  # old checkpoints keep loading


def test_hyper_parameters_are_plain_data():
    from omegaconf import OmegaConf

    module = _module(backbone=OmegaConf.create(BACKBONE), backbone_input=OmegaConf.create([16, 24]))
    assert type(module.hparams["backbone"]) is dict
    assert type(module.hparams["backbone_input"]) is list


def test_no_weight_decay_on_norms_and_biases():
    module = _module(optimizer=lambda groups: torch.optim.AdamW(groups, lr=1e-3, weight_decay=0.1))
    optimizer = module.configure_optimizers()
    decays = {
        g["weight_decay"]: sum(p.numel() for p in g["params"]) for g in optimizer.param_groups
    }
    assert decays.keys() == {0.0, 0.1}
    biases_and_norms = sum(p.numel() for n, p in module.named_parameters() if p.ndim <= 1)
    assert decays[0.0] == biases_and_norms


def test_channels_last_runs():
    module = _module(channels_last=True, stem={"name": "strided"})
    x = module.prepare_input(torch.randint(0, 255, (2, 3, 32, 48), dtype=torch.uint8))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert module(x).shape == (2, 10)


def test_zoom_reads_its_input_contiguous_and_the_backbone_gets_channels_last():
    zoom = {
        "name": "saliency_sampler",
        "warp_size": [16, 24],
        "antialias": True,
        "inner": {"name": "resize"},
    }
    torch.manual_seed(0)
    module = _module(channels_last=True, stem=zoom).eval()
    images = torch.randint(0, 255, (2, 3, 64, 96), dtype=torch.uint8)
    x = module.prepare_input(images)
    assert x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    assert module.stem_output(x).is_contiguous(memory_format=torch.channels_last)
    # The layout is a speed choice only: the same logits as a channels_last input gives.
    with torch.no_grad():
        cl = x.contiguous(memory_format=torch.channels_last)
        expected = module.backbone(module.stem(cl).contiguous(memory_format=torch.channels_last))
        assert torch.allclose(module(x), expected, atol=1e-5)


def test_stem_lr_scale_multiplies_the_stem_groups_only():
    module = _module(
        stem={"name": "strided"},
        stem_lr_scale=10.0,
        optimizer=lambda groups: torch.optim.SGD(groups, lr=0.01),
    )
    optimizer = module.configure_optimizers()
    stem_params = {id(p) for p in module.stem.parameters()}
    for group in optimizer.param_groups:
        in_stem = {id(p) in stem_params for p in group["params"]}
        assert len(in_stem) == 1
        assert group["lr"] == pytest.approx(0.1 if in_stem.pop() else 0.01)


def test_device_augmentations_run_in_training_only_before_the_upsample():
    module = _module(
        device_augmentations={"GaussNoise": {"std_range": [0.2, 0.2], "p": 1.0}},
        input_size=[32, 48],
    )
    assert module.hparams["device_augmentations"] == {
        "GaussNoise": {"std_range": [0.2, 0.2], "p": 1.0}
    }
    images = torch.full((2, 3, 16, 24), 128, dtype=torch.uint8)
    module.eval()
    clean = module.prepare_input(images)
    assert torch.equal(clean, module.prepare_input(images))
    module.train()
    noisy = module.prepare_input(images)
    assert noisy.shape == clean.shape == (2, 3, 32, 48)
    # Noise drawn at 16x24 and upsampled 2x: neighbouring output pixels share their source.
    residual = (noisy - clean) * module.std / 255
    assert 0.1 < float(residual.std()) < 0.2
    left, right = residual[..., :-1].flatten(), residual[..., 1:].flatten()
    assert float(torch.corrcoef(torch.stack([left, right]))[0, 1]) > 0.5


def test_metrics_stay_separate_after_an_all_correct_first_batch():
    # With torchmetrics' compute groups this merged macro F1 into top-5 accuracy (test/f1 = 1.0
    # at 97 % accuracy in real runs).
    torch.manual_seed(0)
    collection = classification_metrics(10, "test/")
    f1 = MulticlassF1Score(10, average="macro")
    top5 = MulticlassAccuracy(10, top_k=5, average="micro")
    for batch in range(4):
        labels = torch.randint(0, 10, (16,))
        logits = torch.randn(16, 10)
        if batch == 0:
            logits[torch.arange(16), labels] += 10
        for metric in (collection, f1, top5):
            metric.update(logits, labels)
    result = collection.compute()
    assert torch.isclose(result["test/f1"], f1.compute())
    assert torch.isclose(result["test/acc_top5"], top5.compute())
    assert not torch.isclose(result["test/f1"], result["test/acc_top5"])


def test_a_backbone_auxiliary_loss_joins_the_training_loss_only():
    import hdvision.models  # noqa: F401  (registers hdvision_detail_windows)

    windows = {"name": "hdvision_detail_windows", "count": 4, "window": 8, "background": 4}
    module = _module(backbone=windows, stem={"name": "none"}, backbone_input=None)
    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 48)
    labels = torch.tensor([1, 2])
    logged = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, value)  # type: ignore[method-assign]
    module.log_dict = lambda *a, **kw: None  # type: ignore[method-assign]
    module.train()
    torch.manual_seed(1)
    loss, logits = module._step({"image": images, "label": labels}, module.train_metrics, "train")
    label_loss = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.0)
    assert torch.allclose(loss, label_loss + logged["train/auxiliary_loss"])
    assert logged["train/auxiliary_loss"] > 0
    module.eval()
    loss, logits = module._step({"image": images, "label": labels}, module.val_metrics, "val")
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, labels))
