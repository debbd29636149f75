"""The shared training loop's learning-rate schedules."""

import math

from chronorec.datasets.synthetic import make_sequences
from chronorec.evaluation.split import leave_one_out
from chronorec.models import registry
from chronorec.training.schedules import cosine_lr
from chronorec.training.settings import TrainSettings


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

    from chronorec.training.trainer import train

    module = torch.nn.Linear(2, 1)

    def loss_fn(m, batch):
        time.sleep(0.1)
        return m(batch).pow(2).mean()

    settings = TrainSettings(epochs=100, time_budget_s=1.0, progress=False)
    res = train(module, batches=lambda e, rng: [torch.ones(4, 2)], loss_fn=loss_fn, validate=None, settings=settings)
    assert res.stopped.startswith("time budget")
    assert 2 <= len(res.history) < 100
    assert res.train_seconds <= 1.0  # it stopped before an epoch that would have ended past the budget


def test_token_batches_cover_every_sequence_once_within_the_budget():
    import numpy as np

    from chronorec.models.sequential.windows import token_batches

    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(2, 60, 500), [200, 200, 400]])
    budget = 16 * lengths.mean()
    batches = token_batches(lengths, budget, rng)
    seen = np.sort(np.concatenate(batches))
    assert np.array_equal(seen, np.arange(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * lengths[b].max() <= budget
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 1.1 * lengths.sum()  # little padding, against about 2x for random batches of 16
    assert abs(len(batches) - len(lengths) / 16) < 0.25 * len(lengths) / 16  # about as many steps
    again = token_batches(lengths, budget, np.random.default_rng(1))
    as_sets = lambda bs: {frozenset(b.tolist()) for b in bs}  # noqa: E731
    assert len(again) == len(batches) and as_sets(again) != as_sets(
        batches
    )  # ties are broken at random: another seed mixes equal-length sequences differently


def test_token_batching_trains_as_well_as_random_batches():
    from chronorec.evaluation.ranking import evaluate_ranking

    sp = leave_one_out(make_sequences(n_users=300, n_items=60, seed=3, mean_length=14))
    params = {"epochs": 8, "dim": 32, "max_len": 20, "progress": False, "lr": 5e-3, "batch_size": 32, "layers": 1}
    ndcg = {}
    for batching in ("random", "tokens"):
        m = registry.get("sasrec")(batching=batching, **params).fit(sp.train, validation=sp.validation)
        ndcg[batching] = evaluate_ranking(m.score, sp.test, n_items=sp.train.n_items, ks=(10,))["NDCG@10"]
    pop = registry.get("popular")().fit(sp.train)
    base = evaluate_ranking(pop.score, sp.test, n_items=sp.train.n_items, ks=(10,))["NDCG@10"]
    assert ndcg["tokens"] > 2 * base, (ndcg, base)
    assert ndcg["tokens"] > ndcg["random"] - 0.05, ndcg


def test_token_batching_refuses_compile():
    import pytest

    sp = leave_one_out(make_sequences(n_users=30, n_items=20, seed=1, mean_length=8))
    with pytest.raises(ValueError, match="batching"):
        registry.get("sasrec")(batching="tokens", compile=True, epochs=1, progress=False).fit(sp.train)
