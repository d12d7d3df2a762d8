"""Knowledge distillation: the loss is the formula, the teacher is frozen, a run completes."""

import math

import pytest
import torch
import torch.nn.functional as F

from hdvision.cli.train import train
from hdvision.models.checkpoint import CheckpointError
from hdvision.models.distill import Teacher, check_distill, distillation_loss
from hdvision.models.module import HDClassifier
from tests.conftest import TINY, compose, counted_over


def test_the_loss_is_alpha_kl_t2_plus_one_minus_alpha_ce_on_fixed_logits():
    s = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    t = torch.tensor([[1.5, 1.0, -2.0], [-1.0, 0.0, 2.0]])
    y = torch.tensor([0, 2])
    alpha, temp = 0.7, 3.0
    total, kd, ce = distillation_loss(s, t, y, alpha, temp)
    p_t, p_s = F.softmax(t / temp, 1), F.softmax(s / temp, 1)
    kl = (p_t * (p_t.log() - p_s.log())).sum(1).mean()  # KL(p_t || p_s), mean over the batch
    want_ce = -F.log_softmax(s, 1)[torch.arange(2), y].mean()
    torch.testing.assert_close(kd, kl * temp**2)
    torch.testing.assert_close(ce, want_ce)
    torch.testing.assert_close(total, alpha * kl * temp**2 + (1 - alpha) * want_ce)
    # A student equal to its teacher has no KL term.
    assert distillation_loss(t, t, y, 1.0, temp)[0].item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"alpha": 0.5}, "teacher's checkpoint path is required"),
        ({"teacher": "t.ckpt", "alpha": 1.5}, "alpha must be in \\[0, 1\\], got 1.5"),
        ({"teacher": "t.ckpt", "temperature": 0}, "temperature must be > 0, got 0.0"),
        ({"teacher": "t.ckpt", "beta": 1}, "unknown keys \\['beta'\\]"),
    ],
)
def test_bad_distill_settings_name_the_value(spec, message):
    with pytest.raises(ValueError, match=message):
        check_distill(spec)


def test_a_teacher_with_other_classes_is_refused(trained_run, tmp_path):
    checkpoint = torch.load(trained_run["ckpt"], weights_only=True)
    names = checkpoint["hyper_parameters"]["class_names"]
    checkpoint["hyper_parameters"]["class_names"] = [f"x{n}" for n in names]
    other = tmp_path / "other.ckpt"
    torch.save(checkpoint, other)
    with pytest.raises(CheckpointError, match="its classes .* differ from the data's"):
        Teacher(HDClassifier.from_checkpoint(other), str(other), names)


@pytest.mark.slow
def test_a_run_with_a_teacher_trains_the_student_only(trained_run, tmp_path, monkeypatch):
    teacher_ckpt = torch.load(trained_run["ckpt"], weights_only=True)["state_dict"]
    # Another stem and decode size than the teacher's (saliency sampler on 32x48 batches): the
    # student's batches are 64x96, the teacher sees them area-resized to its own size.
    run = [
        *TINY,
        "model/stem=resize",
        "data.aug_scale=1.0",
        "model/distill=kd",
        f"model.distill.teacher={trained_run['ckpt']}",
        "model.distill.alpha=0.9",
        "trainer.max_epochs=2",
    ]
    seen = []
    real_forward = HDClassifier.forward

    def spy(self, x):
        seen.append((self.hparams.stem["name"], tuple(x.shape[-2:])))
        return real_forward(self, x)

    monkeypatch.setattr(HDClassifier, "forward", spy)
    metrics, objects = train(compose("train", run, tmp_path))
    assert ("saliency_sampler", (32, 48)) in seen and ("resize", (64, 96)) in seen
    model = objects["model"]
    teacher = model.teacher.model
    assert not teacher.training
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value.cpu(), teacher_ckpt[key]), key  # BN statistics included
    assert math.isfinite(metrics["train/kd_loss"]) and math.isfinite(metrics["train/ce_loss"])
    assert counted_over(metrics["test/acc"], 8)
    # The student's checkpoint holds the student only, and loads without the teacher file.
    best = objects["trainer"].checkpoint_callback.best_model_path
    keys = torch.load(best, weights_only=True)["state_dict"].keys()
    assert not any(k.startswith("teacher") for k in keys)
    student = HDClassifier.from_checkpoint(best)
    assert student.teacher is None and student.hparams.stem["name"] == "resize"
