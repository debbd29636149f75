"""Temporal-behaviour benchmark on the real data: features, behaviour prediction, forecasting.

    python benchmarks/temporal.py [--data-dir DIR] [--out benchmarks/results] [--quick] [--predictions]

Writes ``temporal.json`` and ``temporal.md`` (every figure, wall time and peak memory per part,
the command, the data and the machine) plus the plots into ``--out``.

Parts:
1. feature extraction over the full Taobao log (928 users): users / items / categories, day and hour;
2. behaviour prediction on Taobao (buy within 24 h; next event type), split by time;
3. forecasting by rolling origin: Online Retail daily net revenue per country and per product and
   daily net units per product (cancellations netted), Taobao hourly events per category, ML-100K
   daily ratings per item and in total.

With ``--predictions`` only the prediction parts run (``temporal_predictions.json`` / ``.md``):
held-out coverage of the 14-day forecast intervals on the Online Retail daily series (every
origin a week apart that leaves 8 calibration origins and two seasons before it), the forecasts
themselves, and the saved behaviour model on Taobao (fit, Platt / isotonic calibration on the day
before each of the last three test days, Brier, ECE and the reliability table pooled over them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _part(name: str, fn, results: dict[str, Any]) -> None:
    from chronorec.workflows.experiment import peak_rss_mb

    print(f"== {name}", flush=True)
    t0 = time.perf_counter()
    out = fn()
    results[name] = {"result": out, "wall_seconds": time.perf_counter() - t0, "peak_rss_mb_so_far": peak_rss_mb()}
    print(f"   {name}: {results[name]['wall_seconds']:.1f}s, peak RSS {results[name]['peak_rss_mb_so_far']:.0f} MB")


def run(data_dir: str | None, out: Path, quick: bool, threads: int, only: str | None = None) -> dict[str, Any]:  # noqa: C901, PLR0915
    """Every part (or ``only`` one of features / behavior / forecast, keeping the other parts' figures)."""
    import torch

    from chronorec.datasets.formats import data_dir as resolve
    from chronorec.datasets.temporal import load_taobao, load_temporal_dataset, utc_offset_hours
    from chronorec.temporal.behavior import SequenceClassifierConfig, predict_behavior
    from chronorec.temporal.features import activity_series, feature_table
    from chronorec.temporal.forecast.core import plot_forecasts, rolling_origin, to_matrix
    from chronorec.temporal.forecast.data import events_series, online_retail_series
    from chronorec.workflows.experiment import provenance

    torch.set_num_threads(threads)
    ddir = resolve(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if only and (out / "temporal.json").exists():
        results = json.loads((out / "temporal.json").read_text())["parts"]
    payload = {
        "provenance": provenance(
            data_dir=str(ddir),
            data={
                "taobao": "taobao-userbehavior/UserBehavior_first814users.csv + UserBehavior_114users.csv "
                "(928 users; 2017-11-25..2017-12-03 Beijing time, outlier timestamps dropped)",
                "online_retail": "online-retail/online_retail.csv.xz (net of cancellations; unit price > 0; "
                "non-product stock codes dropped)",
                "ml100k": "ml-100k/u.data",
            },
            quick=quick,
            threads=threads,
        ),
        "parts": results,
    }

    def save() -> None:
        """Write what is done so far: an interrupted run still leaves its finished parts."""
        (out / "temporal.json").write_text(json.dumps(payload, indent=2, default=_json))
        (out / "temporal.md").write_text(markdown(payload))

    taobao = load_taobao(ddir)
    tz = utc_offset_hours("taobao")

    def features():
        rows = {}
        t0 = time.perf_counter()
        for entity in ("user_id", "item_id", "category"):
            for freq in ("day", "hour"):
                t1 = time.perf_counter()
                if freq == "hour" and entity == "item_id":
                    continue  # 55k items x 216 hours x 216 cut-offs: not a useful table
                ft = feature_table(taobao, entity=entity, freq=freq, utc_offset_hours=tz)
                rows[f"{entity}/{freq}"] = {
                    "rows": len(ft),
                    "columns": ft.shape[1],
                    "seconds": time.perf_counter() - t1,
                }
        t1 = time.perf_counter()
        s = activity_series(taobao, freq="hour", utc_offset_hours=tz)
        rows["series user/hour"] = {"rows": len(s), "seconds": time.perf_counter() - t1}
        return {
            "events": len(taobao),
            "users": int(taobao["user_id"].nunique()),
            "tables": rows,
            "total_seconds": time.perf_counter() - t0,
        }

    if only in (None, "features"):
        _part("features_taobao", features, results)
        save()

    def behaviour():
        cfg = SequenceClassifierConfig(epochs=8 if quick else 30)
        seq = ("gru", "lstm", "transformer")
        res = predict_behavior(
            taobao,
            utc_offset_hours=tz,
            test_cutoffs=1 if quick else 3,
            models=("logistic", "gbm", *seq, *(f"{m}+features" for m in seq))
            if not quick
            else ("logistic", "gbm", "gru", "gru+features"),
            seq_config=cfg,
            threads=threads,
            out_dir=out / "temporal_behavior",
            progress=True,
        )
        return res

    if only in (None, "behavior"):
        _part("behavior_taobao", behaviour, results)
        save()
    if only not in (None, "forecast"):
        return payload

    ladder = ("naive", "seasonal_naive", "moving_average", "ets", "theta", "croston_sba", "tsb", "adida")
    ladder += ("gbm", "lstm", "gru", "transformer")
    rnn = {"epochs": 10 if quick else 40}
    fparams = {"lstm": rnn, "gru": rnn, "transformer": rnn}

    def forecast(name: str, s, h: int, n_origins: int, models=ladder):
        sm = to_matrix(s)
        ev = rolling_origin(sm, h=h, n_origins=n_origins, models=models, params=fparams, threads=threads, progress=True)
        plot_forecasts(sm, ev, out / f"temporal_forecast_{name}.png", n_series=3)
        return {k: v for k, v in ev.items() if k not in ("forecasts", "actual")}

    top = 20 if quick else 100
    sets = {
        "retail_country_revenue_daily": (lambda: online_retail_series(data_dir=ddir, by="country", top=10), 7, 8),
        "retail_product_revenue_daily": (lambda: online_retail_series(data_dir=ddir, by="product", top=top), 7, 8),
        "retail_product_units_daily": (
            lambda: online_retail_series(data_dir=ddir, by="product", measure="units", top=top),
            7,
            8,
        ),
        "taobao_category_hourly": (
            lambda: events_series(taobao, entity="category", freq="hour", top=30, utc_offset_hours=tz),
            24,
            3,
        ),
        "ml100k_item_daily": (
            lambda: events_series(load_temporal_dataset("ml-100k", data_dir=ddir), entity="item_id", top=30),
            7,
            8,
        ),
    }
    for name, (make, h, n_origins) in sets.items():
        _part(f"forecast_{name}", lambda make=make, h=h, n=n_origins, name=name: forecast(name, make(), h, n), results)
        save()
    return payload


def _json(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def markdown(payload: dict[str, Any]) -> str:
    """The Markdown report."""
    p = payload["parts"]
    prov = payload["provenance"]
    lines = [
        "# Temporal behaviour benchmark",
        "",
        f"Command: `{prov['command']}`  ",
        f"Commit: {prov['git_commit']}, chronorec {prov['chronorec_version']}, {prov['started_at']}  ",
        f"Machine: {prov['machine']['platform']}, {prov['machine']['cpu_count']} cores, torch threads {prov['threads']}  ",
        f"Data: {prov['data_dir']}",
        "",
        "## 1. Feature extraction (Taobao, 928 users)",
        "",
        "| table | rows | columns | seconds |",
        "|---|---|---|---|",
    ]
    if "features_taobao" not in p:
        return "\n".join(lines) + "\n(not run yet)\n"
    f = p["features_taobao"]["result"]
    for k, v in f["tables"].items():
        lines.append(f"| {k} | {v['rows']:,} | {v.get('columns', '')} | {v['seconds']:.2f} |")
    lines += [
        "",
        f"Total {f['total_seconds']:.2f} s for {f['events']:,} events (wall {p['features_taobao']['wall_seconds']:.1f} s).",
        "",
    ]
    if "behavior_taobao" not in p:
        return "\n".join(lines) + "\n(the later parts have not finished)\n"
    b = p["behavior_taobao"]["result"]
    d = b["data"]
    folds = d.get("folds", [d["cutoffs"]])
    lines += [
        "## 2. Behaviour prediction (Taobao, split by time)",
        "",
        f"{len(folds)} rolling test cut-off(s), each model refitted per fold on the cut-offs before it: "
        + "; ".join(f"test {f['test'][0]} (validation {f['validation'][0]}, {len(f['train'])} training)" for f in folds)
        + f". {d['n_features']} features; horizon {d['horizon_hours']:g} h; cases {d['cases']}; "
        f"positive rate { ({k: round(v, 3) for k, v in d['positive_rate'].items()}) }.",
        "",
        f"### (a) `{d['target']}` within the horizon",
        "",
        "ROC-AUC and PR-AUC: the mean over the test cut-offs, then pooled over them. Difference: the fold-mean "
        "ROC-AUC minus the past rate's, with a user-clustered 95 % bootstrap interval and p-value.",
        "",
        "| model | ROC-AUC | PR-AUC | pooled ROC-AUC | pooled PR-AUC | Brier | vs past rate: ROC-AUC diff [95% CI], p | "
        "per-fold ROC-AUC | val ROC-AUC | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in b["tasks"].get("target", {}).items():
        t, v = r["test"], r["validation"]
        mean = r.get("test_mean_over_folds", t)
        cmp = r.get("vs_past_rate", {}).get("roc_auc")
        diff = (
            f"{cmp['difference']:+.4f} [{cmp['ci_low']:+.4f}, {cmp['ci_high']:+.4f}], {cmp['p_value']:.3f}"
            if cmp
            else ""
        )
        per = ", ".join(f"{f['roc_auc']:.3f}" for f in r.get("folds", []))
        lines.append(
            f"| {n} | {mean['roc_auc']:.4f} | {mean['pr_auc']:.4f} | {t['roc_auc']:.4f} | {t['pr_auc']:.4f} | "
            f"{t['brier']:.4f} | {diff} | {per} | {v['roc_auc']:.4f} | {r.get('fit_seconds', 0):.1f} |"
        )
    lines += [
        "",
        "### (b) type of the next event (pooled over the test cut-offs)",
        "",
        "| model | accuracy | macro-F1 | macro ROC-AUC | macro PR-AUC | Brier | log loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in b["tasks"].get("next_type", {}).items():
        t = r["test"]
        lines.append(
            f"| {n} | {t['accuracy']:.4f} | {t['macro_f1']:.4f} | {t['macro_roc_auc']:.4f} | {t['macro_pr_auc']:.4f} | "
            f"{t['brier']:.4f} | {t['log_loss']:.4f} |"
        )
    lines += [
        "",
        "Confusion matrices and per-class figures are in temporal.json; calibration plots in temporal_behavior/.",
        "",
    ]
    lines += ["## 3. Forecasting (rolling origin; MASE scaled by the in-sample seasonal-naive error)", ""]
    for k, v in p.items():
        if not k.startswith("forecast_"):
            continue
        r = v["result"]
        sn = r["results"].get("seasonal_naive", {}).get("MASE", float("nan"))
        lines += [
            f"### {k[len('forecast_') :]}",
            "",
            f"{r['n_series']} series x {r['n_periods']} periods, season {r['season']}, h = {r['h']}, "
            f"{len(r['origins'])} origins from {r['origins'][0]} (training window {r['train_periods']} periods); "
            f"wall {v['wall_seconds']:.1f} s.",
            "",
            "| model | MASE | MASE / seasonal naive | median MASE | sMAPE | MAE | RMSE | seconds |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n, m in r["results"].items():
            lines.append(
                f"| {n} | {m['MASE']:.3f} | {m['MASE'] / sn:.3f} | {m['MASE_median']:.3f} | {m['sMAPE']:.1f} | "
                f"{m['MAE']:.3f} | {m['RMSE']:.3f} | {m['total_seconds']:.1f} |"
            )
        lines.append("")
    peak = max(v["peak_rss_mb_so_far"] for v in p.values())
    total = sum(v["wall_seconds"] for v in p.values())
    lines += [f"Total wall time {total:.0f} s; peak resident memory {peak:.0f} MB.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- predictions (--predictions)
CAL_KINDS = ("platt", "isotonic", "none")


def forecast_intervals(ddir: Path, out: Path, quick: bool) -> dict[str, Any]:
    """Held-out coverage of the 14-day intervals on the retail daily series, and the forecast itself."""
    from chronorec.temporal.forecast.data import online_retail_series
    from chronorec.temporal.forecast.forecaster import DEFAULT_METHODS, interval_coverage
    from chronorec.temporal.forecast.pipeline import run_forecast, series_matrix

    every = online_retail_series(data_dir=ddir, by="country", top=10_000)
    sets = {
        "retail_total_revenue_daily": every.groupby("period", as_index=False)["y"].sum().assign(series_id="total"),
        "retail_country_revenue_daily": online_retail_series(data_dir=ddir, by="country", top=10),
        "retail_product_units_daily": online_retail_series(
            data_dir=ddir, by="product", measure="units", top=20 if quick else 50
        ),
    }
    res: dict[str, Any] = {}
    for name, s in sets.items():
        t0 = time.perf_counter()
        sm = series_matrix(s, freq="day", h=14, n_origins=8)
        cov = interval_coverage(sm, h=14, step=7, n_calibration=8, levels=(80.0, 90.0, 95.0), select="series")
        with tempfile.TemporaryDirectory() as tmp:  # the table and the forecaster hold the data: not kept
            fc = run_forecast(sm, tmp, h=14, models=DEFAULT_METHODS, n_origins=8, levels=(80.0, 95.0))
            shutil.copy(Path(tmp) / "forecast.png", out / f"temporal_forecast_{name}_future.png")
        ev = fc.pop("evaluation")
        fc["ladder"] = {m: {k: r[k] for k in ("MASE", "MASE_median", "MAE", "sMAPE")} for m, r in ev["results"].items()}
        res[name] = {"coverage": cov, "forecast": fc, "seconds": time.perf_counter() - t0}
        print(f"   {name}: coverage {cov['coverage']} ({len(cov['test_origins'])} origins)", flush=True)
    return res


def behavior_model(taobao: Any, tz: float, out: Path, quick: bool, threads: int) -> dict[str, Any]:
    """Saved-model protocol on Taobao over the last test days: each day's model fitted on the cut-offs
    before its validation day, calibrated on that day, scored on the test day; pooled reliability."""
    from chronorec.evaluation.reliability_curves import calibration_plot
    from chronorec.temporal.behavior.model import fit_behavior_model
    from chronorec.temporal.behavior.portable import calibrate, fit_calibrator

    day = 86400
    last = int(taobao["timestamp"].max()) + 1
    off = int(tz * 3600)
    t_last = (last - day + off) // day * day - off  # the last local midnight with a full day after it
    tests = [t_last - k * day for k in range(1 if quick else 3)][::-1]
    res: dict[str, Any] = {"test_cutoffs": [str(pd.Timestamp(t, unit="s")) + " UTC" for t in tests], "models": {}}
    curves = {}
    for kind in ("gbm", "logistic"):
        ys, probs, days = [], {c: [] for c in CAL_KINDS}, []
        for t in tests:
            m = fit_behavior_model(taobao, model=kind, utc_offset_hours=tz, test_cutoff=t, threads=threads)
            h = m.holdout
            for c in CAL_KINDS:
                probs[c].append(calibrate(fit_calibrator(c, h["score_val"], h["y_val"]), h["score"]))
            ys.append(h["y"])
            days.append(
                {"test_cutoff": m.report["cutoffs"]["test"][0], "params": m.report["params"], "test": m.report["test"]}
            )
            print(f"   {kind} {days[-1]['test_cutoff']}: {m.report['test']}", flush=True)
            if t == tests[-1]:  # the per-user table of the last model, summarised (it is the users' data)
                p = m.predict()["probability"]
                day_res = {"users": len(p), "mean": float(p.mean()), "quantiles": p.quantile([0.1, 0.5, 0.9]).tolist()}
                res.setdefault("predictions_at_end", {})[kind] = day_res
        y = np.concatenate(ys)
        res["models"][kind] = {
            "per_day": days,
            "pooled": {c: _bin_report(y, np.concatenate(probs[c])) for c in CAL_KINDS},
        }
        curves[f"{kind} (Platt)"] = (y, np.concatenate(probs["platt"]))
        curves[f"{kind} (uncalibrated)"] = (y, np.concatenate(probs["none"]))
    calibration_plot(
        curves, out / "temporal_behavior_model_calibration.png", title="Taobao: P(buy within 24 h), test days pooled"
    )
    return res


def _bin_report(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    from chronorec.evaluation.classification import binary_metrics
    from chronorec.evaluation.reliability_curves import expected_calibration_error, reliability_curve

    m = binary_metrics(y, p)
    curve = reliability_curve(p, y, n_bins=10)
    table = curve[curve["count"] > 0]
    return {
        "cases": len(y),
        "positive_rate": float(y.mean()),
        "mean_predicted": float(p.mean()),
        "brier": float(m["brier"]),
        "brier_constant_at_positive_rate": float(y.mean() * (1 - y.mean())),
        "roc_auc": float(m["roc_auc"]),
        "pr_auc": float(m["pr_auc"]),
        "ece": expected_calibration_error(curve),
        "reliability": [
            {
                "bin": f"{r.bin_low:.1f}-{r.bin_high:.1f}",
                "mean_predicted": r.confidence,
                "observed": r.accuracy,
                "count": int(r.count),
            }
            for r in table.itertuples()
        ],
    }


def run_predictions(
    data_dir: str | None, out: Path, quick: bool, threads: int, only: str | None = None
) -> dict[str, Any]:
    from chronorec.datasets.formats import data_dir as resolve
    from chronorec.datasets.temporal import load_taobao, utc_offset_hours
    from chronorec.workflows.experiment import provenance

    ddir = resolve(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    previous = out / "temporal_predictions.json"
    if only and previous.exists():  # rerun one part, keep the other's figures
        results = json.loads(previous.read_text())["parts"]
    payload = {
        "provenance": provenance(
            data_dir=str(ddir),
            data={
                "online_retail": "online-retail/online_retail.csv.xz (daily, net of cancellations; unit price > 0; "
                "non-product stock codes dropped)",
                "taobao": "taobao-userbehavior/UserBehavior_first814users.csv + UserBehavior_114users.csv (928 users)",
            },
            quick=quick,
            threads=threads,
        ),
        "parts": results,
    }

    def save() -> None:
        (out / "temporal_predictions.json").write_text(json.dumps(payload, indent=2, default=_json))
        (out / "temporal_predictions.md").write_text(predictions_markdown(payload))

    if only in (None, "forecast"):
        _part("forecast_intervals_retail", lambda: forecast_intervals(ddir, out, quick), results)
        save()
    if only in (None, "behavior"):
        taobao = load_taobao(ddir)
        tz = utc_offset_hours("taobao")
        _part("behavior_model_taobao", lambda: behavior_model(taobao, tz, out, quick, threads), results)
        save()
    return payload


def predictions_markdown(payload: dict[str, Any]) -> str:
    """The Markdown report of the prediction parts."""
    p, prov = payload["parts"], payload["provenance"]
    lines = [
        "# Temporal predictions: forecast intervals and calibrated behaviour probabilities",
        "",
        f"Command: `{prov['command']}`  ",
        f"Commit: {prov['git_commit']}, {prov['started_at']}; {prov['machine']['cpu_count']} cores  ",
        "(the header is the last run's: a part may come from an earlier run with `--only forecast` or `--only behavior`)",
        "",
    ]
    if "forecast_intervals_retail" in p:
        lines += [
            "## Forecast intervals, held-out coverage (14 days ahead)",
            "",
            "| series | n | test origins | coverage 80% | 90% | 95% | scaled width 80% / 95% | median MASE | "
            "methods chosen (last fit) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in p["forecast_intervals_retail"]["result"].items():
            c, w = r["coverage"], r["coverage"]["scaled_width"]
            cv = c["coverage"]
            lines.append(
                f"| {name} | {c['n_series']} | {len(c['test_origins'])} | {cv['80']:.3f} | {cv['90']:.3f} | {cv['95']:.3f} | "
                f"{w['80']:.2f} / {w['95']:.2f} | {c['point']['MASE_median']:.3f} | {r['forecast']['methods_chosen']} |"
            )
        lines += [
            "",
            "The statistical ladder on the same series (8 origins 14 days apart, the last ending at the end of the "
            "data; MASE, median MASE in brackets):",
            "",
        ]
        res = p["forecast_intervals_retail"]["result"]
        names = list(next(iter(res.values()))["forecast"].get("ladder", {}))
        lines += ["| series | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for name, r in res.items():
            lad = r["forecast"].get("ladder", {})
            cells = [f"{lad[m]['MASE']:.3f} ({lad[m]['MASE_median']:.3f})" if m in lad else "" for m in names]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if "behavior_model_taobao" in p:
        b = p["behavior_model_taobao"]["result"]
        lines += [
            "## Saved behaviour model: P(buy within 24 h), test days pooled",
            "",
            f"Test cut-offs: {', '.join(b['test_cutoffs'])}.",
            "",
            "| model | calibration | cases | Brier | Brier of a constant at the positive rate | ECE | ROC-AUC | PR-AUC | "
            "mean predicted | positive rate |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for kind, r in b["models"].items():
            for cal, m in r["pooled"].items():
                lines.append(
                    f"| {kind} | {cal} | {m['cases']} | {m['brier']:.4f} | {m['positive_rate'] * (1 - m['positive_rate']):.4f} | "
                    f"{m['ece']:.4f} | {m['roc_auc']:.4f} | "
                    f"{m['pr_auc']:.4f} | {m['mean_predicted']:.3f} | {m['positive_rate']:.3f} |"
                )
        for kind in b["models"]:
            lines += [
                "",
                f"Reliability ({kind}, Platt):",
                "",
                "| bin | mean predicted | observed | count |",
                "|---|---|---|---|",
            ]
            for row in b["models"][kind]["pooled"]["platt"]["reliability"]:
                lines.append(f"| {row['bin']} | {row['mean_predicted']:.3f} | {row['observed']:.3f} | {row['count']} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="benchmark data folder (default $CHRONOREC_DATA / ../shared/data)")
    ap.add_argument("--out", default="benchmarks/results", help="output folder for temporal.json / temporal.md")
    ap.add_argument("--quick", action="store_true", help="fewer epochs and series (a few minutes)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads")
    ap.add_argument(
        "--predictions",
        action="store_true",
        help="only the prediction parts (retail forecast intervals, saved Taobao behaviour model): temporal_predictions.json",
    )
    ap.add_argument(
        "--only",
        choices=("features", "forecast", "behavior"),
        help="rerun this part only, keeping the others' figures (--predictions: forecast or behavior)",
    )
    args = ap.parse_args(argv)
    if args.predictions:
        run_predictions(args.data_dir, Path(args.out), args.quick, args.threads, args.only)
    else:
        run(args.data_dir, Path(args.out), args.quick, args.threads, args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
