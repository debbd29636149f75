"""The time-to-event model of *when*: cases and censoring, metrics against scikit-survival, the learned
model on planted gaps (C-index, calibration, monotone horizons), save / load, the CLI and the endpoint."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from chronorec.temporal.when.config import WhenConfig, WhenModelConfig
from chronorec.temporal.when.data import make_when_cutoffs, make_when_data
from chronorec.temporal.when.metrics import (
    calibration,
    concordance,
    integrated_brier,
    kaplan_meier,
    paired_cindex_bootstrap,
)

H = 3600
DAY = 86400
T0 = 1_700_000_000 - 1_700_000_000 % DAY  # a UTC midnight


def _planted(n_users: int = 160, days: int = 40, seed: int = 0) -> tuple[pd.DataFrame, dict[str, float]]:
    """Users whose buys are a renewal process with a planted median gap (6 h, 24 h, 96 h or 300 h,
    log-normal, sigma 0.6), each buy preceded by a view; returns the events and each user's median."""
    rng = np.random.default_rng(seed)
    medians = np.array([6.0, 24.0, 96.0, 300.0])
    rows, med = [], {}
    for u in range(n_users):
        m = float(medians[u % 4])
        med[f"u{u}"] = m
        t = T0 + rng.uniform(0, 2 * DAY)
        while t < T0 + days * DAY:
            rows.append((f"u{u}", "i1", int(t - 600), "pv"))
            rows.append((f"u{u}", "i1", int(t), "buy"))
            t += m * H * np.exp(0.6 * rng.standard_normal())
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "behavior"])
    return df[df["timestamp"] < T0 + days * DAY].reset_index(drop=True), med


# ----------------------------------------------------------------------------- cases and censoring
def test_times_to_next_event_are_censored_at_each_part_s_follow_up_end():
    ev = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b", "a"],
            "item_id": ["x"] * 6,
            "timestamp": [T0, T0 + 2 * DAY, T0 + 5 * DAY + 3 * H, T0 + H, T0 + 4 * DAY, T0 + 7 * DAY - 1],
            "behavior": ["buy", "pv", "buy", "pv", "pv", "pv"],
        }
    )
    cuts = {"train": [T0 + DAY], "validation": [T0 + 3 * DAY], "test": [T0 + 5 * DAY], "end": [T0 + 6 * DAY]}
    d = make_when_data(ev, cutoffs=cuts, behaviors=["buy", "pv"], windows=(1,))
    c = d.cases.set_index(["user_id", "cutoff"])
    assert list(d.behaviors) == ["buy", "pv"] and d.target_index == 0
    row = {k: i for i, k in enumerate(c.index)}
    # a at the training cut-off (day 1): its next buy (day 5) is after the validation cut-off: censored at day 3
    i = row[("a", T0 + DAY)]
    assert not d.observed[i, 0] and d.time[i, 0] == pytest.approx(48.0)
    assert d.observed[i, 1] and d.time[i, 1] == pytest.approx(24.0)  # the view on day 2
    # a at the test cut-off (day 5): the buy 3 h later is seen; the view just before day 7 is past the test end
    i = row[("a", T0 + 5 * DAY)]
    assert d.observed[i, 0] and d.time[i, 0] == pytest.approx(3.0)
    assert not d.observed[i, 1] and d.time[i, 1] == pytest.approx(24.0)
    # b at validation (day 3) views on day 4; b never buys: censored at the test cut-off
    i = row[("b", T0 + 3 * DAY)]
    assert d.observed[i, 1] and d.time[i, 1] == pytest.approx(24.0)
    assert not d.observed[i, 0] and d.time[i, 0] == pytest.approx(48.0)
    assert set(d.cases["part"]) == {"train", "validation", "test"}
    # features see only the past: at day 1, a has one buy and b one view
    f = d.features.assign(user=d.cases["user_id"], cut=d.cases["cutoff"]).set_index(["user", "cut"])
    assert f.loc[("a", T0 + DAY), "n_buy"] == 1 and f.loc[("b", T0 + DAY), "n_events"] == 1


def test_cutoffs_follow_the_protocol():
    ts = np.array([T0, T0 + 20 * DAY])
    c = make_when_cutoffs(ts, validation_s=2 * DAY, step_s=DAY, test_window_s=3 * DAY, min_history_s=3 * DAY)
    assert c["test"] == [T0 + 17 * DAY] and c["validation"] == [T0 + 15 * DAY]
    assert c["train"] == [T0 + d * DAY for d in range(3, 15)]
    assert c["end"] == [T0 + 20 * DAY]
    # a sequence of steps: every training cut-off is before the validation cut-off
    assert max(c["train"]) < c["validation"][0] < c["test"][0]


def test_sequences_hold_only_steps_before_the_cutoff():
    df, _ = _planted(n_users=4, days=6)
    cut = T0 + 3 * DAY
    d = make_when_data(df, cutoffs={"test": [cut]}, behaviors=["buy", "pv"], windows=(1,))
    tok, num = d.sequences.encode(d.cases["user_id"].to_numpy(), d.cases["cutoff"].to_numpy(), 8)
    for r, u in enumerate(d.cases["user_id"]):
        past = df[(df["user_id"] == u) & (df["timestamp"] < cut)].sort_values("timestamp")
        n = min(len(past), 8)
        assert (tok[r, -n:] > 0).all() and (tok[r, : 8 - n] == 0).all()
        # the last step's age (log1p hours) matches the user's last event before the cut-off
        assert num[r, -1, 1] == pytest.approx(np.log1p((cut - past["timestamp"].iloc[-1]) / H), rel=1e-5)
        assert tok[r, -1] == 1 + ["buy", "pv"].index(past["behavior"].iloc[-1])


# ----------------------------------------------------------------------------- metrics
def test_metrics_agree_with_scikit_survival():
    sm = pytest.importorskip("sksurv.metrics")
    from sksurv.util import Surv

    rng = np.random.default_rng(0)
    n = 400
    t = np.round(rng.exponential(10, n), 1)
    c = rng.uniform(0, 30, n)
    e, t = t <= c, np.minimum(t, c)
    risk = np.round(-t + rng.normal(0, 8, n))
    y = Surv.from_arrays(e, t)
    assert concordance(t, e, risk) == pytest.approx(sm.concordance_index_censored(e, t, risk)[0], abs=1e-12)
    assert concordance(t, e, risk, ipcw=True, tau=20) == pytest.approx(
        sm.concordance_index_ipcw(y, y, risk, tau=20)[0], abs=1e-9
    )
    grid = np.linspace(1, 20, 12)
    surv = np.exp(-grid[None, :] / np.exp(rng.normal(2.3, 0.3, n))[:, None])
    assert integrated_brier(t, e, surv, grid) == pytest.approx(sm.integrated_brier_score(y, y, surv, grid), abs=1e-12)


def test_kaplan_meier_and_the_bootstrap_of_a_c_index_difference():
    rng = np.random.default_rng(1)
    t = rng.exponential(5.0, 3000)
    e = t < 8.0
    t = np.minimum(t, 8.0)
    times, s = kaplan_meier(t, e)
    assert s[np.searchsorted(times, 5.0) - 1] == pytest.approx(np.exp(-1.0), abs=0.03)
    good, noise = -t + rng.normal(0, 1, len(t)), rng.normal(size=len(t))
    b = paired_cindex_bootstrap(t[:800], e[:800], good[:800], noise[:800], n_boot=200)
    assert b["difference"] > 0.2 and b["ci95"][0] > 0.15
    same = paired_cindex_bootstrap(t[:300], e[:300], good[:300], good[:300], n_boot=50)
    assert same["difference"] == 0 and same["ci95"] == [0.0, 0.0]
    cal = calibration(np.r_[np.zeros(50), np.ones(50)], np.r_[np.full(50, 0.1), np.full(50, 0.9)], bins=2)
    assert cal["ece"] == pytest.approx(0.1) and [r["count"] for r in cal["reliability"]] == [50, 50]


# ----------------------------------------------------------------------------- the learned model
@pytest.fixture(scope="module")
def planted_fit(tmp_path_factory):
    from chronorec.temporal.when.model import fit_when_model
    from chronorec.temporal.when.protocol import build_when_data
    from chronorec.training.settings import RunSettings

    df, med = _planted()
    cfg = WhenConfig(validation_hours=72, test_window_hours=120, step_hours=24, min_history_hours=72, windows=[1, 7])
    data = build_when_data(df, cfg, utc_offset_hours=0.0)
    model_cfg = WhenModelConfig(dim=16, max_len=16, components=4, epochs=12, patience=4, batch_size=128, lr=3e-3)
    model = fit_when_model(data, model_cfg, run=RunSettings(progress=False, threads=1), windows=[1, 7])
    return df, med, data, model, tmp_path_factory.mktemp("when")


def test_learned_model_ranks_and_calibrates_planted_gaps(planted_fit):
    _, med, data, model, _ = planted_fit
    te, ti = data.part("test"), data.target_index
    mix = model.mixture(data, te)
    t, e = data.time[te, ti], data.observed[te, ti]
    tau = data.follow_up_hours("test")
    c = concordance(t, e, mix.cdf([tau])[:, ti, 0])
    assert c > 0.72, c
    # P(buy within 24 h) is calibrated on the held-out cut-off (every test case is followed 120 h)
    p24 = mix.cdf([24.0])[:, ti, 0]
    cal = calibration(e & (t <= 24.0), p24, bins=5)
    assert cal["ece"] < 0.1 and abs(cal["mean_predicted"] - cal["observed_rate"]) < 0.08, cal
    # the planted order: a 6 h user's median is below a 300 h user's
    users = data.cases["user_id"].to_numpy()[te]
    q50 = mix.quantile(0.5)[:, ti]
    fast = np.median(q50[[med[u] == 6.0 for u in users]])
    slow = np.median(q50[[med[u] == 300.0 for u in users]])
    assert fast < 24.0 < 100.0 < slow, (fast, slow)
    # one model, every horizon: P(within H) never decreases in H
    cdf = mix.cdf([1, 6, 24, 72, 168, 1000])
    assert (np.diff(cdf, axis=-1) >= -1e-6).all()


def test_saved_when_model_predicts_the_same_and_writes_every_column(planted_fit):
    from chronorec.temporal.when.model import load_when_model

    _, _, _, model, tmp = planted_fit
    path = model.save(tmp / "model")
    before = model.predict(horizons_hours=[6, 24, 168])
    after = load_when_model(path).predict(horizons_hours=[6, 24, 168])
    pd.testing.assert_frame_equal(before, after)
    assert list(after.columns) == [
        "user_id", "behavior", "at", "p_within_6h", "p_within_24h", "p_within_168h",
        "expected_hours", "median_hours", "q10_hours", "q90_hours",
    ]  # fmt: skip
    assert set(after["behavior"]) == {"buy", "pv"} and len(after) == 2 * after["user_id"].nunique()
    assert (after["p_within_6h"] <= after["p_within_24h"] + 1e-9).all()
    assert (after["q10_hours"] <= after["median_hours"]).all() and (after["median_hours"] <= after["q90_hours"]).all()
    assert not any(p.suffix == ".pkl" for p in path.iterdir())
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["kind"] == "when-model"
    # an earlier --at: fewer events, the same users at most
    at = int(model.events["timestamp"].max()) - 10 * DAY
    early = load_when_model(path).predict(at=at)
    assert early["at"].iloc[0] == pd.Timestamp(at, unit="s", tz="UTC")
    assert set(early["user_id"]) <= set(after["user_id"])


def test_when_endpoint_answers_horizons_and_refuses_bad_input(planted_fit):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from chronorec.serving.behavior import MAX_HORIZONS, behavior_router

    _, med, _, model, tmp = planted_fit
    path = tmp / "served"
    if not path.exists():
        model.save(path)
    app = FastAPI()
    app.include_router(behavior_router(path))
    client = TestClient(app)
    fast, slow = next(u for u, m in med.items() if m == 6.0), next(u for u, m in med.items() if m == 300.0)
    r = client.post("/predict-behavior", json={"user_ids": [fast, slow, "nobody"], "horizons_hours": [1, 24, 168]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["behavior"] == "buy" and body["horizons_hours"] == [1.0, 24.0, 168.0]
    assert body["unknown_users"] == ["nobody"] and body["warnings"]
    p = {x["user_id"]: x for x in body["predictions"]}
    assert all(np.all(np.diff(x["probabilities"]) >= -1e-9) for x in p.values())
    assert p[fast]["probabilities"][1] > p[slow]["probabilities"][1]
    assert p[fast]["median_hours"] < p[slow]["median_hours"]
    assert p[fast]["q10_hours"] <= p[fast]["median_hours"] <= p[fast]["q90_hours"]
    # the same figures as the library's table
    table = model.predict(horizons_hours=[24])
    row = table[(table["user_id"] == fast) & (table["behavior"] == "buy")].iloc[0]
    assert p[fast]["probabilities"][1] == pytest.approx(row["p_within_24h"], abs=1e-5)
    pv = client.post("/predict-behavior", json={"user_ids": [fast], "behavior": "pv"}).json()
    assert pv["behavior"] == "pv" and pv["horizons_hours"] == [24.0, 168.0]
    for bad in (
        {"user_ids": [fast], "horizons_hours": [-1]},
        {"user_ids": [fast], "horizons_hours": []},
        {"user_ids": [fast], "horizons_hours": [1.0] * (MAX_HORIZONS + 1)},
        {"user_ids": [fast], "horizons_hours": [1e9]},
        {"user_ids": [fast], "horizons_hours": ["soon"]},
        {"user_ids": [fast], "behavior": "teleport"},
        {"user_ids": [fast], "horizon": 24},
        {"user_ids": []},
    ):
        assert client.post("/predict-behavior", json=bad).status_code == 422, bad


def test_cli_saves_and_predict_behavior_writes_a_when_model_s_columns(tmp_path):
    from typer.testing import CliRunner

    from chronorec.cli import app

    df, _ = _planted(n_users=40, days=24, seed=3)
    src = tmp_path / "events.csv"
    df.to_csv(src, index=False)
    runner = CliRunner()
    common = ["--data", str(src), "--validation-hours", "72", "--step-hours", "48", "--test-window-hours", "96",
              "--min-history-hours", "72", "--windows", "1,7", "--epochs", "2", "--max-len", "8", "--threads", "1"]  # fmt: skip
    r = runner.invoke(app, ["predict-when", *common, "--save", str(tmp_path / "m"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "saved to" in r.output and (tmp_path / "run" / "predictions.csv").exists()
    at = str(int(df["timestamp"].max()) - DAY)
    out = tmp_path / "p.csv"
    r = runner.invoke(app, ["predict-behavior", "--model", str(tmp_path / "m"), "--at", at, "--predictions", str(out)])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out)
    assert {"p_within_24h", "p_within_168h", "expected_hours", "median_hours", "q10_hours", "q90_hours"} <= set(t)
    assert pd.Timestamp(t["at"].iloc[0]) == pd.Timestamp(int(at), unit="s", tz="UTC")
    # evaluation against Kaplan-Meier (no extra package needed)
    r = runner.invoke(app, ["predict-when", *common, "--baselines", "km", "--bootstrap", "50",
                            "--out", str(tmp_path / "eval")])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "eval" / "when.json").read_text())
    assert {"when", "km"} <= set(res["results"]) and res["bar"]["best_survival_baseline"] == "km"
    assert (tmp_path / "eval" / "when_survival_curves.png").exists()
    # a bad option is one line naming it
    r = runner.invoke(app, ["predict-when", "--data", str(src), "--baselines", "deepsurv"])
    assert r.exit_code == 1 and "deepsurv" in r.output


def test_evaluation_scores_every_method_and_skips_what_needs_the_extra(planted_fit, monkeypatch):
    import chronorec.temporal.behavior as behavior
    import chronorec.temporal.when.evaluate as ev

    _, _, data, _, _ = planted_fit
    monkeypatch.setattr(ev, "_sksurv_available", lambda: False)  # as on the base install
    monkeypatch.setitem(behavior.FEATURE_GRIDS, "gbm", [{"learning_rate": 0.1, "max_iter": 30, "max_leaf_nodes": 4}])
    cfg = WhenModelConfig(dim=8, max_len=8, components=2, epochs=2, batch_size=256)
    res = ev.evaluate_when(data, model_config=cfg, baselines=("km", "cox", "rsf", "gbm"), horizons_hours=(24, 168),
                           n_boot=50, log=lambda m: None)  # fmt: skip
    assert set(res["results"]) == {"when", "km", "gbm_24h"}
    assert set(res["skipped"]) == {"cox", "rsf"} and "survival" in res["skipped"]["cox"]
    # the test follow-up is 120 h: 168 h is beyond it and not scored
    assert res["horizons_hours"] == [24.0] and res["horizons_beyond_follow_up"] == [168.0]
    km, gbm = res["results"]["km"], res["results"]["gbm_24h"]
    assert 0.6 < km["cindex_harrell"] <= 1 and 0.6 < gbm["cindex_harrell"] <= 1
    assert 0 < km["integrated_brier"] < 0.25 and km["calibration_24h"]["n"] == len(data.part("test"))
    assert res["bar"]["best_survival_baseline"] == "km" and set(res["bar"]["versus"]) == {"km"}
    json.dumps({k: v for k, v in res.items() if not k.startswith("_")}, default=float)


def test_predict_when_help_describes_every_option():
    from typer.testing import CliRunner

    from chronorec.cli import app

    r = CliRunner().invoke(app, ["predict-when", "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert r.exit_code == 0
    opts = [ln for ln in r.output.splitlines() if ln.strip().startswith("│ --")]
    assert len(opts) > 25 and all(len(ln.split()) > 3 for ln in opts)
    assert "--horizons" in r.output and "--test-cutoff" in r.output
