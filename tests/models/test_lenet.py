import pytest
import timm
import torch

from hdvision.models.lenet import LeNet


@pytest.mark.parametrize(
    "kwargs",
    [
        {"img_size": 7},
        {"img_size": 28},
        {"img_size": 28, "s1": 2, "d1": 4, "p1": 1},
        {"img_size": 28, "k1": 9, "c1": 3, "p1": 0, "extra_pool": 2},
        {"img_size": 28, "head_pool": 7, "hidden": 40},
    ],
)
def test_feature_size_is_what_fc1_gets(kwargs):
    model = LeNet(**kwargs)
    size = kwargs["img_size"]
    side = model.feature_size(size)
    assert model.fc1.in_features == 16 * side * side
    assert model(torch.zeros(2, 3, size, size)).shape == (2, 10)


def test_registered_with_timm_and_normalised_to_plus_minus_one():
    from hdvision.models import backbone  # noqa: F401  (registers it)
    from hdvision.models.backbone import normalization

    model = timm.create_model("hdvision_lenet", num_classes=4, img_size=14, global_pool="avg")
    assert model(torch.zeros(1, 3, 14, 14)).shape == (1, 4)
    assert normalization(model) == ((0.5,) * 3, (0.5,) * 3)
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("hdvision_lenet", pretrained=True)
