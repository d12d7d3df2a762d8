"""``hdvision qat``: the checkpoint's model fine-tuned with int8 simulated in its backbone, written
as an ordinary checkpoint of the same model that export and quantize take as before."""

import pytest
import torch

from hdvision.cli.main import main
from hdvision.compress.qat import simulated_int8
from hdvision.models.checkpoint import read_checkpoint
from hdvision.models.module import HDClassifier


def test_the_simulation_rounds_every_convolution_and_switches_its_batch_norm():
    import timm

    backbone = timm.create_model("test_efficientnet", num_classes=4).eval()
    x = torch.randn(4, 3, 32, 32)
    stats = backbone.bn1.running_mean.clone()
    simulated = simulated_int8(backbone, x[:2])
    assert not backbone.training and torch.equal(backbone.bn1.running_mean, stats)
    graph = simulated.graph
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in backbone.modules())
    rounding = [m for name, m in graph.named_modules() if name.startswith("activation_post_")]
    assert len(rounding) >= convs  # at least each convolution's input is rounded
    # The weights are written back by name: every one of the backbone's names is in the graph.
    assert set(backbone.state_dict()) <= set(graph.state_dict())
    with torch.no_grad():
        simulated.train()  # batch statistics: one image's output depends on the others
        assert not torch.allclose(simulated(x)[:1], simulated(x[:1]), atol=1e-4)
        simulated.train(False)  # running statistics: it does not
        assert not simulated.training
        assert torch.allclose(simulated(x)[:1], simulated(x[:1]), atol=1e-5)


@pytest.mark.slow
def test_qat_writes_a_checkpoint_of_the_same_model_that_loads_and_exports(
    trained_run, tmp_path, capsys
):
    out = tmp_path / "qat.ckpt"
    argv = ["qat", str(trained_run["ckpt"]), "--num-images", "16", "--batch-size", "4"]
    assert main([*argv, "--workers", "0", "--out", str(out)]) == 0
    assert "hdvision export" in capsys.readouterr().out
    before, after = read_checkpoint(trained_run["ckpt"]), read_checkpoint(out)
    assert after["hyper_parameters"] == before["hyper_parameters"]
    assert after["quantization_aware"] == {"epochs": 1, "images": 16, "lr": 1e-4}
    assert after["state_dict"].keys() == before["state_dict"].keys()
    moved = [k for k in before["state_dict"] if k.startswith("backbone.")]
    assert any(not torch.equal(before["state_dict"][k], after["state_dict"][k]) for k in moved)
    model = HDClassifier.from_checkpoint(out)  # the same model, as every command reads it
    images = torch.randint(0, 256, (2, 3, *model.hparams.preprocessing["sample_size"]))
    with torch.no_grad():
        assert torch.isfinite(model(model.prepare_input(images.to(torch.uint8)))).all()
    assert not list(tmp_path.glob(".qat.ckpt*"))  # no draft left


def test_qat_needs_labelled_images(trained_run, tmp_path, capsys):
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for image in sorted(trained_run["data"].glob("test/*"))[:4]:
        (folder / image.name).write_bytes(image.read_bytes())
    argv = ["qat", str(trained_run["ckpt"]), "--images", str(folder), "--out", str(tmp_path / "q")]
    assert main(argv) != 0
    assert "labelled images" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()
