"""Contract tests that every model passes, and learning tests on planted structure."""

import numpy as np
import pandas as pd
import pytest
import torch

from chronorec import load
from chronorec.data import columns as C
from chronorec.datasets.synthetic import make_sequences
from chronorec.evaluation.ranking import evaluate_ranking
from chronorec.evaluation.split import leave_one_out
from chronorec.models import registry

FAST = {
    "popular": {},
    "itemknn": {"neighbours": 20},
    "ease": {"l2": 50.0},
    "gru4rec": {"epochs": 2, "dim": 16, "hidden": 16, "max_len": 20, "progress": False},
    "gru4rec_lstm": {"epochs": 2, "dim": 16, "hidden": 16, "max_len": 20, "progress": False, "cell": "lstm"},
    "sasrec": {"epochs": 2, "dim": 16, "max_len": 20, "progress": False},
    "sasrec_sampled": {"epochs": 2, "dim": 16, "max_len": 20, "progress": False, "loss": "sampled", "n_negatives": 20},
    "sasrec_cosine": {"epochs": 2, "dim": 16, "max_len": 20, "progress": False, "similarity": "cosine"},
    "bert4rec": {"epochs": 2, "dim": 16, "max_len": 20, "progress": False},
    "hstu": {"epochs": 2, "dim": 16, "max_len": 20, "progress": False},
    "hstu_gbce": {"epochs": 2, "dim": 16, "max_len": 20, "progress": False, "loss": "gbce", "n_negatives": 20},
    "repeatnet": {"epochs": 2, "dim": 16, "max_len": 20, "progress": False},
    "repeatnet_all": {"epochs": 2, "dim": 16, "max_len": 20, "progress": False, "explore": "all"},
    "contentrec": {"epochs": 2, "dim": 16, "max_len": 20, "progress": False, "encoder": "hashing", "content_dim": 32},
    "ptopfreq": {},
    "gptopfreq": {},
    "tifuknn": {"neighbours": 10, "alpha": 0.7, "within_decay": 0.9, "group_decay": 0.7, "group_size": 3},
    "ensemble": {
        "members": [{"kind": "itemknn", "neighbours": 20}, {"kind": "sasrec", "epochs": 2, "dim": 16, "max_len": 20}],
        "weights": [0.5, 1.0],
    },
}


def _kind(name):
    return name.split("_")[0]


@pytest.fixture(scope="module")
def small_log():
    return make_sequences(n_users=80, n_items=40, seed=3, mean_length=12)


@pytest.fixture(scope="module")
def fitted(small_log):
    sp = leave_one_out(small_log)
    return sp, {n: registry.get(_kind(n))(**p).fit(sp.train, validation=sp.validation) for n, p in FAST.items()}


@pytest.mark.parametrize("name", list(FAST))
def test_contract_recommend(fitted, name):
    sp, models = fitted
    model = models[name]
    users = sp.train.users.to_external(np.array([1, 2, 3]))
    # the default follows the history protocol the model decided at fit (the one its validation used)
    assert model.history_protocol is not None and model.exclude_history == model.history_protocol["exclude"]
    pd.testing.assert_frame_equal(
        model.recommend(users, k=5), model.recommend(users, k=5, exclude_seen=model.exclude_history)
    )
    recs = model.recommend(users, k=5, exclude_seen=True)
    assert list(recs.columns) == [C.USER, C.ITEM, C.SCORE, C.RANK]
    assert len(recs) == 15
    for u, g in recs.groupby(C.USER, sort=False):
        assert g[C.RANK].tolist() == [1, 2, 3, 4, 5]
        assert np.all(np.diff(g[C.SCORE].to_numpy()) <= 1e-6)  # sorted by score
        internal = sp.train.users.to_internal([u])[0]
        seen = set(sp.train.items.to_external(model.store.user_items(internal)))
        assert seen.isdisjoint(g[C.ITEM])  # seen items excluded when asked
    # recommend_from_history: unknown items ignored, known ones excluded when asked
    hist = list(sp.train.items.to_external(np.array([1, 2]))) + ["no-such-item"]
    live = model.recommend_from_history([hist], k=4, exclude_seen=True)
    assert len(live) == 4 and set(live[C.ITEM]).isdisjoint(hist)
    # users unknown to the model get the cold-start answer instead of an error
    cold = model.recommend(["nobody"], k=3)
    assert len(cold) == 3


@pytest.mark.parametrize("name", list(FAST))
def test_contract_save_load_identical(fitted, name, tmp_path):
    sp, models = fitted
    model = models[name]
    users = sp.train.users.to_external(np.arange(1, 11))
    before = model.recommend(users, k=7)
    model.save(tmp_path / name)
    files = {p.suffix for p in (tmp_path / name).rglob("*") if p.is_file()}  # ensembles keep members in sub-folders
    assert files <= {".json", ".safetensors", ".parquet"}
    again = load(tmp_path / name)
    assert type(again) is type(model)
    pd.testing.assert_frame_equal(before, again.recommend(users, k=7))


def test_load_refuses_tampered_files(fitted, tmp_path):
    _, models = fitted
    d = models["popular"].save(tmp_path / "pop")
    (d / "config.json").write_text((d / "config.json").read_text() + " ")
    with pytest.raises(ValueError, match="checksum"):
        load(d)


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="no_such_option"):
        registry.get("sasrec")(no_such_option=1)


@pytest.fixture(scope="module")
def planted():
    log = make_sequences(n_users=400, n_items=120, seed=0, mean_length=25)
    return log, leave_one_out(log)


def _ndcg(model, sp):
    return evaluate_ranking(model.score, sp.test, n_items=sp.train.n_items, ks=(10,))["NDCG@10"]


@pytest.mark.parametrize(
    "kind,params",
    [
        ("sasrec", {"epochs": 25, "dim": 32, "max_len": 30, "lr": 3e-3, "batch_size": 64, "patience": 5}),
        (
            "sasrec",
            {
                "epochs": 25,
                "dim": 32,
                "max_len": 30,
                "lr": 3e-3,
                "batch_size": 64,
                "patience": 5,
                "similarity": "cosine",
            },
        ),
        (
            "gru4rec",
            {"epochs": 25, "dim": 32, "hidden": 64, "max_len": 30, "lr": 3e-3, "batch_size": 64, "patience": 5},
        ),
    ],
)
def test_sequence_models_learn_planted_transitions(planted, kind, params):
    log, sp = planted
    pop = _ndcg(registry.get("popular")().fit(sp.train), sp)
    model = registry.get(kind)(progress=False, seed=1, **params).fit(sp.train, validation=sp.validation)
    ndcg = _ndcg(model, sp)
    assert ndcg > 2.5 * pop and ndcg - pop > 0.15, (kind, ndcg, pop)
    assert model.fit_info["best_epoch"] >= 1


def test_training_is_deterministic_and_resumable(planted, tmp_path):
    _, sp = planted
    params = {"epochs": 4, "dim": 16, "max_len": 20, "progress": False, "seed": 5}
    a = registry.get("sasrec")(**params).fit(sp.train, validation=sp.validation)
    b = registry.get("sasrec")(**params).fit(sp.train, validation=sp.validation)
    assert [h["loss"] for h in a.fit_info["history"]] == [h["loss"] for h in b.fit_info["history"]]
    # interrupted after 2 epochs, then resumed to 4: the same history as an uninterrupted run
    ck = tmp_path / "ckpt"
    registry.get("sasrec")(**{**params, "epochs": 2, "checkpoint_dir": str(ck)}).fit(sp.train, validation=sp.validation)
    c = registry.get("sasrec")(**{**params, "checkpoint_dir": str(ck), "resume": True}).fit(
        sp.train, validation=sp.validation
    )
    assert [h["loss"] for h in c.fit_info["history"]] == pytest.approx([h["loss"] for h in a.fit_info["history"]])


def test_ensemble_sums_member_log_probabilities_and_learns(planted):
    from chronorec.models.ensemble import Ensemble

    log, sp = planted
    params = {"epochs": 12, "dim": 32, "max_len": 30, "lr": 3e-3, "batch_size": 64, "patience": 4, "progress": False}
    a = registry.get("sasrec")(seed=1, **params).fit(sp.train, validation=sp.validation)
    b = registry.get("gru4rec")(seed=2, hidden=32, **params).fit(sp.train, validation=sp.validation)
    ens = Ensemble.from_models([a, b], weights=[1.0, 0.5])
    assert ens.fit_info["train_seconds"] == pytest.approx(a.fit_info["train_seconds"] + b.fit_info["train_seconds"])
    users = np.arange(1, 6)
    hist = [sp.train.sequences().user_items(int(u)) for u in users]
    sa, sb = a.score(users, hist).clone(), b.score(users, hist).clone()
    sa[:, 0] = sb[:, 0] = -np.inf
    expected = torch.log_softmax(sa, 1) + 0.5 * torch.log_softmax(sb, 1)
    got = ens.score(users, hist)
    assert torch.allclose(got[:, 1:], expected[:, 1:], atol=1e-5) and torch.isinf(got[:, 0]).all()
    pop = _ndcg(registry.get("popular")().fit(sp.train), sp)
    assert _ndcg(ens, sp) - pop > 0.15
    # a single member with any weight ranks exactly as the member does
    one = Ensemble.from_models([a], weights=[3.0])
    assert torch.equal(torch.argsort(one.score(users, hist)[:, 1:], 1), torch.argsort(a.score(users, hist)[:, 1:], 1))
    other = registry.get("popular")().fit(make_sequences(n_users=30, n_items=15, seed=9))
    with pytest.raises(ValueError, match="another catalogue"):
        Ensemble.from_models([a, other])


def test_every_setting_is_described_and_declared_once():
    from chronorec.models.sequential.model_config import SequentialConfig
    from chronorec.training.settings import TrainSettings

    for kind in registry.kinds():
        cfg = registry.get(kind).Config
        undocumented = [n for n, f in cfg.model_fields.items() if not f.description]
        assert not undocumented, (kind, undocumented)
    assert all(f.description for f in TrainSettings.model_fields.values())
    shared = set(TrainSettings.model_fields) & set(SequentialConfig.model_fields)
    assert {"epochs", "lr", "patience", "lr_schedule", "seed", "time_budget_s"} <= shared
    for name in shared:  # one declaration: the same default in the trainer and the models
        assert TrainSettings.model_fields[name].default == SequentialConfig.model_fields[name].default, name
    picked = TrainSettings.of(registry.get("sasrec").Config(epochs=7, lr=0.01, progress=False), label="x")
    assert (picked.epochs, picked.lr, picked.progress, picked.label, picked.grad_clip) == (7, 0.01, False, "x", 5.0)


def test_ease_checks_the_memory_of_its_dense_solve_before_paying_it():
    from chronorec.errors import ConfigError

    log = make_sequences(n_users=20, n_items=40, seed=0, mean_length=6)
    with pytest.raises(ConfigError, match=r"need about .* GiB .*max_memory_gb=1e-05"):
        registry.get("ease")(max_memory_gb=1e-5).fit(log)
    assert registry.get("ease")().fit(log).B.shape == (log.n_items + 1, log.n_items + 1)
