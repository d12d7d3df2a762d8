import albumentations as A
import numpy as np
import pytest
import torch

from hdvision.data.device_augment import build_device_augmentations, gaussian_noise


def test_noise_std_matches_albumentations_gauss_noise():
    # Same spec on both sides must mean the same noise level (std as a fraction of 255).
    image = np.full((128, 128, 3), 128, dtype=np.uint8)
    host = A.GaussNoise(std_range=(0.1, 0.1), p=1.0)(image=image)["image"].astype(np.float32)
    torch.manual_seed(0)
    device = gaussian_noise(torch.full((1, 3, 128, 128), 128.0), std_range=(0.1, 0.1), p=1.0)
    host_std, device_std = float((host - 128).std()), float((device - 128).std())
    assert host_std == pytest.approx(25.5, rel=0.05)
    assert device_std == pytest.approx(host_std, rel=0.05)
    assert float((device - 128).mean()) == pytest.approx(0, abs=0.5)


def test_noise_is_clipped_per_image_optional_and_shared_across_channels_on_request():
    torch.manual_seed(0)
    images = torch.full((64, 3, 8, 8), 250.0)
    noisy = gaussian_noise(images, std_range=(0.3, 0.3), p=0.5)
    assert noisy.min() >= 0 and noisy.max() <= 255
    changed = (noisy != images).flatten(1).any(1)
    assert 16 < int(changed.sum()) < 48  # p applies per image
    assert torch.equal(gaussian_noise(images, p=0.0), images)
    mono = gaussian_noise(torch.full((2, 3, 8, 8), 128.0), per_channel=False, p=1.0)
    assert torch.equal(mono[:, 0], mono[:, 1]) and torch.equal(mono[:, 0], mono[:, 2])


def test_build_checks_names_and_arguments_without_touching_the_rng():
    torch.manual_seed(3)
    state = torch.get_rng_state()
    (noise,) = build_device_augmentations({"GaussNoise": {"p": 1.0}, "Removed": None})
    assert torch.equal(torch.get_rng_state(), state)
    assert noise(torch.full((1, 3, 4, 4), 128.0)).ne(128).any()
    with pytest.raises(ValueError, match="'Blur'.*available: \\['GaussNoise'\\]"):
        build_device_augmentations({"Blur": {"p": 1.0}})
    with pytest.raises(ValueError, match="device_augmentations.GaussNoise.*sigma"):
        build_device_augmentations({"GaussNoise": {"sigma": 3}})
    with pytest.raises(ValueError, match="std_range"):
        build_device_augmentations({"GaussNoise": {"std_range": [0.5, 0.1]}})
