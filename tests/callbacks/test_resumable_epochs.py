from types import SimpleNamespace

import numpy as np
import torch

from hdvision.callbacks.resumable_epochs import ResumableEpochs


def _trainer(epoch: int) -> SimpleNamespace:
    loop = SimpleNamespace(is_resuming=False, epoch_loop=SimpleNamespace(restarting=False))
    return SimpleNamespace(current_epoch=epoch, global_rank=0, train_dataloader=None, fit_loop=loop)


def _draws_after_epoch_start(callback: ResumableEpochs, epoch: int, consumed_before: int) -> tuple:
    torch.rand(consumed_before)  # whatever ran before this epoch (e.g. a sanity check)
    np.random.rand(consumed_before + 1)
    callback.on_train_epoch_start(_trainer(epoch), None)
    return torch.rand(3).tolist(), np.random.rand(2).tolist()


def test_an_epochs_draws_depend_on_seed_and_epoch_only():
    callback = ResumableEpochs(seed=7)
    assert _draws_after_epoch_start(callback, 2, 0) == _draws_after_epoch_start(callback, 2, 50)
    assert _draws_after_epoch_start(callback, 2, 0) != _draws_after_epoch_start(callback, 3, 0)
    assert _draws_after_epoch_start(ResumableEpochs(8), 2, 0) != _draws_after_epoch_start(
        callback, 2, 0
    )


def test_saved_rng_states_restore_every_generator():
    import random

    callback = ResumableEpochs(seed=3)
    state = callback.state_dict()
    expected = (torch.rand(3).tolist(), np.random.rand(2).tolist(), random.random())
    torch.rand(5), np.random.rand(5), random.random()  # the interrupted run's other draws
    callback._restore_rng(torch.load(_roundtrip(state), weights_only=True))
    assert (torch.rand(3).tolist(), np.random.rand(2).tolist(), random.random()) == expected


def _roundtrip(state):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)  # as in a checkpoint, which loads with weights_only=True
    buffer.seek(0)
    return buffer
