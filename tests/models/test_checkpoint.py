"""Self-describing checkpoints: the model comes back from the file alone; bad files get one line."""

import shutil

import pytest
import torch

from hdvision.cli.eval import evaluate
from hdvision.cli.train import train
from hdvision.models.checkpoint import CheckpointError, read_checkpoint
from hdvision.models.module import HDClassifier
from tests.conftest import TINY, TINY_SALIENCY, compose


def test_checkpoint_holds_plain_data_for_inference(trained_run):
    state = torch.load(trained_run["ckpt"], map_location="cpu", weights_only=True)
    hp = state["hyper_parameters"]
    assert hp["class_names"] == [str(i) for i in range(10)]
    assert hp["preprocessing"]["image_size"] == [64, 96]
    assert hp["preprocessing"]["sample_size"] == [32, 48]  # aug_scale 0.5
    assert hp["preprocessing"]["fit"] == "letterbox"
    assert hp["stem"]["name"] == "saliency_sampler"
    assert len(hp["normalization"]["mean"]) == 3


def test_from_checkpoint_rebuilds_the_trained_model_without_config(trained_run, tmp_path):
    model = HDClassifier.from_checkpoint(str(trained_run["ckpt"]))
    assert not model.training
    trained = trained_run["model"].eval()
    trained.load_state_dict(read_checkpoint(trained_run["ckpt"])["state_dict"])
    images = torch.randint(0, 255, (2, 3, 32, 48), dtype=torch.uint8)
    with torch.no_grad():
        expected = trained(trained.prepare_input(images))
        got = model(model.prepare_input(images))
    torch.testing.assert_close(got, expected)
    # A caller that has read the file already (prune, qat) hands it over: not read again.
    loaded = read_checkpoint(trained_run["ckpt"])
    again = HDClassifier.from_checkpoint(tmp_path / "not_there.ckpt", loaded)
    with torch.no_grad():
        torch.testing.assert_close(again(again.prepare_input(images)), expected)


def test_a_checkpoint_without_the_inference_fields_names_them(trained_run, tmp_path):
    state = torch.load(trained_run["ckpt"], map_location="cpu", weights_only=True)
    del state["hyper_parameters"]["class_names"]
    del state["hyper_parameters"]["preprocessing"]["fit"]
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    with pytest.raises(
        CheckpointError, match="lacks hyper_parameters class_names, preprocessing.fit"
    ):
        HDClassifier.from_checkpoint(old)
    model = HDClassifier.from_checkpoint(
        old, class_names=list("abcdefghij"), preprocessing={"fit": "letterbox"}
    )
    assert model.hparams.class_names[0] == "a"


def test_a_checkpoint_of_the_grid_sample_zoom_loads_with_bilinear_resampling(trained_run, tmp_path):
    # Checkpoints written before the separable zoom record no `antialias`: they get the bilinear
    # matrices, which compute what their grid_sample did (tests/models/test_zoom.py).
    state = torch.load(trained_run["ckpt"], map_location="cpu", weights_only=True)
    assert state["hyper_parameters"]["stem"]["antialias"] is True
    del state["hyper_parameters"]["stem"]["antialias"]
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    model = HDClassifier.from_checkpoint(old)
    assert model.stem.antialias is False
    assert model(torch.zeros(1, 3, 32, 48)).shape == (1, 10)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"\x00not a checkpoint", "truncated or not a torch checkpoint"),
        (b"junk", "truncated or not a torch checkpoint"),
        ("truncate", "truncated or not a torch checkpoint"),
        ("foreign", "holds objects other than plain data"),
        ("dict", "not a Lightning checkpoint"),
        ("not_ours", "not an hdvision classifier checkpoint"),
        ("backbone", "not in the installed timm"),
    ],
)
def test_bad_checkpoint_files_get_one_clear_error(trained_run, tmp_path, content, message):
    path = tmp_path / "bad.ckpt"
    if content == "truncate":
        data = trained_run["ckpt"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "foreign":
        torch.save({"state_dict": {}, "thing": shutil.Error("pickled class")}, path)
    elif content == "dict":
        torch.save({"weights": torch.zeros(2)}, path)
    elif content == "not_ours":
        torch.save({"state_dict": {}, "hyper_parameters": {"lr": 0.1}}, path)
    elif content == "backbone":
        state = torch.load(trained_run["ckpt"], map_location="cpu", weights_only=True)
        state["hyper_parameters"]["backbone"]["name"] = "no_such_net_v9"
        torch.save(state, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        HDClassifier.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_eval_refuses_a_checkpoint_of_another_config(trained_run, tmp_path):
    ckpt = f"ckpt_path={trained_run['ckpt']}"
    saliency = [o for o in TINY_SALIENCY if o not in TINY]
    other = [*TINY[:-2], *saliency, ckpt, "model.backbone_input=[24,32]"]
    with pytest.raises(CheckpointError, match=r"backbone_input: checkpoint \[16, 24\] vs config"):
        evaluate(compose("eval", other, tmp_path / "e1"))
    stem = [*TINY[:-2], "model/stem=resize", ckpt]  # not the checkpoint's saliency sampler
    with pytest.raises(CheckpointError, match="stem: checkpoint"):
        evaluate(compose("eval", stem, tmp_path / "e2"))


def test_resume_refuses_a_checkpoint_of_another_config(trained_run, tmp_path):
    cfg = compose(
        "train",
        [*TINY_SALIENCY, f"ckpt_path={trained_run['ckpt']}", "data.aug_scale=0.25"],
        tmp_path,
    )
    with pytest.raises(CheckpointError, match="preprocessing.sample_size"):
        train(cfg)


def test_resume_never_unpickles_code_even_when_torch_is_told_to(trained_run, tmp_path, monkeypatch):
    # torch loads with weights_only=False under this variable wherever the caller does not pass
    # weights_only; a resumed checkpoint with a pickled payload must still be refused.
    state = torch.load(trained_run["ckpt"], map_location="cpu", weights_only=True)
    state["callbacks"]["payload"] = shutil.Error("unpickled code would run here")
    tampered = tmp_path / "tampered.ckpt"
    torch.save(state, tampered)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    cfg = compose("train", [*TINY_SALIENCY, f"ckpt_path={tampered}"], tmp_path)
    with pytest.raises(CheckpointError, match="holds objects other than plain data"):
        train(cfg)
