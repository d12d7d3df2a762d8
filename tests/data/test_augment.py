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


def _digit_masks(size=(60, 80), side=12):
    """Five square 'digits', four touching the corners and one in the middle, labelled 1-5."""
    height, width = size
    mask = np.zeros(size, np.uint8)
    corners = [(0, 0), (0, width - side), (height - side, 0), (height - side, width - side)]
    for label, (y, x) in enumerate([*corners, (height // 2 - side // 2, width // 2)], start=1):
        mask[y : y + side, x : x + side] = label
    return mask


def _boxes(mask):
    """(height, width) of each label's bounding box (0, 0 when it is gone)."""
    sizes = []
    for label in range(1, 6):
        rows, cols = np.nonzero(mask == label)
        sizes.append((np.ptp(rows) + 1, np.ptp(cols) + 1) if len(rows) else (0, 0))
    return np.array(sizes)


def test_shrink_shift_keeps_every_digit_whole_on_the_canvas():
    # Affine's translation would push a corner digit off the canvas (the label changes); the
    # shrink-then-shift never does: each square digit stays a square, as large as the middle one.
    mask = _digit_masks()
    image = np.stack([mask * 40] * 3, -1)
    pipeline = build_augmentations({"ShrinkShift": {"scale": [0.7, 1.0], "p": 1.0}}, mask.shape)
    moved = 0
    for seed in range(40):
        pipeline.set_random_seed(seed)
        out = pipeline(image=image, mask=mask)
        assert out["image"].shape == image.shape and out["mask"].shape == mask.shape
        boxes = _boxes(out["mask"])
        assert boxes.min() >= round(12 * 0.7) - 1  # every digit there, none cut to a sliver
        assert np.abs(boxes[:, 0] - boxes[:, 1]).max() <= 1  # still squares: nothing cut off
        assert np.abs(boxes - boxes[-1]).max() <= 1  # the corners as large as the middle one
        moved += not np.array_equal(out["mask"], mask)
    assert moved >= 30  # it did shrink and move the canvas


def test_affine_translation_is_what_shrink_shift_avoids():
    # The reason for ShrinkShift: the same corner digits under Affine's translation get cut.
    mask = _digit_masks()
    pipeline = build_augmentations(
        {"Affine": {"translate_percent": [0.1, 0.2], "p": 1.0}}, mask.shape
    )
    out = pipeline(image=np.stack([mask] * 3, -1), mask=mask)["mask"]
    boxes = _boxes(out)
    assert np.abs(boxes[:, 0] - boxes[:, 1]).max() > 1 or boxes.min() == 0


def test_shrink_shift_rejects_a_scale_above_one():
    with pytest.raises(ValueError, match=r"ShrinkShift scale must be .*got \[0.9, 1.2\]"):
        build_augmentations({"ShrinkShift": {"scale": [0.9, 1.2]}}, (8, 8))
