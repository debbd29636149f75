"""Behaviour prediction: the time of ``predict-behavior --save`` and what the Taobao data can support.

    python benchmarks/behavior_prediction.py speed  [--users 1000] [--repeats 3] [--before-rev REV]
    python benchmarks/behavior_prediction.py taobao [--sizes 100,200,400,928] [--draws 3]
    python benchmarks/behavior_prediction.py rees46
    python benchmarks/behavior_prediction.py replot   # the learning-curve plot again, from its JSON

``speed``: ``chronorec predict-behavior --save`` (target task) with gradient boosting and with logistic
regression on the planted synthetic e-commerce log (:func:`chronorec.datasets.synthetic.make_ecommerce_log`,
91 days), each a fresh process with one thread, alternating, ``--repeats`` times; the median wall
time of each and their ratio in the same run. With ``--before-rev`` the same command once each from
the package as it was at that git revision (``git archive``), on ``--before-users`` users.

``taobao``: P(buy within 24 h) on the 928 complete Taobao users (``$CHRONOREC_DATA`` or ``--data-dir``),
the protocol of docs/benchmarks/temporal.md (the last three days rolling, Beijing midnight, each
model refitted on the cut-offs before its day with the day ahead as validation, regularisation
and training cut-offs chosen on validation, test days scored once): ROC-AUC of logistic regression
and gradient boosting, and their difference to the user's past purchase rate with a user-clustered
paired bootstrap (95% CI), for random subsets of users of each size (``--draws`` subsets each,
every subset's users in train, validation and test alike). Writes the learning curve (JSON + plot).

``rees46``: the REES46 3-hour window (view / cart / purchase) with every length left to the data:
the scale it chose and the test figures, to show the command runs at minute scale.

Each writes ``behavior_prediction_<part>.json`` (the command, the data, the machine, every figure)
into ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _machine() -> dict[str, Any]:
    import sklearn

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sklearn": sklearn.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def _save_run(src: str, data: Path, kind: str, work: Path) -> tuple[float, str]:
    """One ``predict-behavior --save`` in a fresh process: wall seconds and its last output line."""
    cmd = [sys.executable, "-m", "chronorec", "predict-behavior", "--data", str(data), "--tasks", "target"]
    cmd += ["--models", kind, "--threads", "1", "--save", str(work / f"model_{kind}"), "--out", str(work / "out")]
    env = {**os.environ, **ENV, "PYTHONPATH": src}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {res.stdout[-500:]} {res.stderr[-2000:]}")
    return wall, res.stdout.strip().splitlines()[-1]


def _auc(line: str) -> float | None:
    m = re.search(r"ROC-AUC ([0-9.]+)", line)
    return float(m.group(1)) if m else None


def _synthetic_csv(n_users: int, work: Path) -> Path:
    from chronorec.datasets.synthetic import make_ecommerce_log

    path = work / f"synthetic_{n_users}.csv"
    make_ecommerce_log(n_users=n_users, seed=0, return_frame=True).to_csv(path, index=False)
    return path


def speed(args: argparse.Namespace) -> dict[str, Any]:
    """Median wall time of ``--save`` with gbm and logistic, alternating, and their ratio."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    work = Path(tempfile.mkdtemp(prefix="behavior_speed_"))
    data = _synthetic_csv(args.users, work)
    runs: dict[str, list[dict[str, Any]]] = {"logistic": [], "gbm": []}
    for r in range(args.repeats):
        for kind in ("logistic", "gbm") if r % 2 == 0 else ("gbm", "logistic"):
            wall, line = _save_run(src, data, kind, work)
            runs[kind].append({"seconds": wall, "test_roc_auc": _auc(line), "output": line})
            print(f"{kind} run {r + 1}: {wall:.1f}s  {line[:120]}", flush=True)
    med = {k: statistics.median(x["seconds"] for x in v) for k, v in runs.items()}
    out: dict[str, Any] = {
        "protocol": f"chronorec predict-behavior --data synthetic_{args.users}.csv --tasks target --models KIND "
        "--threads 1 --save DIR, each a fresh process (OMP_NUM_THREADS=1), gbm and logistic alternating",
        "data": f"make_ecommerce_log(n_users={args.users}, seed=0): 91 days, view / cart / buy",
        "runs": runs,
        "median_seconds": med,
        "ratio_gbm_to_logistic": med["gbm"] / med["logistic"],
        "bar": "gbm within 10x logistic",
        "met": med["gbm"] <= 10 * med["logistic"],
    }
    if args.before_rev:
        out["before"] = _before(args.before_rev, args.before_users, work, src)
    return out


def _before(rev: str, n_users: int, work: Path, src_now: str) -> dict[str, Any]:
    """The same command once each from the package at ``rev`` and now, on ``n_users`` users."""
    old = work / "before"
    old.mkdir()
    root = Path(__file__).resolve().parents[1]
    tar = subprocess.run(["git", "-C", str(root), "archive", rev, "src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=tar, check=True)
    data = _synthetic_csv(n_users, work)
    res: dict[str, Any] = {"revision": rev, "users": n_users}
    for label, src in (("before", str(old / "src")), ("after", src_now)):
        for kind in ("logistic", "gbm"):
            wall, line = _save_run(src, data, kind, work)
            res[f"{label}_{kind}"] = {"seconds": wall, "test_roc_auc": _auc(line)}
            print(f"{label} {kind} ({n_users} users): {wall:.1f}s", flush=True)
    return res


# ----------------------------------------------------------------------------- Taobao learning curve
def _taobao_once(events: Any, users: np.ndarray, seed: int, models: list[str]) -> dict[str, Any]:
    from chronorec.data import columns as C
    from chronorec.temporal.behavior import predict_behavior

    sub = events[events[C.USER].isin(users)]
    res = predict_behavior(
        sub,
        tasks=["target"],
        target="buy",
        test_cutoffs=3,
        utc_offset_hours=8.0,
        models=models,
        threads=1,
        seed=seed,
        progress=False,
    )
    r = res["tasks"]["target"]
    row: dict[str, Any] = {
        "users": len(users),
        "test_cases": res["data"]["cases"]["test"],
        "positive_rate_test": res["data"]["positive_rate"]["test"],
        "past_rate_roc_auc": r["past_rate"]["test_mean_over_folds"]["roc_auc"],
    }
    for m in models:
        vs = r[m]["vs_past_rate"]["roc_auc"]
        row[m] = {
            "roc_auc": r[m]["test_mean_over_folds"]["roc_auc"],
            "validation_roc_auc": r[m]["validation"]["roc_auc"],
            "gain": vs["difference"],
            "ci": [vs["ci_low"], vs["ci_high"]],
            "p": vs.get("p_value"),
        }
    return row


def taobao(args: argparse.Namespace) -> dict[str, Any]:
    """The learning curve: ROC-AUC gain over the past rate against the number of users."""
    from chronorec.data import columns as C
    from chronorec.datasets.temporal import load_taobao

    events = load_taobao(args.data_dir)
    all_users = np.array(sorted(events[C.USER].unique()))
    sizes = [int(s) for s in args.sizes.split(",")]
    models = args.models.split(",")
    rows = []
    for n in sizes:
        draws = 1 if n >= len(all_users) else args.draws
        for d in range(draws):
            rng = np.random.default_rng(1000 * n + d)
            users = all_users if n >= len(all_users) else rng.choice(all_users, n, replace=False)
            t0 = time.perf_counter()
            row = _taobao_once(events, users, seed=d, models=models) | {"draw": d}
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            gains = ", ".join(
                f"{m} {row[m]['gain']:+.3f} [{row[m]['ci'][0]:+.3f}, {row[m]['ci'][1]:+.3f}]" for m in models
            )
            print(
                f"{n} users draw {d}: past rate {row['past_rate_roc_auc']:.3f}; {gains} ({row['seconds']:.0f}s)",
                flush=True,
            )
    out = {
        "protocol": "P(buy within 24 h), 3 rolling test days (2017-11-30..12-02, Beijing midnight), refitted per "
        "day on the 6-hourly cut-offs before it, the day ahead as validation (choice of regularisation and "
        "training cut-offs); ROC-AUC mean over the 3 days; gain = model - past purchase rate, user-clustered "
        "paired bootstrap, 95% CI, strata = test day",
        "data": "Taobao UserBehavior, the 928 complete users (load_taobao), random user subsets",
        "models": models,
        "rows": rows,
        "bar": "ROC-AUC >= past rate + 0.05 with a CI above zero",
    }
    _plot_curve(rows, models, Path(args.out) / "behavior_prediction_taobao_learning_curve.png")
    return out


def _plot_curve(rows: list[dict[str, Any]], models: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, m in enumerate(models):
        xs = np.array([r["users"] for r in rows]) * (1 + 0.02 * (i - 0.5))
        g = np.array([r[m]["gain"] for r in rows])
        lo = g - np.array([r[m]["ci"][0] for r in rows])
        hi = np.array([r[m]["ci"][1] for r in rows]) - g
        c = f"C{i}"
        ax.errorbar(xs, g, yerr=[lo, hi], fmt="o", color=c, capsize=3, alpha=0.8, label=f"{m} (each draw, 95% CI)")
        sizes = sorted({r["users"] for r in rows})
        mean = [np.mean([r[m]["gain"] for r in rows if r["users"] == s]) for s in sizes]
        ax.plot(sizes, mean, "-", color=c, alpha=0.6, label=f"{m}: mean over draws")
    ax.axhline(0, color="k", lw=0.8)
    ax.axhline(0.05, color="r", ls="--", lw=0.8, label="bar: +0.05")
    ax.set_xscale("log")
    ax.set_xlabel("Taobao users (random subsets; 3 test days each)")
    ax.set_ylabel("ROC-AUC minus past purchase rate")
    ax.set_title("P(buy within 24 h) on Taobao: what more users buy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- REES46 at minute scale
def rees46(args: argparse.Namespace) -> dict[str, Any]:
    """``predict-behavior --target purchase`` on REES46's 3 hours with every length left to the data."""
    import pandas as pd

    from chronorec.datasets.formats import data_dir
    from chronorec.temporal.behavior import predict_behavior

    raw = pd.read_csv(data_dir(args.data_dir) / "rees46-multicategory" / "2019-Oct_head.csv")
    ev = pd.DataFrame(
        {
            "user_id": raw["user_id"],
            "item_id": raw["product_id"],
            "timestamp": pd.to_datetime(raw["event_time"]).astype("int64") // 10**9,
            "behavior": raw["event_type"],
        }
    )
    t0 = time.perf_counter()
    res = predict_behavior(
        ev, tasks=["target"], target="purchase", models=["logistic", "gbm"], threads=1, progress=False
    )
    r = res["tasks"]["target"]
    return {
        "protocol": "predict_behavior(target='purchase', tasks=['target']) with no length given: one test cut-off",
        "data": "REES46 2019-Oct_head.csv: 17,434 events, 4,504 users, 00:00-02:50 UTC",
        "time_scale": res["data"]["time_scale"],
        "cases": res["data"]["cases"],
        "positive_rate": res["data"]["positive_rate"],
        "test": {m: {k: r[m]["test"][k] for k in ("roc_auc", "pr_auc", "brier")} for m in r},
        "vs_past_rate": {m: r[m]["vs_past_rate"]["roc_auc"] for m in r if "vs_past_rate" in r[m]},
        "seconds": time.perf_counter() - t0,
    }


def replot(args: argparse.Namespace) -> int:
    """Draw the learning curve again from ``behavior_prediction_taobao.json`` (no fitting)."""
    d = json.loads((Path(args.out) / "behavior_prediction_taobao.json").read_text())
    _plot_curve(d["rows"], d["models"], Path(args.out) / "behavior_prediction_taobao_learning_curve.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["speed", "taobao", "rees46", "replot"])
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--data-dir", default=None, help="benchmark data folder (default $CHRONOREC_DATA)")
    ap.add_argument("--users", type=int, default=1000, help="speed: synthetic users")
    ap.add_argument("--repeats", type=int, default=3, help="speed: runs of each model")
    ap.add_argument("--before-rev", default=None, help="speed: also time the package at this git revision")
    ap.add_argument("--before-users", type=int, default=300, help="speed: users of the before/after runs")
    ap.add_argument("--sizes", default="100,200,400,928", help="taobao: numbers of users")
    ap.add_argument("--draws", type=int, default=3, help="taobao: random subsets per size below all users")
    ap.add_argument("--models", default="logistic,gbm", help="taobao: feature models")
    args = ap.parse_args(argv)
    if args.part == "replot":
        return replot(args)
    t0 = time.perf_counter()
    result = {"speed": speed, "taobao": taobao, "rees46": rees46}[args.part](args)
    payload = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
        "machine": _machine(),
        "wall_seconds": time.perf_counter() - t0,
        **result,
    }
    path = Path(args.out) / f"behavior_prediction_{args.part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=float))
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
