"""Structured pruning: channels really go, the pruned checkpoint is plain data and every
after-training command takes it."""

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from hdvision.cli.eval import evaluate
from hdvision.cli.main import main
from hdvision.cli.train import train
from hdvision.compress.prune import prune_backbone, prune_checkpoint
from hdvision.models.cost import count_params, forward_flops
from hdvision.models.module import HDClassifier
from tests.conftest import TINY_SALIENCY, compose


def _tiny_backbone():
    import timm

    torch.manual_seed(0)
    return timm.create_model("test_efficientnet", num_classes=5).eval()


@pytest.mark.parametrize("importance", ["l1", "l2", "random"])
def test_pruning_removes_channels_and_keeps_the_output_shape(importance):
    backbone = _tiny_backbone()
    x = torch.randn(2, 3, 32, 48)
    params, flops = count_params(backbone)[0], forward_flops(backbone, x)
    shapes = prune_backbone(backbone, x[:1], 0.5, importance)
    assert shapes, "no layer changed"
    assert count_params(backbone)[0] < 0.6 * params
    assert forward_flops(backbone, x) < 0.6 * flops
    assert backbone(x).shape == (2, 5)
    # The head's outputs stay whole: the classes, and conv_head's channels (not asked).
    assert backbone.get_classifier().out_features == 5
    assert backbone.conv_head.out_channels == _tiny_backbone().conv_head.out_channels


def test_round_to_keeps_a_multiple_of_that_many_channels():
    # Without it ratio 0.3 leaves counts like 11 and 67; with it every pruned layer's channels
    # are a multiple of 8 (what vectorised CPU kernels run fastest).
    def counts(shapes):
        return {v.get("out_channels", v.get("num_features")) for v in shapes.values()}

    x = torch.randn(1, 3, 32, 48)
    plain = counts(prune_backbone(_tiny_backbone(), x, 0.3))
    assert any(c % 8 for c in plain)
    backbone = _tiny_backbone()
    rounded = counts(prune_backbone(backbone, x, 0.3, round_to=8))
    assert rounded and all(c % 8 == 0 for c in rounded)
    assert backbone(torch.randn(2, 3, 32, 48)).shape == (2, 5)


def test_prune_head_prunes_conv_head_too():
    backbone = _tiny_backbone()
    width = backbone.conv_head.out_channels
    prune_backbone(backbone, torch.randn(1, 3, 32, 48), 0.5, prune_head=True)
    assert backbone.conv_head.out_channels < width
    assert backbone.get_classifier().in_features == backbone.conv_head.out_channels


def test_taylor_uses_the_gradients_of_labelled_batches():
    x, y = torch.randn(4, 3, 32, 48), torch.tensor([0, 1, 2, 3])
    taylor = prune_backbone(_tiny_backbone(), x[:1], 0.5, "taylor", gradient_batches=[(x, y)])
    l1 = prune_backbone(_tiny_backbone(), x[:1], 0.5, "l1")
    assert taylor.keys() == l1.keys()  # same layers, channels chosen by another criterion
    with pytest.raises(ValueError, match="needs labelled images"):
        prune_backbone(_tiny_backbone(), x[:1], 0.5, "taylor")


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_a_ratio_outside_0_1_is_refused(ratio):
    with pytest.raises(ValueError, match=f"prune ratio {ratio} is outside"):
        prune_backbone(_tiny_backbone(), torch.randn(1, 3, 32, 48), ratio)


@pytest.fixture(scope="module")
def pruned(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("pruned") / "pruned.ckpt"
    info = prune_checkpoint(trained_run["ckpt"], out, 0.5)
    return {"ckpt": out, "info": info}


def test_the_pruned_checkpoint_is_plain_data_and_predicts_as_the_pruned_model(trained_run, pruned):
    checkpoint = torch.load(pruned["ckpt"], weights_only=True)  # raises on any pickled object
    recorded = checkpoint["hyper_parameters"]["pruned"]
    assert recorded["ratio"] == 0.5 and recorded["importance"] == "l1"
    assert "optimizer_states" not in checkpoint
    # The same pruning applied in memory to the trained model gives the same logits.
    model = copy.deepcopy(trained_run["model"]).cpu().eval()
    size = model.hparams.backbone_input
    prune_backbone(model.backbone, torch.randn(1, 3, *size), 0.5)
    loaded = HDClassifier.from_checkpoint(str(pruned["ckpt"]))
    assert count_params(loaded.backbone)[0] == pruned["info"]["after"]["params"]
    assert pruned["info"]["after"]["flops"] < 0.5 * pruned["info"]["before"]["flops"]
    images = torch.randint(0, 255, (2, 3, *model.hparams.preprocessing["sample_size"]))
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(loaded.prepare_input(images)), model(model.prepare_input(images))
        )


def test_pruning_a_pruned_checkpoint_is_refused(pruned, tmp_path, capsys):
    assert main(["prune", str(pruned["ckpt"]), "--ratio", "0.5", "--out", str(tmp_path / "x")]) == 2
    assert "is already pruned (ratio 0.5, l1)" in capsys.readouterr().err


def test_prune_command_rejects_a_bad_ratio(trained_run, capsys):
    with pytest.raises(SystemExit) as info:
        main(["prune", str(trained_run["ckpt"]), "--ratio", "1.2"])
    assert info.value.code == 2
    assert "prune ratio 1.2 is outside (0, 1)" in capsys.readouterr().err


def test_predict_and_export_take_a_pruned_checkpoint(trained_run, pruned, tmp_path):
    out = tmp_path / "p.csv"
    test_csv = trained_run["data"] / "test.csv"
    assert main(["predict", str(pruned["ckpt"]), str(test_csv), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1 + 8
    onnx = tmp_path / "p.onnx"
    assert main(["export", str(pruned["ckpt"]), "--out", str(onnx), "--num-images", "4"]) == 0
    assert onnx.stat().st_size > 0


@pytest.mark.slow
def test_eval_and_a_fine_tune_from_init_from_take_a_pruned_checkpoint(pruned, tmp_path):
    no_callbacks = [o for o in TINY_SALIENCY if not o.startswith("callbacks.")]
    eval_cfg = compose("eval", [*no_callbacks, f"ckpt_path={pruned['ckpt']}"], tmp_path)
    metrics, _ = evaluate(eval_cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0

    run = [*TINY_SALIENCY, f"init_from={pruned['ckpt']}", "model.backbone.weights=null"]
    metrics, objects = train(compose("train", run, tmp_path / "finetune"))
    model = objects["model"]
    assert model.hparams.pruned["ratio"] == 0.5
    assert count_params(model.backbone)[0] == pruned["info"]["after"]["params"]
    best = torch.load(objects["trainer"].checkpoint_callback.best_model_path, weights_only=True)
    assert best["hyper_parameters"]["pruned"] == model.hparams.pruned
    # ... and is refused for another pruning: a fine-tuned pruned model is a pruned model.
    assert (
        main(["prune", objects["trainer"].checkpoint_callback.best_model_path, "--ratio", "0.3"])
        == 2
    )


def test_init_from_a_checkpoint_of_another_architecture_names_the_keys(pruned, tmp_path):
    run = [*TINY_SALIENCY, f"init_from={pruned['ckpt']}", "model.backbone_input=[24,32]"]
    with pytest.raises(Exception, match="backbone_input"):
        train(compose("train", run, tmp_path))


def test_a_pruned_checkpoint_loads_in_a_fresh_interpreter(pruned):
    # Nothing but the file: no module state left over from the pruning in this process.
    code = (
        "import sys, torch\n"
        "from hdvision.models.module import HDClassifier\n"
        "m = HDClassifier.from_checkpoint(sys.argv[1])\n"
        "print(sum(p.numel() for p in m.backbone.parameters()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(pruned["ckpt"])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout.split()[-1]) == pruned["info"]["after"]["params"]


def test_layer_shapes_refuse_a_layer_the_backbone_lacks():
    from hdvision.models.layer_shapes import apply_layer_shapes

    with pytest.raises(KeyError, match="blocks.99.conv"):
        apply_layer_shapes(
            nn.Sequential(nn.Conv2d(3, 4, 3)), {"blocks.99.conv": {"out_channels": 2}}
        )
