import pytest
import torch

from hdvision.models import HDClassifier
from hdvision.models.patch_select import PatchSelect


def _model(**kw):
    torch.manual_seed(0)
    args = {"encoder": "test_efficientnet", "patch_size": 16, "k": 3, "score_size": 8, "chunk": 5}
    return PatchSelect(num_classes=4, **{**args, **kw})


def test_selects_k_patches_of_the_full_resolution_image():
    model = _model().eval()
    x = torch.rand(2, 3, 48, 64)
    patches = model.patches(x)
    assert patches.shape == (2, 12, 3, 16, 16)
    assert torch.equal(patches[1, 5], x[1, :, 16:32, 16:32])  # row 1, column 1
    index = model.select(patches)
    assert index.shape == (2, 3) and int(index.max()) < 12
    assert all(len(set(row.tolist())) == 3 for row in index)  # k distinct patches
    # The running top-k over chunks finds the same patches as scoring all at once.
    assert torch.equal(
        index.sort(1).values, _model(chunk=100).eval().select(patches).sort(1).values
    )
    assert model(x).shape == (2, 4)


def test_pooling_weighs_the_chosen_patches_as_selection_scored_them():
    # Selection scores 8 px views in eval mode; the pooling weights the scorer learns from must
    # be those same scores (not the attention on 16 px, train-mode embeddings).
    model = _model().train()
    x = torch.rand(2, 3, 48, 64)
    patches = model.patches(x)
    with torch.no_grad():
        index = model.select(patches)
        expected = model.score_views(patches).gather(1, index)
    seen = []
    model.attention.register_forward_hook(lambda m, i, out: seen.append(out.squeeze(-1)))
    model(x).sum().backward()
    torch.testing.assert_close(seen[-1], expected)
    assert seen[-1].requires_grad and model.attention[0].weight.grad.abs().sum() > 0
    assert model.encoder.training


def test_scoring_keeps_nothing_for_backward_however_many_patches():
    def saved_numel(size):
        model = _model().train()
        total = 0

        def pack(tensor):
            nonlocal total
            total += tensor.numel()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(torch.rand(2, 3, size, size)).sum().backward()
        return total

    assert saved_numel(32) == saved_numel(128)  # 4 patches scored vs 64: the same 3 encoded


def test_scoring_leaves_batchnorm_statistics_and_train_mode_alone():
    model = _model().train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    with torch.no_grad():
        model.select(model.patches(torch.rand(2, 3, 48, 48)))
    after = {k: v for k, v in model.state_dict().items() if "running" in k}
    assert all(torch.equal(before[k], after[k]) for k in before) and model.encoder.training


def test_precise_batchnorm_gathers_statistics_through_the_selection():
    # Precise BN puts only the BatchNorms of an eval-mode model in train mode; scoring must hand
    # them back in train mode, or the full-resolution pass records nothing (mean 0, var 1 left).
    from torch.nn.modules.batchnorm import _BatchNorm

    from hdvision.callbacks.precise_bn import recompute_batchnorm_stats

    model = _model().eval()
    assert recompute_batchnorm_stats(model, [torch.rand(2, 3, 48, 48) + 1.0] * 2) == 2
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert layers and all(int(m.num_batches_tracked) == 2 for m in layers)
    assert float(layers[0].running_mean.abs().sum()) > 0
    assert not model.training and not layers[0].training


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="must be positive"):
        _model(k=0)
    with pytest.raises(ValueError, match="smaller than patch_size=16"):
        _model()(torch.rand(1, 3, 8, 8))


def test_a_fast_run_with_patch_selection_completes(tmp_path):
    from hdvision.cli.train import train
    from tests.conftest import TINY, compose, counted_over

    overrides = [o for o in TINY if not o.startswith("model.")] + [
        "model=patch_select",
        "model.backbone.encoder=test_efficientnet",
        "model.backbone.encoder_weights=null",
        "model.backbone.patch_size=16",
        "model.backbone.k=4",
        "model.backbone.score_size=8",
        "data.aug_scale=1.0",
        "callbacks.precise_bn.num_batches=2",
    ]
    metrics, objects = train(compose("train", overrides, tmp_path))
    assert objects["model"].backbone.k == 4 and counted_over(metrics["test/acc"], 8)
    assert metrics["train/loss"] > 0
    # Rebuilt from the checkpoint alone: the encoder's pretrained file is not read again (it
    # need not be installed where the model is used).

    path = objects["trainer"].checkpoint_callback.best_model_path
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["backbone"]["encoder_weights"] = "weights_not_installed_here"
    torch.save(checkpoint, tmp_path / "moved.ckpt")
    model = HDClassifier.from_checkpoint(tmp_path / "moved.ckpt")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, checkpoint["state_dict"][name])
