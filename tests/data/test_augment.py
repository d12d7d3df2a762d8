import albumentations as A
import numpy as np
import pytest

from hdvision.data.augment import build_augmentations


def test_eval_pipeline_is_deterministic_and_exact_size():
    pipeline = build_augmentations({"HorizontalFlip": {"p": 1.0}}, (30, 40), train=False)
    image = np.random.default_rng(0).integers(0, 255, (24, 40, 3), dtype=np.uint8)
    out = pipeline(image=image)["image"]
    assert out.shape == (30, 40, 3)
    assert np.array_equal(out[3:27], image)  # letterboxed, not flipped


def test_train_pipeline_builds_named_transforms_and_drops_null_entries():
    pipeline = build_augmentations(
        {"HorizontalFlip": {"p": 1.0}, "Blur": None, "Affine": {"rotate": [-5, 5]}}, (8, 8)
    )
    names = [type(t).__name__ for t in pipeline.transforms]
    assert names[-2:] == ["HorizontalFlip", "Affine"] and "Blur" not in names
    image = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    flipped = build_augmentations({"HorizontalFlip": {"p": 1.0}}, (8, 8))(image=image)["image"]
    assert np.array_equal(flipped, image[:, ::-1])


def test_unknown_transform_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown Albumentations transform 'Blurr'"):
        build_augmentations([{"name": "Blurr"}], (8, 8))


def test_crop_fit_crops_randomly_in_training_only():
    train = build_augmentations(None, (8, 8), fit="crop", train=True)
    evaluation = build_augmentations(None, (8, 8), fit="crop", train=False)
    assert isinstance(train.transforms[-1], A.RandomCrop)
    assert isinstance(evaluation.transforms[-1], A.CenterCrop)
