"""The benchmark's timing: variants interleaved round by round, full batches only."""

import torch

from hdvision.inference.bench import time_models


def test_time_models_interleaves_the_variants_round_by_round():
    calls = []

    def fake(name):
        return lambda batch: calls.append((name, len(batch)))

    times = time_models({"a": fake("a"), "b": fake("b")}, torch.zeros(40, 3, 4, 4), 16, 3)
    assert set(times) == {"a", "b"} and all(t > 0 for t in times.values())
    # One warm-up batch each, then every round times a's two full batches, then b's.
    assert [name for name, _ in calls] == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert {size for _, size in calls} == {16}  # the last 8 images (a partial batch) are not timed
