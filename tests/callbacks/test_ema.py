import torch

from hdvision.cli.train import train
from tests.conftest import TINY, compose


def test_ema_weights_are_validated_and_checkpointed(tmp_path):
    cfg = compose(
        "train",
        [
            *TINY,
            "callbacks=[default,ema]",
            "callbacks.ema.update_starting_at_step=1",
            "callbacks.ema.decay=0.5",
            "trainer.max_epochs=2",
        ],
        tmp_path,
    )
    _, objects = train(cfg)
    ckpt = torch.load(tmp_path / "out/checkpoints/last.ckpt", weights_only=True)
    averaged, current = ckpt["state_dict"], ckpt["current_model_state"]
    key = "backbone.conv_stem.weight"
    assert not torch.equal(averaged[key], current[key])  # EMA differs from the raw weights
    assert int(ckpt["averaging_state"]["n_averaged"]) > 1
    # The final test ran on the best checkpoint's averaged weights, as eval.py would.
    best = torch.load(objects["trainer"].checkpoint_callback.best_model_path, weights_only=True)
    tested = objects["model"].backbone.conv_stem.weight.detach()
    assert torch.equal(tested, best["state_dict"][key])
