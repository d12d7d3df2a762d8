"""End-to-end runs on tiny generated data (seconds each)."""

import pytest
import torch

from hdvision.cli.eval import evaluate
from hdvision.cli.train import train
from hdvision.data.listing import DataSourceError
from tests.conftest import TINY, TINY_FOLDER, compose, counted_over


def test_fast_dev_run(tmp_path):
    cfg = compose("train", TINY + ["debug=fdr"], tmp_path)
    metrics, _ = train(cfg)
    assert {"train/loss", "val/acc", "test/acc", "test/f1", "test/acc_top5"} <= set(metrics)


@pytest.mark.slow
def test_train_then_eval_of_the_saved_checkpoint_gives_the_same_metric(tmp_path):
    cfg = compose("train", TINY + ["trainer.max_epochs=2"], tmp_path / "train")
    metrics, objects = train(cfg)
    ckpt = objects["trainer"].checkpoint_callback.best_model_path
    assert ckpt and (tmp_path / "train" / "out" / "checkpoints" / "last.ckpt").is_file()
    # Plain-data hyper-parameters: the checkpoint loads without unpickling code.
    state = torch.load(ckpt, weights_only=True, map_location="cpu")
    assert state["hyper_parameters"]["num_classes"] == 10
    eval_cfg = compose("eval", TINY[:-2] + [f"ckpt_path={ckpt}"], tmp_path / "eval")
    eval_metrics, _ = evaluate(eval_cfg)
    assert eval_metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert eval_metrics["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("precise_in_training", [True, False])
def test_eval_can_recompute_batchnorm_statistics(tmp_path, precise_in_training):
    # No augmentation: training's callback and eval see the same 3 batches.
    no_aug = "data.augmentations=null"
    callback = "callbacks.precise_bn.num_batches=3"
    if not precise_in_training:
        callback = "callbacks.precise_bn=null"
    _, objects = train(compose("train", [*TINY, no_aug, callback], tmp_path / "t"))
    ckpt = f"ckpt_path={objects['trainer'].checkpoint_callback.best_model_path}"
    plain, _ = evaluate(compose("eval", [*TINY[:-2], no_aug, ckpt], tmp_path / "e1"))
    precise_bn = [*TINY[:-2], no_aug, ckpt, "precise_bn_batches=3"]
    precise, _ = evaluate(compose("eval", precise_bn, tmp_path / "e2"))
    same = precise["test/loss"] == pytest.approx(plain["test/loss"], rel=1e-5)
    # Saved with the callback, the statistics already are those of the weights.
    assert same is precise_in_training


def test_missing_data_directory_is_a_clear_error(tmp_path):
    cfg = compose(
        "train", TINY_FOLDER + ["data=folder", f"data.source.root={tmp_path}/nowhere"], tmp_path
    )
    with pytest.raises(DataSourceError, match="nowhere does not exist"):
        train(cfg)


def test_corrupt_data_directory_is_a_clear_error(tmp_path):
    for name in ("cat", "dog"):
        (tmp_path / "images" / name).mkdir(parents=True)
        (tmp_path / "images" / name / "a.jpg").write_bytes(b"not a jpeg")
    cfg = compose(
        "train",
        TINY_FOLDER
        + [
            "data=folder",
            f"data.source.root={tmp_path}/images",
            "data.source.val_fraction=0.5",
            "data.source.test_fraction=0",
        ],
        tmp_path,
    )
    with pytest.raises(Exception, match="a.jpg") as info:
        train(cfg)
    assert "not an image" in str(info.value) or "not an image" in repr(info.value.__cause__)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["folder", "manifest"])
def test_own_images_train_end_to_end_and_the_checkpoint_predicts(source, image_folder, tmp_path):
    # A user's own images with the defaults they get (the recommended saliency-sampler stem).
    from hdvision.cli.main import main
    from hdvision.models.module import HDClassifier

    data = ["data=folder", f"data.source.root={image_folder}", "data.source.val_fraction=0.2"]
    data += ["data.source.test_fraction=0.2"]
    if source == "manifest":
        files = sorted(image_folder.rglob("*.jpg"))
        data = ["data=manifest"]
        for split, part in (("train", files[0::3] + files[1::3]), ("val", files[2::6])):
            rows = [f"{p},{p.parent.name}" for p in part]
            (tmp_path / f"{split}.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
            data.append(f"data.source.{split}={tmp_path / f'{split}.csv'}")
        rows = [f"{p},{p.parent.name}" for p in files[5::6]]
        (tmp_path / "test.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
        data.append(f"data.source.test={tmp_path / 'test.csv'}")
    metrics, objects = train(compose("train", [*TINY_FOLDER, *data], tmp_path))
    assert objects["model"].hparams.stem["name"] == "saliency_sampler"
    assert objects["datamodule"].class_names == ["cat", "dog", "eel"]
    assert counted_over(metrics["test/acc"], len(objects["datamodule"].datasets["test"]))
    best = objects["trainer"].checkpoint_callback.best_model_path
    assert HDClassifier.from_checkpoint(best).hparams.class_names == ["cat", "dog", "eel"]
    out = tmp_path / "predictions.csv"
    assert main(["predict", best, str(image_folder), "--out", str(out), "--workers", "0"]) == 0
    assert len(out.read_text().splitlines()) == 1 + 18
