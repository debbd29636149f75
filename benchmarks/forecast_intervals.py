"""Forecast intervals that hold per series, series that start at each entity's first event, and the
vectorised statsforecast ladder.

    python benchmarks/forecast_intervals.py [--data-dir DIR] [--out benchmarks/results] [--parts intervals,amazon,floor,speed]

Parts (each writes its own JSON into ``--out``, the Markdown summary collects them all):

* ``intervals`` -> ``forecast_intervals.json``: rolling-origin held-out coverage of the 80 / 95 %
  intervals of ``chronorec forecast``'s forecaster on three data sets -- Online Retail's 50
  largest products (daily net units; 6 test origins a week apart, 14 days ahead, 8 calibration
  origins before each), its 200 largest customers (daily units, same protocol) and Taobao's 200
  busiest users (hourly events, Beijing time; 5 test origins 12 hours apart, 24 hours ahead, 6
  calibration origins) -- with two installs (``numpy``: naive and seasonal naive only, what the
  base install runs; ``statsforecast``: the default ladder) and four interval methods at the same
  origins, on the same series and cells: ``pooled`` (the previous calibration: scaled errors pooled
  over series), ``series`` (per-series Mondrian conformal, the default now), and statsforecast's own
  intervals for the same chosen method and history (``sf_model``: the model's own ``level=``
  intervals where it has them -- Naive, SeasonalNaive, AutoETS, AutoTheta -- else its
  ConformalIntervals; ``sf_conformal``: every model with statsforecast's ConformalIntervals,
  ``n_windows`` = the calibration origins). Reported by segment: pooled, cells with a non-zero / a
  zero forecast, median series, volume decile, step; zero-width share; MSIS. Plot
  ``forecast_intervals.png``.
* ``amazon`` -> ``forecast_amazon.json``: Amazon Musical Instruments' 900 items, weekly reviews (the
  ``chronorec features --series`` series), ladder chosen per series at 8 rolling origins (7 weeks
  ahead): series zero-padded from the first week of the log (the old layout) against series
  starting at each item's first review -- the share of items choosing ``naive``, sMAPE / MASE.
* ``floor`` -> ``forecast_floor.json``: the ``series`` intervals with and without the zero-width
  rule (numpy install), its cost in interval score.
* ``speed`` -> ``forecast_speed.json``: the statsforecast ladder at the last origin of those 900
  item series: the previous per-series loop (one statsforecast model object per series, zero-padded
  series, AutoETS with the 52-week season) against ``forecast_matrix`` (one vectorised
  ``StatsForecast.forecast`` call per method, ragged series, processes = cores); median of
  ``--repeats`` timings each, same run, as a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LEVELS = (80.0, 95.0)
NATIVE = {"naive", "seasonal_naive", "ets", "theta"}  # statsforecast models with their own level= intervals


def _data_dir(arg: str | None) -> Path:
    from chronorec.datasets.formats import data_dir

    return Path(arg) if arg else data_dir(os.environ.get("CHRONOREC_DATA"))


# ----------------------------------------------------------------------------- data
def retail(ddir: Path, by: str, top: int) -> Any:
    from chronorec.temporal.forecast.data import online_retail_series
    from chronorec.temporal.forecast.pipeline import series_matrix

    s = online_retail_series(data_dir=ddir, by=by, measure="units", top=top, freq="D")
    return series_matrix(s, freq="day", h=14, n_origins=8)


def taobao_users(ddir: Path, top: int) -> Any:
    from chronorec.datasets.temporal import load_taobao, utc_offset_hours
    from chronorec.temporal.forecast.data import events_series
    from chronorec.temporal.forecast.pipeline import series_matrix

    ev = load_taobao(ddir)
    s = events_series(
        ev, entity="user_id", freq="hour", top=top, utc_offset_hours=utc_offset_hours("taobao"), total=False
    )
    return series_matrix(s, freq="hour", h=24, n_origins=6)


DATASETS = {
    "retail_products_top50_units_daily": (
        lambda d: retail(d, "product", 50),
        {"h": 14, "step": 7, "n_cal": 8, "n_test": 6},
    ),
    "retail_customers_top200_units_daily": (
        lambda d: retail(d, "customer", 200),
        {"h": 14, "step": 7, "n_cal": 8, "n_test": 6},
    ),
    "taobao_users_top200_events_hourly": (
        lambda d: taobao_users(d, 200),
        {"h": 24, "step": 12, "n_cal": 6, "n_test": 5},
    ),
}


# ----------------------------------------------------------------------------- statsforecast's own intervals
def _sf_model(name: str, season: int, conformal: Any | None) -> Any:
    from statsforecast import models as sf

    from chronorec.temporal.forecast.methods import ETS_MAX_SEASON

    kw = {"prediction_intervals": conformal} if conformal is not None else {}
    m = season
    make = {
        "naive": lambda: sf.Naive(**kw),
        "seasonal_naive": lambda: sf.SeasonalNaive(season_length=m, **kw),
        "ets": lambda: sf.AutoETS(season_length=m if m <= ETS_MAX_SEASON else 1, **kw),
        "theta": lambda: sf.AutoTheta(season_length=m, **kw),
        "croston": lambda: sf.CrostonClassic(**kw),
        "croston_sba": lambda: sf.CrostonSBA(**kw),
        "tsb": lambda: sf.TSB(alpha_d=0.1, alpha_p=0.1, **kw),
        "adida": lambda: sf.ADIDA(**kw),
        "imapa": lambda: sf.IMAPA(**kw),
    }
    return make[name]()


def sf_intervals(sm: Any, t: int, h: int, methods: list[str], kind: str, n_windows: int) -> dict[str, np.ndarray]:
    """statsforecast's intervals at origin ``t`` for each series' chosen method (``kind``: ``model``,
    the model's own where it has them, else ConformalIntervals; ``conformal``: ConformalIntervals).
    Series too short for ``n_windows`` conformal windows are NaN."""
    from statsforecast import StatsForecast
    from statsforecast.utils import ConformalIntervals

    from chronorec.temporal.forecast.methods import default_jobs

    S = len(methods)
    out = {"mean": np.full((S, h), np.nan)} | {
        f"{b}-{lv:g}": np.full((S, h), np.nan) for lv in LEVELS for b in ("lo", "hi")
    }
    names = np.asarray(methods)
    for name in sorted(set(methods)):
        conformal = kind == "conformal" or name not in NATIVE
        need = (n_windows + 1) * h + 2 if conformal else 3
        rows, ys = [], []
        for s in np.flatnonzero(names == name):
            y = sm.Y[s, :t]
            y = y[np.isfinite(y)]
            if len(y) >= need:
                rows.append(s)
                ys.append(y)
        if not rows:
            continue
        lens = np.array([len(y) for y in ys])
        df = pd.DataFrame(
            {
                "unique_id": np.repeat(np.arange(len(ys)), lens),
                "ds": np.concatenate([np.arange(n) for n in lens]),
                "y": np.concatenate(ys),
            }
        )
        model = _sf_model(name, sm.season, ConformalIntervals(h=h, n_windows=n_windows) if conformal else None)
        sf = StatsForecast(models=[model], freq=1, n_jobs=default_jobs(len(rows)))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            fc = sf.forecast(df=df, h=h, level=[int(lv) for lv in LEVELS])
        alias = str(model)
        out["mean"][rows] = fc[alias].to_numpy().reshape(len(rows), h)
        for lv in LEVELS:
            for b in ("lo", "hi"):
                out[f"{b}-{lv:g}"][rows] = fc[f"{alias}-{b}-{lv:g}"].to_numpy().reshape(len(rows), h)
    return out


# ----------------------------------------------------------------------------- part: intervals
def _variant_report(
    ar: dict, mask: np.ndarray, scale: np.ndarray, volume: np.ndarray, count: bool, recent: np.ndarray
) -> dict:
    from chronorec.temporal.forecast.intervals import interval_report

    mean = np.where(mask, ar["mean"], np.nan)
    bands = {}
    for lv in LEVELS:
        lo, hi = ar[f"lo-{lv:g}"], ar[f"hi-{lv:g}"]
        bands[lv] = (np.maximum(lo, 0.0) if count else lo, hi)
    if count:
        mean = np.maximum(mean, 0.0)
    return interval_report(ar["actual"], mean, bands, scale, volume, recent=recent)


def intervals_part(ddir: Path, only: list[str] | None) -> dict[str, Any]:
    from chronorec.temporal.forecast.forecaster import DEFAULT_METHODS, interval_coverage, recent_activity, series_scale
    from chronorec.temporal.forecast.methods import NUMPY_METHODS
    from chronorec.temporal.forecast.series import is_count

    out: dict[str, Any] = {}
    for name, (load, p) in DATASETS.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        sm = load(ddir)
        h, step, n_cal, n_test = p["h"], p["step"], p["n_cal"], p["n_test"]
        count = is_count(sm.Y)
        ds: dict[str, Any] = {"n_series": len(sm.ids), "n_periods": int(sm.Y.shape[1]), "season": sm.season, **p}
        for install, methods in (("numpy", NUMPY_METHODS), ("statsforecast", DEFAULT_METHODS)):
            print(f"== {name} / {install}", flush=True)
            cache: dict = {}
            runs, arrays = {}, {}
            for cal, sides in (
                ("pooled", "symmetric"),
                ("series", "count"),
                ("series_symmetric", "symmetric"),
                ("series_signed", "signed"),
            ):
                t1 = time.perf_counter()
                r = interval_coverage(
                    sm,
                    h=h,
                    n_test=n_test,
                    n_calibration=n_cal,
                    step=step,
                    methods=methods,
                    levels=LEVELS,
                    calibration=cal.split("_")[0],
                    sides=sides,
                    cache=cache,
                    arrays=True,
                )
                arrays[cal] = r.pop("arrays")
                r["seconds"] = time.perf_counter() - t1
                runs[cal] = r
            tests = arrays["series"]["test_index"]
            chosen = arrays["series"]["methods"]
            for kind in ("model", "conformal"):
                t1 = time.perf_counter()
                per = [sf_intervals(sm, int(t), h, chosen[j], kind, n_cal) for j, t in enumerate(tests)]
                arrays[f"sf_{kind}"] = {k: np.stack([q[k] for q in per], 1) for k in per[0]} | {
                    "actual": arrays["series"]["actual"]
                }
                runs[f"sf_{kind}"] = {"seconds": time.perf_counter() - t1}
            mask = np.isfinite(arrays["series"]["mean"]) & np.isfinite(arrays["series"]["actual"])
            for k in ("sf_model", "sf_conformal"):
                mask &= np.isfinite(arrays[k]["hi-95"])
            o0 = int(tests[0])
            scale = series_scale(sm.Y[:, :o0], sm.season)
            volume = np.nansum(np.abs(sm.Y[:, :o0]), 1)
            recent = recent_activity(sm.Y, tests, max(sm.season, h))
            res = {}
            for k, ar in arrays.items():
                res[k] = _variant_report(ar, mask, scale, volume, count, recent)
                res[k]["seconds"] = runs[k]["seconds"]
            every = np.isfinite(arrays["series"]["mean"]) & np.isfinite(arrays["series"]["actual"])
            for k in ("pooled", "series"):  # the chosen-method intervals on every cell, not only those compared
                res[f"{k}_all_cells"] = _variant_report(arrays[k], every, scale, volume, count, recent)
            res["point"] = runs["series"]["point"]
            res["methods_chosen"] = {k: int(v) for k, v in pd.Series(np.concatenate(chosen)).value_counts().items()}
            res["compared_cells"] = int(mask.sum())
            res["all_cells"] = int(
                (np.isfinite(arrays["series"]["mean"]) & np.isfinite(arrays["series"]["actual"])).sum()
            )
            ds[install] = res
            _print(name, install, res)
        ds["seconds"] = time.perf_counter() - t0
        out[name] = ds
    return out


def _print(name: str, install: str, res: dict) -> None:
    for k in ("pooled", "series", "sf_model", "sf_conformal"):
        r = res[k]["levels"]

        def f(lv: str, key: str, r: dict = r) -> float:
            return r[lv][key]

        print(
            f"  {k:13s} 80: pooled {f('80', 'pooled'):.3f} nz {f('80', 'nonzero_forecast') or float('nan'):.3f} "
            f"med {f('80', 'series_median'):.3f} zw {f('80', 'zero_width_share'):.3f} MSIS {f('80', 'MSIS'):.2f} | "
            f"95: pooled {f('95', 'pooled'):.3f} nz {f('95', 'nonzero_forecast') or float('nan'):.3f} "
            f"med {f('95', 'series_median'):.3f} MSIS {f('95', 'MSIS'):.2f}",
            flush=True,
        )


def floor_part(ddir: Path) -> dict[str, Any]:
    """The cost of the zero-width rule: ``series`` intervals with and without the floor (the upper
    bound at least a series' smallest recent non-zero value), numpy install, every cell."""
    from chronorec.temporal.forecast.forecaster import interval_coverage
    from chronorec.temporal.forecast.methods import NUMPY_METHODS

    out: dict[str, Any] = {}
    for name, (load, p) in DATASETS.items():
        sm, cache = load(ddir), {}
        for fl in (True, False):
            r = interval_coverage(
                sm,
                h=p["h"],
                n_test=p["n_test"],
                n_calibration=p["n_cal"],
                step=p["step"],
                methods=NUMPY_METHODS,
                cache=cache,
                floor=fl,
            )
            out.setdefault(name, {})[f"floor={fl}"] = r["report"]
            q = r["report"]["levels"]
            print(f"== floor {name} {fl}: MSIS {q['80']['MSIS']:.2f} / {q['95']['MSIS']:.2f}", flush=True)
    return out


# ----------------------------------------------------------------------------- amazon items
def amazon_series(ddir: Path) -> pd.DataFrame:
    """Weekly reviews per item (``activity_series``, what ``chronorec features --entity item --freq week``
    writes into series.parquet)."""
    from chronorec.temporal.features import activity_series

    with zipfile.ZipFile(ddir / "amazon-musical-instruments" / "Musical_Instruments.zip") as z:
        with z.open("Musical_Instruments.json") as f:
            raw = pd.read_json(f, lines=True)
    ev = pd.DataFrame({"user_id": raw["reviewerID"], "item_id": raw["asin"], "timestamp": raw["unixReviewTime"]})
    return activity_series(ev, entity="item_id", freq="week", value_col=None)


def amazon_part(ddir: Path) -> dict[str, Any]:
    from chronorec.temporal.forecast.core import rolling_origin
    from chronorec.temporal.forecast.forecaster import DEFAULT_METHODS, fit_forecaster
    from chronorec.temporal.forecast.pipeline import ladder_cache, series_matrix

    s = amazon_series(ddir)
    out: dict[str, Any] = {"rows_in_series_parquet": len(s)}
    for start in ("grid", "first"):
        t0 = time.perf_counter()
        sm = series_matrix(s, freq="week", h=7, n_origins=8, value="count", start=start)
        ev = rolling_origin(sm, h=7, n_origins=8, models=list(DEFAULT_METHODS))
        fc = fit_forecaster(sm, h=7, methods=DEFAULT_METHODS, n_origins=8, cache=ladder_cache(ev))
        chosen = fc.info["chosen_counts"]
        out[start] = {
            "n_series": len(sm.ids),
            "observed_share": float(np.isfinite(sm.Y).mean()),
            "chosen_counts": chosen,
            "naive_share": chosen.get("naive", 0) / len(sm.ids),
            "chosen": fc.info["chosen"],
            "ladder": {
                k: {m: v[m] for m in ("MASE", "MASE_median", "sMAPE", "MAE", "cells")} for k, v in ev["results"].items()
            },
            "seconds": time.perf_counter() - t0,
        }
        print(f"== amazon {start}: naive {out[start]['naive_share']:.3f} chosen {fc.info['chosen']}", flush=True)
    return out


# ----------------------------------------------------------------------------- speed
def _old_forecast(name: str, Y: np.ndarray, h: int, season: int) -> np.ndarray:
    """The previous forecast_matrix: one statsforecast model object per series, in a loop."""
    from statsforecast import models as sf

    m = season
    make = {
        "ets": lambda: sf.AutoETS(season_length=m),
        "theta": lambda: sf.AutoTheta(season_length=m),
        "croston_sba": sf.CrostonSBA,
        "tsb": lambda: sf.TSB(alpha_d=0.1, alpha_p=0.1),
        "adida": sf.ADIDA,
        "naive": sf.Naive,
        "seasonal_naive": lambda: sf.SeasonalNaive(season_length=m),
    }
    keep = 8 * m if name in ("ets", "theta") else None
    out = np.empty((len(Y), h))
    for s, y in enumerate(Y):
        y = y[-keep:] if keep else y
        if np.ptp(y) == 0:
            out[s] = y[-1]
            continue
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                out[s] = make[name]().forecast(y=y, h=h)["mean"]
        except (ValueError, ZeroDivisionError, np.linalg.LinAlgError, FloatingPointError):
            out[s] = y[-season:][np.arange(h) % season]
    return out


def speed_part(ddir: Path, repeats: int) -> dict[str, Any]:
    from chronorec.temporal.forecast.forecaster import DEFAULT_METHODS
    from chronorec.temporal.forecast.methods import default_jobs, forecast_matrix
    from chronorec.temporal.forecast.pipeline import series_matrix

    s = amazon_series(ddir)
    padded = series_matrix(s, freq="week", h=7, n_origins=8, value="count", start="grid")
    ragged = series_matrix(s, freq="week", h=7, n_origins=8, value="count")
    h, o = 7, padded.Y.shape[1] - 7
    out: dict[str, Any] = {
        "n_series": len(padded.ids),
        "periods": o,
        "season": padded.season,
        "processes": default_jobs(900),
    }
    forecast_matrix("ets", ragged.Y[:5, :o], h, 52, n_jobs=1)  # numba compilation, outside the timings
    _old_forecast("ets", padded.Y[:5, :o], h, 52)
    for name in DEFAULT_METHODS:
        old, new1, new = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _old_forecast(name, padded.Y[:, :o], h, 52)
            old.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            forecast_matrix(name, ragged.Y[:, :o], h, 52, n_jobs=1)
            new1.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            forecast_matrix(name, ragged.Y[:, :o], h, 52)
            new.append(time.perf_counter() - t0)
        out[name] = {
            "old_loop_padded_s": float(np.median(old)),
            "new_vectorised_1_process_s": float(np.median(new1)),
            "new_vectorised_all_processes_s": float(np.median(new)),
            "speedup_1_process": float(np.median(old) / np.median(new1)),
            "speedup_all_processes": float(np.median(old) / np.median(new)),
            "timings": {"old": old, "new_1": new1, "new_all": new},
        }
        print(
            f"== speed {name}: {out[name]['old_loop_padded_s']:.2f}s -> {out[name]['new_vectorised_1_process_s']:.2f}s / {out[name]['new_vectorised_all_processes_s']:.2f}s",
            flush=True,
        )
    tot = {
        k: sum(out[m][k] for m in DEFAULT_METHODS)
        for k in ("old_loop_padded_s", "new_vectorised_1_process_s", "new_vectorised_all_processes_s")
    }
    out["ladder_total"] = tot | {
        "speedup_1_process": tot["old_loop_padded_s"] / tot["new_vectorised_1_process_s"],
        "speedup_all_processes": tot["old_loop_padded_s"] / tot["new_vectorised_all_processes_s"],
    }
    return out


# ----------------------------------------------------------------------------- plot + markdown
def plot(res: dict[str, Any], path: Path) -> None:
    from chronorec.plots import pyplot, save_figure

    names = list(res)
    fig, axes = pyplot().subplots(len(names), 2, figsize=(13, 3.2 * len(names)), squeeze=False)
    segs = [
        ("pooled", "pooled"),
        ("nonzero_forecast", "non-zero fc"),
        ("zero_forecast", "zero fc"),
        ("series_median", "median series"),
    ]
    variants = ["pooled", "series", "sf_model", "sf_conformal"]
    for i, name in enumerate(names):
        for j, install in enumerate(("numpy", "statsforecast")):
            ax = axes[i, j]
            r = res[name][install]
            x = np.arange(len(segs) * 2)
            for v, var in enumerate(variants):
                vals = [r[var]["levels"][lv][s] or np.nan for lv in ("80", "95") for s, _ in segs]
                ax.bar(x + (v - 1.5) * 0.2, vals, 0.2, label=var)
            for lv in (0.8, 0.95):
                ax.axhline(lv, color="k", lw=0.8, ls="--")
                ax.axhspan(lv - 0.05, lv + 0.05, color="grey", alpha=0.08)
            ax.set_xticks(x, [f"{lv}%\n{lab}" for lv in ("80", "95") for _, lab in segs], fontsize=7)
            ax.set_ylim(0, 1.05)
            ax.set_title(f"{name} / {install}", fontsize=9)
    axes[0, 0].legend(fontsize=7, ncol=4, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def markdown(all_res: dict[str, Any]) -> str:
    lines = ["# Forecast intervals by segment", ""]
    iv = all_res.get("intervals", {}).get("result", {})
    for name, ds in iv.items():
        lines += [
            f"## {name}",
            "",
            f"{ds['n_series']} series x {ds['n_periods']} periods; h {ds['h']}, {ds['n_test']} test origins {ds['step']} apart, {ds['n_cal']} calibration origins",
            "",
        ]
        for install in ("numpy", "statsforecast"):
            r = ds[install]
            lines += [
                f"### {install} ({r['compared_cells']} of {r['all_cells']} cells compared; methods {r['methods_chosen']})",
                "",
            ]
            sr = r["series"]
            lines += [
                f"Non-zero forecasts: {sr['nonzero_forecast_share']:.3f} of the cells; of those, actual 0: "
                f"{sr['zero_actual_share_nonzero_forecast'] or 0:.3f}, actual at most 1: "
                f"{sr['at_most_one_share_nonzero_forecast'] or 0:.3f}; the median series' cells are 0 on "
                f"{sr['series_median_zero_actual']:.3f} of them.",
                "",
                "| intervals | level | pooled | non-zero fc | zero fc | median series | zero-width (recent non-zero) | MSIS |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for var in ("pooled", "series", "series_symmetric", "series_signed", "sf_model", "sf_conformal"):
                for lv in ("80", "95"):
                    q = r[var]["levels"][lv]
                    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
                    lines.append(
                        f"| {var} | {lv} | {fmt(q['pooled'])} | {fmt(q['nonzero_forecast'])} | {fmt(q['zero_forecast'])} | "
                        f"{fmt(q['series_median'])} | {fmt(q['zero_width_share'])} ({fmt(q['zero_width_share_recent'])}) | {fmt(q['MSIS'])} |"
                    )
            lines.append("")
            if "series_all_cells" in r:
                lines += [f"On all {r['all_cells']} cells (not only those statsforecast's conformal windows fit):", ""]
                for var in ("pooled", "series"):
                    q = r[f"{var}_all_cells"]["levels"]
                    lines.append(
                        f"- {var}: "
                        + "; ".join(
                            f"{lv}% non-zero fc {q[lv]['nonzero_forecast']:.3f}, median series {q[lv]['series_median']:.3f}, "
                            f"MSIS {q[lv]['MSIS']:.2f}"
                            for lv in ("80", "95")
                        )
                    )
                lines.append("")
    return "\n".join(lines + _md_rest(all_res)) + "\n"


def _md_rest(all_res: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "amazon" in all_res:
        a = all_res["amazon"]["result"]
        lines += [
            "## Amazon Musical Instruments items, weekly",
            "",
            "| series start | naive share | chosen sMAPE | chosen MASE |",
            "|---|---|---|---|",
        ]
        for k in ("grid", "first"):
            lines.append(
                f"| {k} | {a[k]['naive_share']:.3f} | {a[k]['chosen']['sMAPE']:.1f} | {a[k]['chosen']['MASE']:.3f} |"
            )
        lines.append("")
    if "floor" in all_res:
        fl = all_res["floor"]["result"]
        lines += [
            "## The zero-width rule's cost (numpy install, every cell)",
            "",
            "| data set | floor | 80% non-zero fc | 80% median series | zero-width (recent) 80% | MSIS 80% | MSIS 95% |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, v in fl.items():
            for k, r in v.items():
                q = r["levels"]
                lines.append(
                    f"| {name} | {k.split('=')[1]} | {q['80']['nonzero_forecast']:.3f} | {q['80']['series_median']:.3f} | "
                    f"{q['80']['zero_width_share_recent']:.3f} | {q['80']['MSIS']:.2f} | {q['95']['MSIS']:.2f} |"
                )
        lines.append("")
    if "speed" in all_res:
        sp = all_res["speed"]["result"]
        lines += [
            "## Ladder speed, 900 item series, one origin",
            "",
            "| method | old loop (s) | vectorised, 1 process (s) | vectorised, all processes (s) | ratio, all |",
            "|---|---|---|---|---|",
        ]
        for k, v in sp.items():
            if isinstance(v, dict) and "speedup_1_process" in v:
                lines.append(
                    f"| {k} | {v['old_loop_padded_s']:.2f} | {v['new_vectorised_1_process_s']:.2f} | {v['new_vectorised_all_processes_s']:.2f} | {v['speedup_all_processes']:.1f}x |"
                )
    return lines


def main() -> None:
    from chronorec.workflows.experiment import provenance

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--parts", default="intervals,amazon,floor,speed")
    ap.add_argument("--datasets", default=None, help="comma-separated subset of the interval data sets")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    ddir, out = _data_dir(a.data_dir), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "intervals": "forecast_intervals.json",
        "amazon": "forecast_amazon.json",
        "speed": "forecast_speed.json",
        "floor": "forecast_floor.json",
    }
    for part in a.parts.split(","):
        t0 = time.perf_counter()
        if part == "intervals":
            res = intervals_part(ddir, a.datasets.split(",") if a.datasets else None)
            prev = out / files[part]
            if a.datasets and prev.exists():  # keep the data sets not rerun
                res = json.loads(prev.read_text())["result"] | res
            plot(res, out / "forecast_intervals.png")
        elif part == "amazon":
            res = amazon_part(ddir)
        elif part == "floor":
            res = floor_part(ddir)
        else:
            res = speed_part(ddir, a.repeats)
        doc = {"provenance": provenance(data_dir=str(ddir)), "wall_seconds": time.perf_counter() - t0, "result": res}
        (out / files[part]).write_text(json.dumps(doc, indent=2, default=float))
    all_res = {p: json.loads((out / f).read_text()) for p, f in files.items() if (out / f).exists()}
    (out / "forecast_intervals.md").write_text(markdown(all_res))


if __name__ == "__main__":
    main()
