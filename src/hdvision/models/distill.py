"""Knowledge distillation: a frozen teacher from a checkpoint, and the loss
``α · KL(softmax(t/T) ‖ softmax(s/T)) · T² + (1 − α) · CE`` (Hinton et al., 2015).

The teacher may have another stem, backbone or input size than the student: it is rebuilt from
its own checkpoint (``HDClassifier.from_checkpoint``, by the student) and fed the same
uint8 batch through its own ``prepare_input``. It is held outside the student's modules, so it
stays in eval mode, gets no gradient, and is neither saved in the student's checkpoint nor wrapped
by DDP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from hdvision.models.checkpoint import CheckpointError


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, KL term · T², cross-entropy) for one batch."""
    t = temperature
    kd = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        log_target=True,
        reduction="batchmean",
    ) * (t * t)
    ce = F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)
    return alpha * kd + (1 - alpha) * ce, kd, ce


class Teacher:
    """A trained model (an ``HDClassifier`` rebuilt from the checkpoint at ``path``) in eval mode
    that maps the student's uint8 batch to logits without gradients."""

    # ``model`` is an HDClassifier, typed loosely: naming the class here would import the module
    # that builds the teacher (an import circle).
    def __init__(self, model: Any, path: str, class_names: Sequence[str] | None) -> None:
        self.path = str(path)
        self.model = model
        self.model.requires_grad_(False)
        names = list(self.model.hparams.class_names)
        if class_names is not None and names != list(class_names):
            raise CheckpointError(
                f"model.distill.teacher={path}: its classes {names} differ from the data's "
                f"{list(class_names)}; a teacher must be trained on the same classes, in order"
            )
        self.sample_size = tuple(self.model.hparams.preprocessing["sample_size"])

    def to(self, device: torch.device) -> Teacher:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of uint8 (B, 3, H, W) images, resized to the teacher's own decode size when
        the student's data are decoded at another one."""
        self.model.eval()
        if tuple(images.shape[-2:]) != self.sample_size:
            images = F.interpolate(images.float(), size=self.sample_size, mode="area")
        return self.model(self.model.prepare_input(images))


def check_distill(spec: dict[str, Any]) -> dict[str, Any]:
    """``model.distill``: {teacher: path, alpha in [0, 1], temperature > 0}, checked."""
    unknown = set(spec) - {"teacher", "alpha", "temperature"}
    if unknown:
        raise ValueError(f"model.distill: unknown keys {sorted(unknown)}")
    if not spec.get("teacher"):
        raise ValueError("model.distill.teacher: the teacher's checkpoint path is required")
    alpha, temperature = float(spec.get("alpha", 0.5)), float(spec.get("temperature", 4.0))
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"model.distill.alpha must be in [0, 1], got {alpha}")
    if temperature <= 0:
        raise ValueError(f"model.distill.temperature must be > 0, got {temperature}")
    return {"teacher": str(spec["teacher"]), "alpha": alpha, "temperature": temperature}
