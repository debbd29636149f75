"""Refit on training + validation events along a validated run's schedule."""

import json

import pytest

from chronorec.datasets.formats import DATASETS
from chronorec.datasets.synthetic import make_sequences
from chronorec.errors import ConfigError
from chronorec.evaluation.split import leave_one_out
from chronorec.models import registry
from chronorec.training.trainer import TrainSettings, refit_plan, train


def test_refit_plan_follows_the_history_up_to_the_best_epoch():
    hist = [{"epoch": e, "lr": lr} for e, lr in [(2, 1e-3), (1, 1e-3), (3, 5e-4), (4, 2.5e-4), (5, 2.5e-4)]]
    assert refit_plan(hist, 3) == [1e-3, 1e-3, 5e-4]
    with pytest.raises(ValueError):
        refit_plan(hist, 7)  # the history does not reach that epoch
    with pytest.raises(ValueError):
        refit_plan(hist, 0)


def test_lr_plan_sets_each_epoch_and_ignores_validation_and_budget():
    import torch

    module = torch.nn.Linear(2, 1)
    calls = []

    def validate():
        calls.append(1)
        return 0.0  # would trigger early stopping and plateau decay if it were used

    plan = [1e-2, 1e-2, 5e-3, 1e-3]
    settings = TrainSettings(epochs=100, patience=1, plateau_factor=0.1, plateau_patience=1, time_budget_s=1e-9,
                             lr_plan=plan, progress=False)  # fmt: skip
    res = train(module, batches=lambda e, rng: [torch.ones(4, 2)], loss_fn=lambda m, b: m(b).pow(2).mean(),
                validate=validate, settings=settings)  # fmt: skip
    assert [h["lr"] for h in res.history] == plan
    assert res.best_epoch == len(plan) and not calls
    with pytest.raises(ValueError):
        train(module, batches=lambda e, rng: [], loss_fn=None, validate=None,
              settings=TrainSettings(lr_plan=[], progress=False))  # fmt: skip


def _write_sequences(path, log):
    store = log.sequences()
    lines = []
    for u in range(1, log.n_users):
        seq = store.items[store.offsets[u] : store.offsets[u + 1]]
        if len(seq):
            lines.append(" ".join([str(u)] + [str(int(i)) for i in seq]))  # internal ids are integers
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")


def test_benchmark_refit_learns_and_refit_from_reproduces_it(tmp_path):
    from chronorec.workflows import benchmark

    log = make_sequences(n_users=300, n_items=60, seed=4, mean_length=14)
    _write_sequences(tmp_path / "data" / DATASETS["ml-1m"], log)
    params = {"kind": "sasrec", "max_len": 20, "dim": 32, "layers": 1, "heads": 1, "dropout": 0.1, "lr": 5e-3,
              "batch_size": 32, "epochs": 12, "patience": 4, "plateau_factor": 0.5, "plateau_patience": 2}  # fmt: skip
    common = {"data_dir": str(tmp_path / "data"), "threads": 1, "seed": 0, "progress": False}

    def run(name, **kw):
        return benchmark.run_one("ml-1m", "sasrec", params=params, out_json=tmp_path / name, **common, **kw)

    plain = run("plain.json", save_model=tmp_path / "m" / "plain")
    both = run("both.json", refit=True, save_model=tmp_path / "m" / "both")

    # the refit follows the search's validated schedule and costs both trainings
    assert both["search"]["best_epoch"] == plain["best_epoch"] == both["refit"]["epochs"]
    assert both["refit"]["lr_plan"] == [h["lr"] for h in plain["history"][: plain["best_epoch"]]]
    assert both["search"]["test"] == plain["test"]  # the same validated run
    assert both["train_seconds"] == pytest.approx(both["search"]["train_seconds"] + both["refit"]["train_seconds"])
    assert "validation" not in both  # the refit trained on the validation targets: no validation figure
    # it learns the planted successor structure: far above popularity on test
    popular = registry.get("popular")().fit(leave_one_out(log).full)
    from chronorec.evaluation.ranking import evaluate_ranking

    sp = leave_one_out(log)
    pop_ndcg = evaluate_ranking(popular.score, sp.test, n_items=log.n_items, ks=(10,))["NDCG@10"]
    assert both["test"]["NDCG@10"] > 2 * pop_ndcg
    assert both["ensemble"]["test"]["NDCG@10"] > 2 * pop_ndcg
    assert (tmp_path / "m" / "both-search").is_dir() and (tmp_path / "m" / "both").is_dir()

    # a refit from the plain run's JSON is the same refit (same seed, same plan), now with the saved
    # search model joining the ensemble
    again = benchmark.run_one("ml-1m", "sasrec", params={"kind": "unused"}, out_json=tmp_path / "again.json",
                              refit_from=tmp_path / "plain.json", **common)  # fmt: skip
    assert again["refit"]["lr_plan"] == both["refit"]["lr_plan"]
    assert again["test"] == pytest.approx(both["test"])
    assert again["ensemble"]["test"] == pytest.approx(both["ensemble"]["test"])
    assert json.loads((tmp_path / "again.json").read_text())["search"]["run"] == str(tmp_path / "plain.json")
    with pytest.raises(ConfigError, match="not a validated run"):  # a refit's JSON is not a validated run
        benchmark.run_one("ml-1m", "sasrec", params={"kind": "unused"}, out_json=tmp_path / "x.json",
                          refit_from=tmp_path / "both.json", **common)  # fmt: skip
