import albumentations as A
import numpy as np
import pytest
import torch

from hdvision.data.device_augment import build_device_augmentations


def _noise(**spec):
    augmentation = build_device_augmentations({"GaussNoise": spec})
    assert augmentation is not None
    return augmentation


def test_noise_std_matches_albumentations_gauss_noise():
    # Same spec on both sides must mean the same noise level (std as a fraction of 255).
    image = np.full((128, 128, 3), 128, dtype=np.uint8)
    host = A.GaussNoise(std_range=(0.1, 0.1), p=1.0)(image=image)["image"].astype(np.float32)
    torch.manual_seed(0)
    device = _noise(std_range=(0.1, 0.1), p=1.0)(torch.full((1, 3, 128, 128), 128.0))
    host_std, device_std = float((host - 128).std()), float((device - 128).std())
    assert host_std == pytest.approx(25.5, rel=0.05)
    assert device_std == pytest.approx(host_std, rel=0.05)
    assert float((device - 128).mean()) == pytest.approx(0, abs=0.5)


def test_noise_std_is_drawn_per_image_from_the_range_like_albumentations():
    torch.manual_seed(0)
    noisy = _noise(std_range=(0.05, 0.3), p=1.0)(torch.full((64, 3, 64, 64), 128.0))
    stds = (noisy - 128).flatten(1).std(1) / 255
    assert 0.04 < float(stds.min()) < 0.08 and 0.27 < float(stds.max()) < 0.31
    assert float(stds.std()) > 0.05  # not one std for the whole batch


def test_noise_is_clipped_per_image_optional_and_shared_across_channels_on_request():
    torch.manual_seed(0)
    images = torch.full((64, 3, 8, 8), 250.0)
    noisy = _noise(std_range=(0.3, 0.3), p=0.5)(images)
    assert noisy.min() >= 0 and noisy.max() <= 255
    changed = (noisy - images).abs().flatten(1).amax(1) > 1e-3
    assert 16 < int(changed.sum()) < 48  # p applies per image
    assert torch.allclose(_noise(p=0.0)(images), images)
    mono = _noise(per_channel=False, p=1.0)(torch.full((2, 3, 8, 8), 128.0))
    assert torch.equal(mono[:, 0], mono[:, 1]) and torch.equal(mono[:, 0], mono[:, 2])


def test_any_kornia_transform_by_name_in_order_on_a_0_255_batch():
    torch.manual_seed(0)
    augmentation = build_device_augmentations(
        {"RandomHorizontalFlip": {"p": 1.0}, "RandomInvert": {"p": 1.0}}
    )
    images = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    assert torch.allclose(augmentation(images), 255 - images.flip(-1), atol=1e-4)


def test_build_checks_names_and_arguments_without_touching_the_rng():
    torch.manual_seed(3)
    state = torch.get_rng_state()
    noise = build_device_augmentations({"GaussNoise": {"p": 1.0}, "Removed": None})
    assert torch.equal(torch.get_rng_state(), state)
    assert noise(torch.full((1, 3, 4, 4), 128.0)).ne(128).any()
    assert build_device_augmentations({"Removed": None}) is None
    with pytest.raises(ValueError, match="'Blurr'.*GaussNoise.*kornia.augmentation"):
        build_device_augmentations({"Blurr": {"p": 1.0}})
    with pytest.raises(ValueError, match="'AugmentationSequential'"):
        build_device_augmentations({"AugmentationSequential": {}})
    with pytest.raises(ValueError, match="device_augmentations.GaussNoise.*sigma"):
        build_device_augmentations({"GaussNoise": {"sigma": 3}})
    with pytest.raises(ValueError, match="std_range"):
        build_device_augmentations({"GaussNoise": {"std_range": [0.5, 0.1]}})
    with pytest.raises(ValueError, match="device_augmentations.RandomGaussianBlur.*odd"):
        build_device_augmentations({"RandomGaussianBlur": {"kernel_size": 4, "sigma": [1, 2]}})
