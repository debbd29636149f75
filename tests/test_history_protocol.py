"""One history protocol from training to serving: decided once at fit, recorded with the model,
and used alike by training validation, ``chronorec evaluate``, the library and recommendations."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from chronorec.cli.main import app
from chronorec.data.eventlog import EventLog
from chronorec.evaluation.ranking import evaluate_ranking
from chronorec.evaluation.split import leave_one_out, temporal_split
from chronorec.models.registry import load
from chronorec.models.sequential.sasrec import SASRec

WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDE)


def _repeat_frame(n_users: int = 50, seed: int = 1) -> pd.DataFrame:
    """Each user returns to 3 staples 60% of the time; otherwise a one-off item."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        staples = rng.choice(30, 3, replace=False)
        for t in range(12):
            item = staples[rng.integers(3)] if rng.random() < 0.6 else 30 + rng.integers(40)
            rows.append((f"u{u}", f"i{item}", 1_700_000_000 + u * 10_000 + t * 60))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("hist")
    _repeat_frame().to_csv(d / "events.csv", index=False)
    res = invoke(
        "train", "--kind", "sasrec", "--data", d / "events.csv", "--epochs", "3", "--no-progress",
        "-p", "dim=16", "-p", "max_len=20", "--out", d / "sasrec",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return d, res.output


def test_training_validation_evaluate_and_library_agree_on_a_repeat_log(trained):
    d, train_output = trained
    model = load(d / "sasrec")
    # decided once at fit, on validation: a third of the targets repeat, so the history is included
    assert model.history_protocol["exclude"] is False and model.history_protocol["mode"] == "auto"
    assert "validation NDCG@10" in train_output and "(history included)" in train_output
    monitored = model.fit_info["best_val_ndcg10"]
    out = d / "val.json"
    res = invoke("evaluate", d / "sasrec", "--data", d / "events.csv", "--part", "validation", "--out", out)
    assert res.exit_code == 0, res.output
    assert "history included (auto:" in res.output
    evaluated = json.loads(out.read_text())["results"]["sasrec"]["validation"]["NDCG@10"]
    split = leave_one_out(EventLog.read(d / "events.csv"))
    library = evaluate_ranking(model, split.validation)["NDCG@10"]  # the model's own protocol by default
    assert monitored > 0.05  # a real figure, not a degenerate zero
    assert abs(evaluated - monitored) < 1e-6 and abs(library - monitored) < 1e-6
    # the other protocol gives another number: the agreement is not an accident of the data
    excluded = evaluate_ranking(model, split.validation, exclude_history=True)["NDCG@10"]
    assert abs(excluded - monitored) > 1e-3


def test_recommend_keeps_seen_items_for_a_model_whose_protocol_includes_them(trained):
    d, _ = trained
    model = load(d / "sasrec")
    recs = model.recommend(["u0", "u1", "u2"], k=10)
    seen = {
        u: set(model.items.to_external(model.store.user_items(int(model.users.to_internal([u])[0]))))
        for u in recs.user_id.unique()
    }
    assert any(seen[u] & set(g.item_id) for u, g in recs.groupby("user_id"))  # repeats can be recommended
    res = invoke("recommend", "--model", d / "sasrec", "--users", "u0", "-k", "3")
    assert res.exit_code == 0 and "are included (the model's history protocol (auto):" in res.stderr


def test_evaluate_refuses_to_mix_protocols_and_warns_when_one_is_imposed(trained, tmp_path):
    d, _ = trained
    res = invoke(
        "train", "--kind", "popular", "-p", "history=exclude", "--data", d / "events.csv", "--out", tmp_path / "pop"
    )
    assert res.exit_code == 0, res.output
    res = invoke("evaluate", d / "sasrec", tmp_path / "pop", "--data", d / "events.csv", "--out", tmp_path / "e.json")
    assert res.exit_code == 1 and "different history protocols" in res.output
    res = invoke(
        "evaluate", d / "sasrec", tmp_path / "pop", "--data", d / "events.csv", "--history", "include",
        "--out", tmp_path / "e.json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "pop chose its epochs with history excluded, but is evaluated with history included" in res.output


def test_without_validation_the_training_log_decides():
    log = EventLog.from_frame(_repeat_frame(n_users=20))
    assert SASRec(epochs=1, dim=8, max_len=10, progress=False).fit(log).exclude_history is False
    once = EventLog.from_sequences({f"u{i}": [f"i{i}", f"i{i + 1}", f"i{i + 2}"] for i in range(20)})
    assert SASRec(epochs=1, dim=8, max_len=10, progress=False).fit(once).exclude_history is True


def test_a_time_split_model_records_the_protocol_of_its_validation_window(tmp_path):
    frame = _repeat_frame(n_users=30)
    log = EventLog.from_frame(frame)
    ts = np.sort(log.events["timestamp"].to_numpy())
    sp = temporal_split(log, test_cutoff=int(ts[int(0.9 * len(ts))]), validation_cutoff=int(ts[int(0.8 * len(ts))]))
    model = SASRec(epochs=1, dim=8, max_len=10, progress=False).fit(sp.train, validation=sp.validation)
    assert model.history_protocol["validation_repeat_share"] > 0.2 and model.exclude_history is False


def test_refit_from_a_split_model_trains_on_every_event_with_the_chosen_epochs(trained):
    d, _ = trained
    split_model = load(d / "sasrec")
    res = invoke("train", "--refit-from", d / "sasrec", "--data", d / "events.csv", "--no-progress")
    assert res.exit_code == 0, res.output
    full = load(d / "sasrec-full")
    assert (
        full.config.epochs == split_model.fit_info["best_epoch"] and full.fit_info["epochs_run"] == full.config.epochs
    )
    assert full.config.dim == 16 and full.config.history == "include" and full.exclude_history is False
    assert full.training_data["split"]["protocol"] == "all events"
    frame = _repeat_frame()
    last = frame[frame.user_id == "u0"].item_id.tolist()
    # the served history is the whole log's: the split model lacks the held-out last two events
    assert full.items.to_external(full.store.user_items(int(full.users.to_internal(["u0"])[0]))).tolist() == last
    held_out = split_model.store.user_items(int(split_model.users.to_internal(["u0"])[0]))
    assert len(held_out) == len(last) - 2
