"""Lightning callbacks (one concern each; ``conf/callbacks/`` has one entry per callback). Configs
name them by these short paths (``_target_: hdvision.callbacks.Preemption``)."""

from hdvision.callbacks.bad_images import BadImageReport
from hdvision.callbacks.elapsed import ElapsedTime
from hdvision.callbacks.finetuning import BackboneFreeze
from hdvision.callbacks.precise_bn import PreciseBatchNorm
from hdvision.callbacks.preemption import Preemption
from hdvision.callbacks.report import TrainingReport
from hdvision.callbacks.resumable_epochs import ResumableEpochs
from hdvision.callbacks.val_images import ValidationImages
from hdvision.callbacks.window_schedule import WindowSchedule

__all__ = [
    "BackboneFreeze",
    "BadImageReport",
    "ElapsedTime",
    "PreciseBatchNorm",
    "Preemption",
    "ResumableEpochs",
    "TrainingReport",
    "ValidationImages",
    "WindowSchedule",
]
