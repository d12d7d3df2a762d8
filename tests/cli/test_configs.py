"""Every experiment composes and instantiates; bad overrides fail in Hydra, before training."""

import math
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from hdvision.cli.runtime import build
from hdvision.cli.train import train
from tests.conftest import CONF_DIR, TINY, compose

EXPERIMENTS = sorted(p.stem for p in Path(CONF_DIR, "experiment").glob("*.yaml"))


def test_there_are_experiments():
    assert "effnet_hd" in EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates(experiment, tmp_path, request):
    # Keep the experiment's model and stem; only shrink the data and drop pretrained weights.
    # The tiny-data overrides that this experiment's data source has (HD digits' canvas, ...).
    source = compose("train", [f"experiment={experiment}"], tmp_path).data.source
    overrides = [f"experiment={experiment}", "model.backbone.weights=null"] + [
        o
        for o in TINY
        if o.startswith("callbacks.")
        or (o.startswith("data.") and not o.startswith("data.source."))
        or o.split("=")[0].removeprefix("data.source.") in source
    ]
    if experiment.startswith("distill_hd"):  # its teacher is a required, real checkpoint
        overrides.append(f"model.distill.teacher={request.getfixturevalue('trained_run')['ckpt']}")
    cfg = compose("train", overrides, tmp_path)
    objects = build(cfg)
    assert objects["model"].hparams.num_classes == objects["datamodule"].num_classes == 10
    assert objects["trainer"].max_epochs >= 1
    assert any(type(c).__name__ == "ModelCheckpoint" for c in objects["callbacks"])


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in Path(CONF_DIR, group).glob("*.yaml") if p.stem != "default")


MODEL_OPTIONS = [
    (group, option)
    for group in ("model/optimizer", "model/scheduler", "model/stem", "model/distill")
    for option in _options(group)
]


@pytest.mark.parametrize("group, option", MODEL_OPTIONS)
def test_every_model_option_trains_two_steps(group, option, tmp_path, request):
    overrides = [f"{group}={option}", *TINY]
    if group == "model/distill":
        overrides.append(f"model.distill.teacher={request.getfixturevalue('trained_run')['ckpt']}")
    # Two optimizer steps and one validation batch, through train.py's own path.
    overrides += ["+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "test=false"]
    metrics, objects = train(compose("train", overrides, tmp_path))
    assert objects["trainer"].global_step == 2
    assert math.isfinite(metrics["train/loss_step"])


@pytest.mark.parametrize("option", _options("logger"))
def test_every_logger_instantiates(option, tmp_path, monkeypatch):
    from hdvision.cli.runtime import instantiate_group

    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose("train", [f"logger={option}", *TINY], tmp_path)
    loggers = instantiate_group(cfg.logger)
    assert loggers and all(hasattr(lg, "log_metrics") for lg in loggers)


@pytest.mark.parametrize("option", _options("trainer"))
def test_every_trainer_option_composes(option, tmp_path):
    # Instantiated where this machine can: cpu/ddp_sim/fsdp in test_trainers.py.
    cfg = compose("train", [f"trainer={option}", *TINY], tmp_path)
    assert cfg.trainer._target_.endswith("Trainer")


def test_unknown_experiment_is_a_hydra_error(tmp_path):
    with pytest.raises(ConfigCompositionException, match="effnet_hdd"):
        compose("train", ["experiment=effnet_hdd"], tmp_path)


def test_typo_in_override_key_is_a_hydra_error(tmp_path):
    with pytest.raises(ConfigCompositionException, match="batch_sise"):
        compose("train", ["data.batch_sise=8"], tmp_path)


def test_optimizer_and_scheduler_are_partials(tmp_path):
    cfg = compose("train", TINY, tmp_path)
    optimizer = instantiate(cfg.model.optimizer)
    scheduler = instantiate(cfg.model.scheduler)
    assert callable(optimizer) and callable(scheduler)
    assert cfg.model.optimizer._partial_ and cfg.model.scheduler._partial_


def test_run_dirs_have_sub_second_names(tmp_path):
    cfg = compose("train", TINY, tmp_path)
    assert cfg.hydra.run.dir.endswith(tuple("0123456789")) and "-%f" not in cfg.hydra.run.dir
    assert len(Path(cfg.hydra.run.dir).name.split("-")) == 6  # Y-m-d_H-M-S-microseconds


def test_optuna_search_composes_with_a_seeded_sampler(tmp_path):
    cfg = compose("train", ["hparams_search=effnet_hd_optuna"] + TINY, tmp_path)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.sampler.seed == 1234
    assert "model.optimizer.lr" in sweeper.params and cfg.optimized_metric == "val/acc"


def _fake_run(root, name, steps=(("last.ckpt", 10),)):
    folder = root / "train" / "runs" / name / "checkpoints"
    folder.mkdir(parents=True)
    for filename, step in steps:
        torch.save({"global_step": step, "state_dict": {}}, folder / filename)
    return folder


def test_ckpt_path_last_finds_the_newest_run(tmp_path):
    from hdvision.cli.runtime import find_last_checkpoint

    _fake_run(tmp_path, "2026-01-01_10-00-00-000001")
    newest = _fake_run(tmp_path, "2026-01-01_10-00-00-000002")
    assert find_last_checkpoint(tmp_path, "train") == newest / "last.ckpt"
    with pytest.raises(FileNotFoundError, match="no .*eval/runs"):
        find_last_checkpoint(tmp_path, "eval")


def test_ckpt_path_last_refuses_a_newest_run_without_checkpoint(tmp_path):
    from hdvision.cli.runtime import find_last_checkpoint

    _fake_run(tmp_path, "2026-01-01_10-00-00-000001")
    died = tmp_path / "train" / "runs" / "2026-01-01_10-00-00-000002"
    died.mkdir()
    with pytest.raises(FileNotFoundError, match="000002 has no checkpoints"):
        find_last_checkpoint(tmp_path, "train")
    # This run's own (new, empty) folder is not the run to continue.
    assert find_last_checkpoint(tmp_path, "train", exclude=died).parts[-3].endswith("000001")


def test_ckpt_path_last_takes_the_checkpoint_with_the_most_steps(tmp_path):
    from hdvision.cli.runtime import find_last_checkpoint

    # A copied run folder: Lightning versioned the new last checkpoint beside the stale one.
    steps = (("last.ckpt", 10), ("last-v1.ckpt", 30), ("last-v2.ckpt", 20))
    folder = _fake_run(tmp_path, "2026-01-01_10-00-00-000001", steps)
    assert find_last_checkpoint(tmp_path, "train") == folder / "last-v1.ckpt"


def test_one_way_to_resume(tmp_path):
    with pytest.raises(ConfigCompositionException, match="resume"):
        compose("train", [*TINY, "resume=true"], tmp_path)


@pytest.mark.parametrize(
    "metric, mode",
    [("val/acc", "max"), ("val/f1", "max"), ("val/loss", "min"), ("val/error", "min")],
)
def test_checkpoint_and_early_stopping_follow_the_metric_direction(metric, mode, tmp_path):
    objects = build(compose("train", [*TINY, f"optimized_metric={metric}"], tmp_path))
    checkpoint = objects["trainer"].checkpoint_callback
    (stopping,) = [c for c in objects["callbacks"] if type(c).__name__ == "EarlyStopping"]
    assert (checkpoint.monitor, checkpoint.mode, stopping.mode) == (metric, mode, mode)


def test_stem_comparison_sweeps_every_stem_experiment_over_three_seeds(tmp_path):
    cfg = compose("train", ["hparams_search=stem_comparison"] + TINY, tmp_path)
    params = cfg.hydra.sweeper.params
    experiments = params.experiment.split(",")
    assert set(experiments) >= {e for e in EXPERIMENTS if e.startswith("stems_")} | {"effnet_hd"}
    assert len(params.seed.split(",")) >= 3
    assert cfg.hydra.sweeper._target_.endswith("BasicSweeper")


def test_augmentations_are_added_removed_and_put_on_the_device_by_overrides(tmp_path):
    overrides = [
        "experiment=effnet_hd",
        "model.backbone.weights=null",
        "+data.augmentations.Blur={p: 0.2}",
        "~data.augmentations.Affine",
        "+model.device_augmentations.GaussNoise={p: 1.0}",
    ] + [o for o in TINY if o.startswith("data.") or o.startswith("callbacks.")]
    objects = build(compose("train", overrides, tmp_path))
    assert objects["datamodule"].augmentations == {"Blur": {"p": 0.2}}
    assert objects["model"].hparams.device_augmentations == {"GaussNoise": {"p": 1.0}}
    assert len(objects["model"].device_augmentations.transforms) == 1


def test_megapixel_mnist_config_is_the_published_spec(tmp_path):
    cfg = compose("train", ["data=megapixel_mnist"], tmp_path)
    spec = instantiate(cfg.data.source).spec
    assert spec.canvas == (1500, 1500) and spec.digit_size == 28
    assert (spec.num_target, spec.num_distractors, spec.num_noise_patches) == (3, 2, 50)
    assert (spec.num_train + spec.num_val, spec.num_test) == (5000, 1000)
    assert spec.image_format == "png" and list(cfg.data.image_size) == [1500, 1500]


def test_photo_experiments_differ_from_each_other_only_in_the_stem(tmp_path):
    runs = ("photo_hd_zoom", "photo_hd_prior_only", "photo_hd_area")
    cfgs = {e: compose("train", [f"experiment={e}"], tmp_path) for e in runs}
    zoom = cfgs["photo_hd_zoom"]
    for cfg in cfgs.values():
        assert cfg.data == zoom.data and cfg.trainer == zoom.trainer
        assert cfg.model.backbone == zoom.model.backbone
        assert cfg.data.source.backgrounds and cfg.data.source.mode == "RGB"
    assert cfgs["photo_hd_zoom"].model.stem.learned_correction is True
    assert cfgs["photo_hd_prior_only"].model.stem.learned_correction is False
    assert cfgs["photo_hd_area"].model.stem.name == "resize"


def test_photo_recipes_without_the_zoom_read_the_same_photo_data_set(tmp_path):
    """photo_hd_s2d and photo_hd_windows sit in the zoom's table: same canvases, same decode."""
    zoom = compose("train", ["experiment=photo_hd_zoom"], tmp_path)
    s2d = compose("train", ["experiment=photo_hd_s2d"], tmp_path)
    windows = compose("train", ["experiment=photo_hd_windows"], tmp_path)
    for cfg in (s2d, windows):
        assert cfg.data.source == zoom.data.source and cfg.data.aug_scale == zoom.data.aug_scale
    assert s2d.model.stem.name == "space_to_depth" and s2d.model.backbone_input == [135, 240]
    assert windows.model.stem.name == "none" and windows.model.backbone_input is None
    assert windows.model.backbone.name == "hdvision_detail_windows"
    assert windows.data.cache is True and not windows.data.augmentations


def test_the_windows_prior_only_row_differs_only_in_the_choice_of_training_windows(tmp_path):
    windows = compose("train", ["experiment=photo_hd_windows"], tmp_path)
    prior = compose("train", ["experiment=photo_hd_windows_prior_only"], tmp_path)
    assert prior.data == windows.data and prior.model == windows.model
    assert prior.trainer == windows.trainer
    schedule, learned = prior.callbacks.window_schedule, windows.callbacks.window_schedule
    assert (schedule.train_pool, schedule.train_prior) == (None, 0) and learned.train_pool
    assert schedule.train_count == learned.train_count


def test_megapixel_mnist_variants_share_data_and_backbone_input(tmp_path):
    variants = ("area", "space_to_depth", "zoom", "zoom_from_half", "patch_select")
    cfgs = {v: compose("train", [f"experiment=mpmnist_{v}"], tmp_path) for v in variants}
    for v, cfg in cfgs.items():
        assert cfg.data.source == cfgs["area"].data.source, v
        assert cfg.data.source.canvas == [1500, 1500] and cfg.data.source.num_noise_patches == 50
    assert {v: cfg.model.stem.name for v, cfg in cfgs.items()} == {
        "area": "resize",
        "space_to_depth": "space_to_depth",
        "zoom": "saliency_sampler",
        "zoom_from_half": "saliency_sampler",
        "patch_select": "none",
    }
    # The 1/4 view (375x375) reaches the same 188x188 backbone input; the zoom from a 1/2 decode
    # samples the 1/4 view's size; patch selection takes the whole image.
    assert all(cfgs[v].model.backbone_input == [188, 188] for v in variants[:4])
    assert cfgs["zoom_from_half"].data.aug_scale == 0.5
    assert cfgs["zoom_from_half"].model.stem.warp_size == [375, 375]
    assert cfgs["patch_select"].data.aug_scale == 1.0
    assert cfgs["patch_select"].model.backbone.name == "hdvision_patch_select"


def test_the_megapixel_mnist_recipe_trains_from_the_decode_cache(tmp_path):
    tiny = [
        "experiment=mpmnist",
        "data.source.canvas=[200,240]",
        "data.source.num_train=8",
        "data.source.num_val=4",
        "data.source.num_test=4",
        "data.source.workers=1",
        "data.num_workers=0",
        "data.batch_size=4",
        "data.eval_batch_size=4",
        "model.backbone.count=8",
        "trainer.max_epochs=1",
        "extras.print_config=false",
        "extras.cost_report=false",
        "callbacks.rich_progress_bar=null",
        "callbacks.rich_model_summary=null",
    ]
    metrics, objects = train(compose("train", tiny, tmp_path))
    assert objects["trainer"].global_step == 2 and math.isfinite(metrics["test/loss"])
    assert objects["datamodule"].sample_size == (100, 120)
    cached = sorted(p.name.split("_")[0] for p in (tmp_path / "data" / "cache").glob("*.json"))
    assert cached == ["test", "train", "val"]
