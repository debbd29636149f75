"""The retail tutorial's script (docs/tutorial/retail.sh) runs end to end on a small generated log of
the UCI Online Retail shape, and every step leaves what the tutorial says it leaves."""

from __future__ import annotations

import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "tutorial" / "retail.sh"
CUSTOMER = "12001"


def retail_log(n_customers: int = 16, n_products: int = 20, days: int = 200, seed: int = 0) -> pd.DataFrame:
    """Invoice lines like online_retail.csv: every customer re-orders a few favourite products about
    every ten days (planted repeat purchases) plus a random one; some invoices carry a POST (postage)
    line, some lines are cancelled by a C invoice with a negative quantity, some sales have no
    customer (guest checkouts)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2011-01-03 09:00")
    names = {f"2{i:04d}": f"PRODUCT {i}" for i in range(n_products)}
    codes = list(names)
    rows, invoice = [], 550000

    def line(inv, code, qty, when, customer, price=None):
        name = "POSTAGE" if code == "POST" else names[code]
        price = 18.0 if code == "POST" else (price or round(1 + codes.index(code) * 0.25, 2))
        rows.append((inv, code, name, qty, when.strftime("%Y-%m-%d %H:%M:%S"), price, customer, "United Kingdom"))

    for c in range(n_customers):
        customer = float(12001 + c)
        favourites = rng.choice(codes, size=3, replace=False)
        day = int(rng.integers(0, 10))
        while day < days:
            when = start + pd.Timedelta(days=day, minutes=int(rng.integers(0, 480)))
            invoice += 1
            basket = [*rng.choice(favourites, size=2, replace=False)]
            if rng.random() < 0.4:
                basket.append(rng.choice(codes))
            for code in dict.fromkeys(basket):
                line(str(invoice), code, int(rng.integers(1, 13)), when, customer)
            if rng.random() < 0.3:
                line(str(invoice), "POST", 1, when, customer)
            if rng.random() < 0.15:  # part of the first line cancelled an hour later
                line(f"C{invoice}", basket[0], -1, when + pd.Timedelta(hours=1), customer)
            day += int(rng.integers(7, 20))
    for d in range(0, days, 3):  # guest checkouts: no CustomerID
        line(str(900000 + d), codes[d % n_products], 2, start + pd.Timedelta(days=d), np.nan)
    cols = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    return pd.DataFrame(rows, columns=cols)


def test_the_generated_log_has_what_the_recipe_handles():
    df = retail_log()
    assert 300 <= len(df) <= 1000
    assert (df["StockCode"] == "POST").sum() > 10
    assert df["InvoiceNo"].str.startswith("C").sum() > 5
    assert (df["Quantity"] < 0).sum() == df["InvoiceNo"].str.startswith("C").sum()
    assert df["CustomerID"].isna().sum() > 10
    buys = df[(df["Quantity"] > 0) & df["CustomerID"].notna() & (df["StockCode"] != "POST")]
    assert buys.duplicated(["CustomerID", "StockCode"]).mean() > 0.5  # mostly repeat purchases


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("curl") is None, reason="needs bash and curl")
def test_the_tutorial_script_runs_end_to_end(tmp_path: Path):
    data = tmp_path / "online-retail" / "online_retail.csv.xz"
    data.parent.mkdir()
    with lzma.open(data, "wt") as f:
        retail_log().to_csv(f, index=False)
    work = tmp_path / "work"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHON": sys.executable,
        "CHRONOREC_BIN": f"{sys.executable} -m chronorec",
        "CUTOFF": "2011-06-21",
        "VALIDATION_CUTOFF": "2011-06-01",
        "CUSTOMER": CUSTOMER,
        "THREADS": "1",
        "SASREC_EPOCHS": "1",
        "SASREC_DIM": "16",
        "BEHAVIOR_CUTOFFS": "4",
        "FORECAST_TOP": "3",
        "FORECAST_ORIGINS": "2",
        "OMP_NUM_THREADS": "1",
        "COLUMNS": "200",
    }
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), str(data), str(work)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a timeout ends the script and every command it started
    )
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    assert proc.returncode == 0, out[-4000:] + err[-4000:]

    # 1. ingest: postage is not a product, cancellations and guests are accounted for by name
    report = json.loads((work / "data/retail/ingest_report.json").read_text())
    items = set(pd.read_parquet(work / "data/retail/items.parquet")["external_id"].astype(str))
    assert "POST" not in items and len(items) >= 15 and items <= {f"2{i:04d}" for i in range(20)}
    assert report["rules_removed"]["non-product code"] > 10
    assert report["rules_removed"]["cancellation"] > 5 and report["rules_removed"]["no customer"] > 10
    assert "Check: " in out and ": OK" in out

    # 2-4. the temporal split, the models and the repeat-aware evaluation
    for model in ("popular", "buyagain", "sasrec", "blend-ease"):
        assert (work / "models" / model / "config.json").is_file(), model
    ev = json.loads((work / "results/evaluate.json").read_text())
    assert ev["history_protocol"]["mode"] == "auto" and ev["history_protocol"]["used"] == "included"
    assert ev["repeat"]["repeat_share"] > 0.3
    assert set(ev["results"]) == {"buyagain", "popular", "sasrec", "blend-ease"}
    # the planted repeats: buy-again beats popularity
    assert ev["results"]["buyagain"]["test"]["NDCG@10"] > ev["results"]["popular"]["test"]["NDCG@10"]

    # 5. recommendations for one customer, with names
    recs = pd.read_csv(work / "results/recs.csv", dtype={"user_id": str, "item_id": str})
    assert len(recs) == 5 and set(recs["user_id"]) == {CUSTOMER}
    assert "POST" not in set(recs["item_id"]) and recs["item_name"].str.startswith("PRODUCT").all()

    # 6. predict-behavior: a saved model and per-user probabilities
    assert (work / "models/buy7d").is_dir()
    pred = pd.read_csv(work / "runs/behavior/predictions.csv")
    assert len(pred) == 16 and pred["probability"].between(0, 1).all()

    # 7. the service answered /health, /recommend and /predict-behavior
    assert json.loads((work / "results/health.json").read_text())["status"] == "ok"
    served = json.loads((work / "results/serve-recommend.json").read_text())
    assert len(served["items"]) == 3
    # served from the refit on every event: the customer's whole history, not the split's
    from chronorec import load

    split_model, full = load(work / "models/sasrec"), load(work / "models/sasrec-full")
    length = {m: len(m.store.user_items(int(m.users.to_internal([int(CUSTOMER)])[0]))) for m in (split_model, full)}
    assert served["history_length"] == length[full] > length[split_model]
    assert full.config.epochs == split_model.fit_info["best_epoch"]
    behaviour = json.loads((work / "results/serve-behavior.json").read_text())
    assert "99999" in [str(u) for u in behaviour["unknown_users"]]
    assert [p["user_id"] for p in behaviour["predictions"]] == [CUSTOMER]
    assert 0 <= behaviour["predictions"][0]["probability"] <= 1

    # 8. the forecast: the horizon's rows per series, ordered intervals, no negative counts, a plot
    for table in ("forecast.csv", "total_forecast.csv"):
        fc = pd.read_csv(work / "runs/forecast" / table)
        assert (fc.groupby("series_id").size() == 14).all(), table
        assert (fc["lo-95"] <= fc["lo-80"]).all() and (fc["lo-80"] <= fc["mean"]).all()
        assert (fc["mean"] <= fc["hi-80"]).all() and (fc["hi-80"] <= fc["hi-95"]).all()
        assert (fc[["mean", "lo-80", "lo-95"]] >= 0).all().all()
    assert fc["series_id"].eq("__total__").all()
    assert (work / "runs/forecast/forecast.png").stat().st_size > 1000

    timings = {r[0]: r[1:] for r in (line.split("\t") for line in (work / "timings.tsv").read_text().splitlines())}
    assert "total" in timings and "8. forecast 14 days of units sold, with intervals" in timings
    assert all(len(v) == 2 and float(v[0]) >= 0 and float(v[1]) >= 0 for v in timings.values())


def test_a_log_without_behaviours_is_told_how_to_get_one():
    """The retail folder from the bundled recipe has no behaviour column: predict-behavior says how
    to give it one instead of only that it is missing."""
    from chronorec.errors import DataError
    from chronorec.temporal.behavior.data import make_behavior_data

    events = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5], "timestamp": [0, 86400, 172800]})
    with pytest.raises(DataError, match="default_behavior: buy"):
        make_behavior_data(events)
