"""The shared training loop's learning-rate schedules."""

import math

from chronorec.datasets.synthetic import make_sequences
from chronorec.models import registry
from chronorec.split import leave_one_out
from chronorec.train import TrainSettings, cosine_lr


def test_cosine_lr_endpoints_and_midpoint():
    s = TrainSettings(lr=1e-2, min_lr_ratio=0.1)
    assert math.isclose(cosine_lr(s, 0.0), 1e-2)
    assert math.isclose(cosine_lr(s, 0.5), (1e-2 + 1e-3) / 2)
    assert math.isclose(cosine_lr(s, 1.0), 1e-3)
    assert math.isclose(cosine_lr(s, 7.0), 1e-3)  # past the end it stays at the floor


def test_cosine_schedule_decays_over_the_epochs_and_ignores_plateau():
    sp = leave_one_out(make_sequences(n_users=60, n_items=30, seed=2, mean_length=10))
    params = {"epochs": 4, "dim": 16, "max_len": 12, "progress": False, "lr": 1e-2, "batch_size": 16}
    model = registry.get("sasrec")(lr_schedule="cosine", min_lr_ratio=0.01, plateau_factor=0.5, **params)
    model.fit(sp.train, validation=sp.validation)
    lrs = [e["lr"] for e in model.fit_info["history"]]
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False)), lrs
    assert lrs[0] < 1e-2 and lrs[-1] < 1e-3, lrs  # the last step is near the floor of 1e-4
    const = registry.get("sasrec")(**params).fit(sp.train, validation=sp.validation)
    assert {e["lr"] for e in const.fit_info["history"]} == {1e-2}


def test_time_budget_is_a_ceiling_not_a_deadline():
    import time

    import torch

    from chronorec.train import train

    module = torch.nn.Linear(2, 1)

    def loss_fn(m, batch):
        time.sleep(0.1)
        return m(batch).pow(2).mean()

    settings = TrainSettings(epochs=100, time_budget_s=1.0, progress=False)
    res = train(module, batches=lambda e, rng: [torch.ones(4, 2)], loss_fn=loss_fn, validate=None, settings=settings)
    assert res.stopped.startswith("time budget")
    assert 2 <= len(res.history) < 100
    assert res.train_seconds <= 1.0  # it stopped before an epoch that would have ended past the budget
