"""Leak-proof evaluation: a saved model records what it was trained on, and evaluate refuses to
score it on targets it has seen, on another split protocol, or on a catalogue it never saw."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from chronorec.cli.main import app
from chronorec.data.eventlog import EventLog
from chronorec.data.fingerprint import data_fingerprint, training_record
from chronorec.evaluation.leak import EvaluationRefused, check_evaluation
from chronorec.evaluation.split import leave_one_out, temporal_split
from chronorec.models.baselines.popular import MostPopular
from chronorec.models.registry import load

runner = CliRunner()
WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250", "NO_COLOR": "1"}
DAY = 86_400
START = 1_700_000_000  # 2023-11-14


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env=WIDE)


def _log_frame(prefix: str = "i", n_users: int = 30, n_events: int = 12, seed: int = 0) -> pd.DataFrame:
    """Each user buys one item a day for ``n_events`` days, from a 15-item catalogue."""
    rng = np.random.default_rng(seed)
    rows = [
        (f"u{u}", f"{prefix}{rng.integers(15)}", START + d * DAY + u * 60)
        for u in range(n_users)
        for d in range(n_events)
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    d = tmp_path_factory.mktemp("leak")
    path = EventLog.from_frame(_log_frame()).save(d / "events")  # an ingested log folder
    return d, path


def _cutoff(days: int) -> str:
    return pd.Timestamp(START + days * DAY, unit="s").strftime("%Y-%m-%d")


def test_saved_model_records_its_training_data_and_split(shop):
    d, path = shop
    res = invoke("train", "--kind", "popular", "--data", path, "--out", d / "pop-loo")
    assert res.exit_code == 0, res.output
    assert "Recorded for leak checks" in res.output
    meta = json.loads((d / "pop-loo" / "config.json").read_text())["training_data"]
    assert meta["split"] == {"protocol": "leave-one-out", "min_events": 3}
    assert meta["n_events"] == 30 * 10  # the last two events of each user are held out
    assert len(meta["fingerprint"]) == 64 and len(meta["catalogue_hash"]) == 64
    # the last training event: each user's 10th day (user 29 is the latest, 29 minutes in)
    assert meta["last_event_time"] == START + 9 * DAY + 29 * 60
    assert load(d / "pop-loo").training_data == meta


def test_the_data_fingerprint_is_the_one_saved_folders_record():
    """One definition (chronorec.data.fingerprint) for leak records and checkpoints, unchanged from the
    records of folders saved before it moved: a pinned log keeps its pinned hash."""
    log = EventLog.from_frame(
        pd.DataFrame({"user_id": list("aabcb"), "item_id": list("xyxzz"), "timestamp": [1, 2, 3, 4, 5]})
    )
    assert data_fingerprint(log) == "33eb13e911c0cd1f29125425a7914d4e40ea6e226add28c4bb585036ee6a6ab7"
    assert training_record(log)["fingerprint"] == data_fingerprint(log)


def test_a_folder_saved_before_the_move_passes_its_leak_check(shop, tmp_path):
    """A folder's config.json written by an older chronorec (its training_data fields as they were)
    loads and is scored on an honest split."""
    d, path = shop
    assert invoke("train", "--kind", "popular", "--data", path, "--out", tmp_path / "old").exit_code == 0
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    assert set(cfg["training_data"]) == {
        "fingerprint", "n_events", "n_users", "n_items", "first_event_time", "last_event_time",
        "last_event", "catalogue_hash", "catalogue_size", "split",
    }  # fmt: skip
    log = EventLog.load(path)
    split = leave_one_out(log)
    assert cfg["training_data"]["fingerprint"] == data_fingerprint(split.train)
    model = load(tmp_path / "old")
    assert check_evaluation("old", model, log, split, split.test)["leaks"] == []


def test_leave_one_out_model_scored_on_a_temporal_split_inside_its_training_is_refused(shop):
    """The leak of the field report: trained leave-one-out, evaluated with --split temporal and a
    cut-off inside the training period -- its test targets were training data."""
    d, path = shop
    if not (d / "pop-loo").exists():
        assert invoke("train", "--kind", "popular", "--data", path, "--out", d / "pop-loo").exit_code == 0
    args = ["evaluate", d / "pop-loo", "--data", path, "--split", "temporal", "--cutoff", _cutoff(6)]
    res = invoke(*args, "--out", d / "refused.json")
    assert res.exit_code == 1
    out = res.output.strip()
    assert "refusing a leaked evaluation" in out and "--allow-leak" in out
    assert "'leave-one-out' split, evaluated on 'global-temporal'" in out
    assert "at or after the test cut-off" in out
    assert len(out.splitlines()) == 1 and "Traceback" not in out
    assert not (d / "refused.json").exists()

    res = invoke(*args, "--allow-leak", "--out", d / "allowed.json")
    assert res.exit_code == 0, res.output
    payload = json.loads((d / "allowed.json").read_text())
    check = payload["results"]["pop-loo"]["leak_check"]
    assert check["checked"] and len(check["leaks"]) == 2
    assert any("LEAKED" in w for w in payload["warnings"])


def test_temporal_model_with_a_later_cutoff_is_refused_and_an_honest_one_is_scored(shop):
    d, path = shop
    for name, cut in (("late", 9), ("honest", 6)):
        res = invoke(
            "train", "--kind", "popular", "--data", path, "--split", "temporal", "--cutoff", _cutoff(cut),
            "--out", d / name,
        )  # fmt: skip
        assert res.exit_code == 0, res.output
    args = ["evaluate", "--data", path, "--split", "temporal", "--cutoff", _cutoff(6)]
    res = invoke(*args, d / "late", "--out", d / "late.json")
    assert res.exit_code == 1 and "at or after the test cut-off" in res.output
    res = invoke(*args, d / "honest", "--out", d / "honest.json")
    assert res.exit_code == 0, res.output
    check = json.loads((d / "honest.json").read_text())["results"]["honest"]["leak_check"]
    assert check == {"checked": True, "leaks": [], "warnings": []}


def test_full_model_is_refused_on_any_split(shop):
    d, path = shop
    assert invoke("train", "--kind", "popular", "--data", path, "--full", "--out", d / "full").exit_code == 0
    res = invoke("evaluate", d / "full", "--data", path, "--out", d / "full.json")
    assert res.exit_code == 1 and "'all events' split" in res.output


def test_smaller_min_events_is_a_leak():
    log = EventLog.from_frame(_log_frame(n_events=4))
    model = MostPopular().fit(leave_one_out(log, min_events=5).train).record_split(leave_one_out(log, min_events=5))
    sp = leave_one_out(log, min_events=3)
    with pytest.raises(EvaluationRefused, match="min_events 3 < 5"):
        check_evaluation("pop", model, log, sp, sp.test)


def test_model_of_another_catalogue_is_refused_not_scored_zero(shop, tmp_path):
    d, path = shop
    other = EventLog.from_frame(_log_frame(prefix="film", seed=1)).save(tmp_path / "other")
    assert invoke("train", "--kind", "popular", "--data", other, "--out", tmp_path / "films").exit_code == 0
    res = invoke("evaluate", tmp_path / "films", "--data", path, "--out", tmp_path / "x.json")
    assert res.exit_code == 1
    assert "none of the" in res.output and "model's catalogue" in res.output
    assert "0.0000" not in res.output and not (tmp_path / "x.json").exists()
    # not even with the leak override: a score of 0 says nothing about the model
    assert invoke("evaluate", tmp_path / "films", "--data", path, "--allow-leak").exit_code == 1


def test_model_folder_without_the_record_still_evaluates_with_a_warning(shop, tmp_path):
    d, path = shop
    assert invoke("train", "--kind", "popular", "--data", path, "--out", tmp_path / "old").exit_code == 0
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    del cfg["training_data"]  # as saved before the record existed (manifest rewritten to match)
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    from chronorec.artifacts import write_manifest

    write_manifest(tmp_path / "old", "popular")
    assert load(tmp_path / "old").training_data == {}
    res = invoke("evaluate", tmp_path / "old", "--data", path, "--out", tmp_path / "old.json")
    assert res.exit_code == 0, res.output
    assert "leakage cannot be checked" in res.output
    assert json.loads((tmp_path / "old.json").read_text())["results"]["old"]["leak_check"]["checked"] is False


def test_api_check_on_a_temporal_split():
    log = EventLog.from_frame(_log_frame())
    honest = temporal_split(log, test_cutoff=START + 8 * DAY, validation_cutoff=START + 6 * DAY)
    model = MostPopular().fit(honest.train).record_split(honest)
    assert check_evaluation("pop", model, log, honest, honest.test)["leaks"] == []
    earlier = temporal_split(log, test_cutoff=START + 5 * DAY)
    with pytest.raises(EvaluationRefused, match="last training event"):
        check_evaluation("pop", model, log, earlier, earlier.test)
    allowed = check_evaluation("pop", model, log, earlier, earlier.test, allow_leak=True)
    assert allowed["leaks"] and allowed["checked"]


def test_an_ensemble_is_checked_through_its_members():
    from chronorec.models.baselines.itemknn import ItemKNN
    from chronorec.models.ensemble import Ensemble

    log = EventLog.from_frame(_log_frame())
    loo = leave_one_out(log)
    members = [MostPopular().fit(loo.train).record_split(loo), ItemKNN().fit(loo.train).record_split(loo)]
    ens = Ensemble.from_models(members)
    assert check_evaluation("ens", ens, log, loo, loo.test)["leaks"] == []
    temporal = temporal_split(log, test_cutoff=START + 6 * DAY)
    with pytest.raises(EvaluationRefused, match="ens: refusing a leaked evaluation"):
        check_evaluation("ens", ens, log, temporal, temporal.test)
