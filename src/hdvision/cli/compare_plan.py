"""How long each variant of ``hdvision compare`` trains: a ``--images`` budget as whole epochs of
equal length, a ``--minutes`` budget as the epochs and steps whose measured time fits (the
training step of each phase of the run, and each epoch's validation), so that the learning-rate
schedule ends when the time does."""

from __future__ import annotations

import math
from typing import Any

from hdvision.tools.compare import epochs_within

# Steps the model is timed for when sizing a --minutes schedule. Validation and the BatchNorm
# passes before it are timed too; MARGIN is the share of the budget left for what is not: on
# photo_hd_windows (2 cores) training steps ran 4-19 % slower than timed (the loader's workers
# share the cores), and each epoch's validation about 4 s longer (checkpoints, the validation
# images' plot, loader workers starting).
TIMED_STEPS = 12
MARGIN = 0.15


def schedule(cfg: Any, minutes: float | None, images: int | None) -> dict:
    """The training budget of one variant as overrides (max_steps, max_epochs, max_time)."""
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = int(cfg.data.batch_size)
    per_epoch = max(1, len(datamodule.datasets["train"]) // batch)
    plan: dict[str, Any] = {"batch_size": batch}
    if images is not None:
        steps = math.ceil(images / batch)
        # Whole epochs of equal length: every epoch ends with a validation (a run stopped by
        # max_steps in the middle of an epoch would end without one).
        epochs = math.ceil(steps / per_epoch)
        batches = math.ceil(steps / epochs)
    else:
        assert minutes is not None
        phases = timed_phases(cfg, datamodule, plan)
        epochs, batches = epochs_within(minutes * 60 * (1 - MARGIN), per_epoch, phases)
        seconds = round(minutes * 60)
        plan["max_time"] = f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    plan["max_epochs"], plan["batches_per_epoch"] = epochs, batches
    plan["max_steps"] = epochs * batches
    return plan


def timed_phases(cfg: Any, datamodule: Any, plan: dict[str, Any]) -> list[tuple[int, float, float]]:
    """Per phase (from epoch 0, then from each callback that changes the step's cost): its first
    epoch, the seconds of a training step (the longer of the model's and the loader's time) and
    the seconds each epoch adds (validation, and the BatchNorm passes before it). Recorded in
    ``plan``."""
    from hydra.utils import instantiate

    from hdvision.models.cost import measure_forward, measure_train_step, stem_input_size
    from hdvision.tools.data_pipeline import time_loader

    batch = int(cfg.data.batch_size)
    model = instantiate(cfg.model, num_classes=datamodule.num_classes)
    size = stem_input_size(model, datamodule.sample_size)
    loader_s = batch / time_loader(datamodule.train_dataloader(), TIMED_STEPS)["img_s"]
    val_images = len(datamodule.datasets["val"]) * validations_per_epoch(cfg)
    bn_conf = (cfg.get("callbacks") or {}).get("precise_bn")
    bn_batches = instantiate(bn_conf).num_batches if bn_conf is not None else 0

    def timed(ms_per_image: float) -> float:
        return max(ms_per_image * batch / 1e3, loader_s)

    val_s = val_images / batch * timed(measure_forward(model, size, batch, TIMED_STEPS))
    phases, model_s = [], []
    for change in [None, *cost_changes(cfg)]:
        if change is not None:
            change.apply(model)
        model_s.append(measure_train_step(model, size, batch, TIMED_STEPS)["ms_per_image"])
        bn_s = (
            bn_batches * timed(measure_forward(model, size, batch, TIMED_STEPS, train=True))
            if bn_batches
            else 0.0
        )
        start = 0 if change is None else change.start_epoch
        phases.append((start, timed(model_s[-1]), val_s + bn_s))
    plan.update(
        model_s_per_step=model_s[0] * batch / 1e3,
        loader_s_per_step=loader_s,
        step_s_phases=[[start, step] for start, step, _ in phases],
        epoch_s_phases=[[start, extra] for start, _, extra in phases],
    )
    return phases


def validations_per_epoch(cfg: Any) -> float:
    """The share of the validation set read per training epoch (``trainer.limit_val_batches``
    as a fraction, ``check_val_every_n_epoch``); an integer limit is taken as a whole pass."""
    trainer = cfg.get("trainer") or {}
    limit = trainer.get("limit_val_batches", 1.0)
    share = float(limit) if isinstance(limit, float) else 1.0
    return share / max(1, int(trainer.get("check_val_every_n_epoch") or 1))


def cost_changes(cfg: Any) -> list[Any]:
    """The run's callbacks that change the training step's cost from an epoch on (those with
    ``changes_step_cost``, e.g. :class:`~hdvision.callbacks.WindowSchedule`), instantiated, in
    the order they start."""
    from hydra.utils import get_class, instantiate

    found = [
        instantiate(conf)
        for conf in (cfg.get("callbacks") or {}).values()
        if conf is not None
        and "_target_" in conf
        and getattr(get_class(conf._target_), "changes_step_cost", False)
    ]
    return sorted(found, key=lambda change: change.start_epoch)


def budget_overrides(plan: dict[str, Any]) -> list[str]:
    extra = [
        f"trainer.max_epochs={plan['max_epochs']}",
        f"++trainer.limit_train_batches={plan['batches_per_epoch']}",
    ]
    if "max_time" in plan:
        extra.append(f"++trainer.max_time={plan['max_time']}")
    return extra
