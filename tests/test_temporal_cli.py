import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from chronorec.cli.main import app

runner = CliRunner()
DAY = 86400


def _events(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame(
        {
            "uid": rng.choice(["a", "b", "c"], n),
            "sku": rng.integers(0, 20, n),
            "ts": 1_700_006_400 + np.sort(rng.integers(0, 20 * DAY, n)),
            "event": rng.choice(["pv", "cart", "buy"], n, p=[0.7, 0.2, 0.1]),
        }
    )
    path = tmp_path / "events.csv"
    df.to_csv(path, index=False)
    return path


def test_features_command_writes_tables(tmp_path):
    path = _events(tmp_path)
    out = tmp_path / "feat"
    r = runner.invoke(
        app,
        ["features", "--data", str(path), "--user-col", "uid", "--item-col", "sku", "--time-col", "ts"]
        + ["--behavior-col", "event", "--freq", "day", "--windows", "1,7", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    ft = pd.read_parquet(out / "features.parquet")
    assert set(ft["entity_id"]) == {"a", "b", "c"} and "w7_share_buy" in ft.columns
    assert ft["cutoff"].nunique() == 20
    s = pd.read_parquet(out / "series.parquet")
    assert len(s) == 3 * 20 and s["count"].sum() == 300


def test_forecast_command_on_series_file(tmp_path):
    t = np.arange(70)
    s = pd.DataFrame(
        {
            "series_id": np.repeat(["x", "y"], 70),
            "period": np.tile(pd.date_range("2024-01-01", periods=70, freq="D").astype(str), 2),
            "y": np.r_[np.tile([1.0, 2, 3, 4, 5, 6, 7], 10), 10 + t % 7],
        }
    )
    path = tmp_path / "s.csv"
    s.to_csv(path, index=False)
    out = tmp_path / "fc"
    r = runner.invoke(
        app,
        ["forecast", "--series", str(path), "--horizon", "7", "--origins", "2"]
        + ["--models", "naive,seasonal_naive,transformer", "--epochs", "2", "--threads", "1", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    payload = json.loads((out / "forecast.json").read_text())
    res = payload["evaluation"]["results"]
    assert res["seasonal_naive"]["MAE"] == 0.0 and res["naive"]["MAE"] > 0
    # the transformer is on the ladder: trained (2 epochs at most) and scored like the others
    assert res["transformer"]["epochs_run"] <= 2 and np.isfinite(res["transformer"]["MAE"])
    # the future: 7 days after the last one, per series, from the chosen statistical method
    fc = pd.read_csv(out / "forecast.csv", parse_dates=["period"])
    assert (
        len(fc) == 14 and fc["period"].min() == pd.Timestamp("2024-03-11") and set(fc["method"]) == {"seasonal_naive"}
    )
    x = fc[fc["series_id"] == "x"]
    assert x["mean"].tolist() == [1.0, 2, 3, 4, 5, 6, 7] and (x["lo-95"] <= x["mean"]).all()
    assert payload["freq"] == "day" and (out / "forecaster" / "manifest.json").exists()
    for png in ("forecast.png", "evaluation.png"):
        assert (out / png).stat().st_size > 1000


def test_forecast_on_too_short_a_span_names_a_finer_frequency(tmp_path):
    s = pd.DataFrame({"series_id": "x", "period": pd.date_range("2024-01-01", periods=9, freq="D"), "y": 1.0})
    path = tmp_path / "s.csv"
    s.to_csv(path, index=False)
    r = runner.invoke(app, ["forecast", "--series", str(path), "--freq", "day", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "--freq hour (216 periods)" in r.output and "Traceback" not in r.output


def test_commands_have_help_for_every_option():
    for cmd in ("features", "predict-behavior", "forecast"):
        r = runner.invoke(app, [cmd, "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250", "NO_COLOR": "1"})
        assert r.exit_code == 0
        opts = [ln for ln in r.output.splitlines() if ln.strip().startswith("│ --")]
        assert opts and all(len(ln.split()) > 3 for ln in opts), cmd


def test_predict_behavior_saves_a_model_and_writes_per_user_probabilities(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for u in range(30):
        for d in range(10):
            base = 1_700_006_400 + d * DAY
            rows += [(f"c{u}", int(rng.integers(9)), base + int(rng.integers(DAY)), "pv") for _ in range(2)]
            if rng.random() < (0.7 if u < 10 else 0.05):
                rows.append((f"c{u}", int(rng.integers(9)), base + int(rng.integers(DAY)), "buy"))
    path = tmp_path / "ev.csv"
    pd.DataFrame(rows, columns=["uid", "sku", "ts", "event"]).to_csv(path, index=False)
    data = [
        "--data",
        str(path),
        "--user-col",
        "uid",
        "--item-col",
        "sku",
        "--time-col",
        "ts",
        "--behavior-col",
        "event",
    ]
    out, model = tmp_path / "out", tmp_path / "model"
    r = runner.invoke(
        app,
        ["predict-behavior", *data, "--models", "logistic", "--step-hours", "24", "--windows", "1,7"]
        + ["--save", str(model), "--out", str(out), "--threads", "1"],
    )
    assert r.exit_code == 0, r.output
    assert "Brier" in r.output and (model / "manifest.json").exists() and (out / "calibration_saved_model.png").exists()
    p = pd.read_csv(out / "predictions.csv")
    assert len(p) == 30 and p["probability"].between(0, 1).all()
    assert p[p["user_id"].str.match(r"c\d$")]["probability"].mean() > p["probability"].mean()  # c0..c9 buy
    r = runner.invoke(
        app,
        ["predict-behavior", "--model", str(model), "--at", "2023-11-20", "--predictions", str(tmp_path / "p.parquet")],
    )
    assert r.exit_code == 0, r.output
    q = pd.read_parquet(tmp_path / "p.parquet")
    assert len(q) == 30 and str(q["at"].iloc[0]).startswith("2023-11-20")
    r = runner.invoke(app, ["predict-behavior", "--model", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "no such behaviour model" in r.output


def test_forecast_top_n_gives_n_series_and_their_total_apart(tmp_path, monkeypatch):
    import chronorec.datasets.temporal as dt

    rng = np.random.default_rng(0)
    n = 4000
    ev = pd.DataFrame(
        {
            "user_id": rng.integers(0, 50, n),
            "item_id": rng.choice(8, n, p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05]),
            "timestamp": 1_700_006_400 + np.sort(rng.integers(0, 120 * DAY, n)),
        }
    )
    monkeypatch.setattr(dt, "load_temporal_dataset", lambda key, data_dir=None, **kw: ev)
    out = tmp_path / "fc"
    r = runner.invoke(
        app,
        ["forecast", "--dataset", "ml-100k", "--top", "3", "--horizon", "7", "--origins", "3"]
        + ["--models", "naive,seasonal_naive", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    assert "3 series" in r.output and "__total__" in r.output
    payload = json.loads((out / "forecast.json").read_text())
    assert payload["n_series"] == 3 and payload["total"]["n_series"] == 1
    assert pd.read_csv(out / "forecast.csv")["series_id"].nunique() == 3
    total = pd.read_csv(out / "total_forecast.csv")
    assert set(total["series_id"]) == {"__total__"} and (out / "total_forecaster" / "manifest.json").exists()


def test_forecast_top_keeps_the_largest_series_of_a_series_file(tmp_path):
    """--top on a --series file keeps the N largest series (by total |value|) and says so; without it
    every series of the file is forecast."""
    periods = pd.date_range("2024-01-01", periods=42, freq="D").astype(str)
    sizes = {"small": 1.0, "big": 50.0, "mid": 10.0}
    s = pd.DataFrame(
        [(sid, p, size * (1 + i % 7)) for sid, size in sizes.items() for i, p in enumerate(periods)],
        columns=["series_id", "period", "y"],
    )
    path = tmp_path / "s.csv"
    s.to_csv(path, index=False)
    base = ["forecast", "--series", str(path), "--horizon", "7", "--origins", "2", "--models", "naive,seasonal_naive"]
    r = runner.invoke(app, [*base, "--top", "2", "--out", str(tmp_path / "top")])
    assert r.exit_code == 0, r.output
    assert "Kept the 2 largest of 3 series" in r.output
    assert set(pd.read_csv(tmp_path / "top" / "forecast.csv")["series_id"]) == {"big", "mid"}
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "all")])
    assert r.exit_code == 0, r.output
    assert set(pd.read_csv(tmp_path / "all" / "forecast.csv")["series_id"]) == set(sizes)


def test_predict_behavior_runs_on_a_three_hour_log_at_minute_scale(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for u in range(80):
        for t in np.sort(rng.integers(0, 3 * 3600, 25)):
            rows.append((f"u{u}", int(rng.integers(30)), 1_700_006_400 + int(t), "view"))
            if rng.random() < 0.1:
                rows.append((f"u{u}", 1, 1_700_006_400 + int(t) + 600, "purchase"))
    path = tmp_path / "ev.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "behavior"]).to_csv(path, index=False)
    base = ["predict-behavior", "--data", str(path), "--target", "purchase", "--tasks", "target"]
    base += ["--models", "logistic", "--threads", "1", "--out", str(tmp_path / "o")]
    r = runner.invoke(app, base)
    assert r.exit_code == 0, r.output
    scale = json.loads((tmp_path / "o" / "behavior.json").read_text())["data"]["time_scale"]
    assert scale["horizon"].endswith("m") and scale["freq"].endswith("m")  # minutes, from the span
    r = runner.invoke(app, [*base, "--horizon", "30m", "--step", "10m", "--min-history", "20m", "--windows", "1,30m"])
    assert r.exit_code == 0, r.output
    assert "horizon 30m, step 10m, min_history 20m" in r.output
    r = runner.invoke(app, [*base, "--horizon-hours", "0.5"])  # the older spelling still works
    assert r.exit_code == 0 and "horizon 30m" in r.output, r.output
    for extra, says in (
        (["--horizon", "30m", "--horizon-hours", "1"], "--horizon or --horizon-hours, not both"),
        (["--horizon", "5x"], "duration such as"),
        (["--train-cutoffs", "0"], "train_cutoffs"),
        (["--horizon", "2h"], "try --horizon"),
        (["--horizon", "1d"], "try --horizon 30m --min-history 30m"),
        (["--freq", "minute"], "hour, day, week or a duration"),
    ):
        r = runner.invoke(app, [*base, *extra])
        assert r.exit_code != 0 and says in r.output, (extra, r.output)
        assert "Traceback" not in r.output
