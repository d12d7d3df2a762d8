"""hdvision resolution-search: every printed candidate is re-counted here, on the CPU, with
FlopCounterMode and parameter sums; the rest of the network is checked to be untouched."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hdvision.cli.main import main
from hdvision.cli.train import train
from hdvision.models.backbone import create_backbone
from hdvision.tools.resolution_report import write_experiments
from hdvision.tools.resolution_search import LENET, SearchError, search
from tests.conftest import compose

LENET_SPEC = {"name": LENET, "weights": None}


def recount(backbone, size):
    """params, FLOPs and (name, output shape, params) of every leaf layer, on the CPU."""
    model = create_backbone(num_classes=10, **backbone).eval()
    layers = []
    for name, module in model.named_modules():
        if not list(module.children()):
            module.register_forward_hook(
                lambda m, _, out, name=name: layers.append(
                    (name, tuple(out.shape), sum(p.numel() for p in m.parameters()))
                )
            )
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.rand(1, 3, size, size))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops(), layers


def after(layers, modified):
    names = [n for n, _, _ in layers]
    last = max(names.index(m) for m in modified if m in names)
    return layers[last + 1 :]


# Approach IV counts thousands of geometries (~20 s): once, under the budget that checks both.
@pytest.mark.parametrize(
    "budget, keys, approaches",
    [("params", [0], "I,II,III"), ("flops", [1], "I,II,III"), ("both", [0, 1], "I,II,III,IV")],
)
def test_every_lenet_candidate_has_the_counted_cost_it_reports_within_tolerance(
    budget, keys, approaches
):
    original, results = search(
        LENET_SPEC, 7, 14, budget, tolerance=0.05, top=3, approaches=approaches.split(",")
    )
    params0, flops0, layers0 = recount(dict(LENET_SPEC, img_size=7), 7)
    assert (original.params, original.flops) == (params0, flops0)
    printed = [c for found in results.values() if isinstance(found, list) for c in found]
    assert printed, results
    modified = {"II": ["conv1"], "III": ["conv2"], "IV": ["conv2"]}
    for candidate in printed:
        params, flops, layers = recount(candidate.backbone, 14)
        assert (candidate.cost.params, candidate.cost.flops) == (params, flops)
        for k in keys:
            assert abs((params, flops)[k] / (params0, flops0)[k] - 1) <= 0.05
        if candidate.approach in modified:  # the layers after the changed ones are untouched
            names = modified[candidate.approach]
            assert after(layers, names) == after(layers0, names), candidate.changes


def test_approach_two_keeps_params_and_flops_exactly_and_three_adds_a_pool():
    _, results = search(LENET_SPEC, 7, 28, "both", tolerance=0.0, approaches=["II"])
    (best, *_) = results["II"]
    assert best.backbone["d1"] > 1 or best.backbone["s1"] > 1
    _, results = search(LENET_SPEC, 14, 28, "params", tolerance=0.02, approaches=["III"])
    for candidate in results["III"]:
        spec = candidate.backbone
        assert spec["extra_pool"] > 1 and spec["k1"] > 5 and spec["c1"] < 6


def test_approach_one_pools_before_fc1_and_matches_params():
    original, results = search(LENET_SPEC, 7, 28, "params", tolerance=0.0, approaches=["I"])
    (candidate,) = results["I"][:1]
    assert candidate.backbone["head_pool"] > 1
    assert candidate.cost.params == original.params
    assert candidate.cost.flops > 10 * original.flops  # the convolutions run at 28 px


def test_timm_stem_is_re_solved_and_the_rest_of_the_network_is_untouched():
    spec = {"name": "test_efficientnet", "weights": None}
    # Its first block is a full 3x3 convolution: a larger kernel there costs ~20 %.
    original, results = search(spec, 32, 64, "both", tolerance=0.25, top=2)
    assert "not applicable" in results["I"] and "not applicable" in results["III"]
    params0, flops0, layers0 = recount(spec, 32)
    assert len(results["II"]) == 1 and len(results["IV"]) == 2
    for candidate in results["II"] + results["IV"]:
        params, flops, layers = recount(candidate.backbone, 64)
        assert (candidate.cost.params, candidate.cost.flops) == (params, flops)
        assert abs(flops / flops0 - 1) <= 0.25 and abs(params / params0 - 1) <= 0.25
        modified = list(candidate.backbone["conv_overrides"])
        assert after(layers, modified) == after(layers0, modified)
    model = create_backbone(num_classes=10, **results["II"][0].backbone)
    assert model.conv_stem.stride[0] * model.conv_stem.dilation[0] > 2


def test_bad_requests_say_what_is_wrong(capsys):
    with pytest.raises(SearchError, match="must be larger"):
        search(LENET_SPEC, 28, 14)
    with pytest.raises(SearchError, match="--approach takes I,II,III,IV"):
        search(LENET_SPEC, 7, 14, approaches=["V"])
    with pytest.raises(SearchError, match="--budget"):
        search(LENET_SPEC, 7, 14, budget="memory")
    _, results = search(LENET_SPEC, 7, 14, "params", tolerance=0.0, approaches=["III"])
    assert "none within 0.0% on params; the closest differs by" in results["III"]
    _, results = search(LENET_SPEC, 7, 200, "params", approaches=["II"])  # stride <= 8
    assert results["II"].startswith("no integer kernel / stride / padding")
    assert main(["resolution-search", "--model", "nosuch", "--from", "7", "--to", "14"]) == 2
    assert "not a packaged model config" in capsys.readouterr().err
    argv = ["resolution-search", "--from", "7", "--to", "14", "--tolerance", "0", "--approach"]
    assert main([*argv, "III"]) == 1
    assert "no approach has a candidate" in capsys.readouterr().err
    with pytest.raises(SearchError, match="cannot build hdvision_lenet at 7 px.*no feature map"):
        search({"name": LENET, "weights": None, "p1": 0, "p2": 0}, 7, 14)


def test_lenet_without_a_feature_map_names_its_arguments():
    with pytest.raises(ValueError, match="7 px input leaves no feature map.*p1=0"):
        create_backbone("hdvision_lenet", num_classes=10, img_size=7, p1=0, p2=0)


def test_conv_overrides_keep_fitting_weights_and_refuse_other_layers():
    torch.manual_seed(0)
    base = create_backbone("test_efficientnet", num_classes=10)
    torch.manual_seed(0)
    strided = create_backbone(
        "test_efficientnet",
        num_classes=10,
        conv_overrides={"conv_stem": {"stride": 4, "padding": 1}},
    )
    assert isinstance(strided.conv_stem, nn.Conv2d) and strided.conv_stem.stride == (4, 4)
    assert torch.equal(strided.conv_stem.weight, base.conv_stem.weight)
    with pytest.raises(ValueError, match="'bn1' is not a Conv2d"):
        create_backbone("test_efficientnet", num_classes=10, conv_overrides={"bn1": {}})
    with pytest.raises(ValueError, match="unknown keys \\['groups'\\]"):
        create_backbone(
            "test_efficientnet", num_classes=10, conv_overrides={"conv_stem": {"groups": 2}}
        )


@pytest.mark.slow
def test_written_experiments_train_through_train_py(tmp_path, capsys):
    code = main(
        [
            "resolution-search",
            "--from",
            "7",
            "--to",
            "14",
            "--approach",
            "II",
            "--top",
            "1",
            "--write-experiments",
            str(tmp_path / "conf"),
        ]
    )
    assert code == 0 and "-m experiment=res_original_7,res_original_14,res_II_0_14" in (
        capsys.readouterr().out
    )
    overrides = [
        "experiment=res_II_0_14",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "debug=limit",
        "extras.print_config=false",
        "extras.cost_report=false",
        "callbacks.rich_progress_bar=null",
    ]
    cfg = compose("train", overrides, tmp_path / "run")
    assert cfg.data.image_size == [14, 14] and cfg.model.backbone.d1 * cfg.model.backbone.s1 > 1
    metrics, objects = train(cfg)
    assert objects["model"].backbone.conv1.dilation[0] == cfg.model.backbone.d1
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["train/loss"] > 0


def test_experiment_files_describe_each_candidate(tmp_path):
    _, results = search(LENET_SPEC, 7, 14, "params", approaches=["II", "III"], top=2)
    names = write_experiments(tmp_path, LENET_SPEC, 7, 14, results)
    assert names[:2] == ["res_original_7", "res_original_14"]
    text = (tmp_path / "experiment" / f"{names[2]}.yaml").read_text()
    assert text.startswith("# @package _global_\n# hdvision resolution-search: approach II")
    assert "defaults: [lenet_mnist]" in text and "image_size: [14, 14]" in text
