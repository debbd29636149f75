"""What ``chronorec forecast`` runs: series at a frequency that fits their span, the rolling-origin
evaluation of the ladder, the chosen forecaster fitted and saved, the forecast table and the plots.

:func:`series_matrix` packs long-format series at ``hour`` / ``day`` / ``week`` (``auto``: the
coarsest that leaves more than two seasons before the first origin; a frequency that is too coarse
fails with a message naming a finer one). :func:`run_forecast` writes, into one folder,
``forecast.csv`` (or ``.parquet``), ``forecaster/`` (the saved forecaster), ``forecast.png``
(history + forecast + intervals, largest series first) and ``evaluation.png`` (the ladder at the
last origin), and returns the summary that ``forecast.json`` holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.errors import ConfigError, DataError
from chronorec.temporal.forecast.core import rolling_origin
from chronorec.temporal.forecast.forecaster import fit_forecaster
from chronorec.temporal.forecast.methods import EXTRA_HINT, METHODS, installed_methods
from chronorec.temporal.forecast.plots import plot_forecasts, plot_future
from chronorec.temporal.forecast.series import FREQ_SECONDS, SEASONS, SeriesMatrix, choose_freq, to_matrix

__all__ = ["ladder_cache", "largest_series", "resample_long", "run_forecast", "series_matrix"]

_FLOOR = {"hour": "h", "day": "D"}


def resample_long(series: pd.DataFrame, freq: str, *, value: str = "y") -> pd.DataFrame:
    """Long-format series summed into ``freq`` periods (weeks start on Monday)."""
    df = series[["series_id", "period", value]].copy()
    p = pd.to_datetime(df["period"])
    df["period"] = p.dt.to_period("W-SUN").dt.start_time if freq == "week" else p.dt.floor(_FLOOR[freq])
    return df.groupby(["series_id", "period"], as_index=False)[value].sum()


def _native_step(periods: pd.Series) -> int:
    u = np.sort(pd.to_datetime(periods).unique())
    return int(pd.Timedelta(np.diff(u).min()).total_seconds()) if len(u) > 1 else 86400


def series_matrix(
    series: pd.DataFrame,
    *,
    freq: str = "auto",
    h: int,
    n_origins: int,
    value: str = "y",
    season: int | None = None,
    start: str = "first",
) -> SeriesMatrix:
    """The series on a common grid at ``freq`` (``auto``: :func:`~chronorec.temporal.forecast.series.choose_freq`
    on their span, never finer than the data's own step); each series starts at its first non-zero
    value (``start="grid"``: at the grid's first period), and later periods without a row are 0."""
    if series.empty:
        raise DataError("no series to forecast")
    p = pd.to_datetime(series["period"])
    native = _native_step(series["period"])
    if freq == "auto":
        freq = choose_freq((p.max() - p.min()).total_seconds(), h=h, n_origins=n_origins)
        coarser_ok = [f for f, s in FREQ_SECONDS.items() if s >= native]
        freq = freq if FREQ_SECONDS[freq] >= native else coarser_ok[-1]
    if freq not in FREQ_SECONDS:
        raise ConfigError(f"freq must be auto, hour, day or week, not {freq!r}")
    if FREQ_SECONDS[freq] < native:
        raise ConfigError(f"the series are recorded every {native} s: they cannot be forecast per {freq}")
    long = resample_long(series, freq, value=value)
    step = pd.Timedelta(seconds=FREQ_SECONDS[freq])
    return to_matrix(long, value=value, season=season or SEASONS[freq], freq=step, start=start)


def ladder_cache(ev: dict[str, Any]) -> dict:
    """The ladder's statistical forecasts at its origins, reused by the forecaster's calibration."""
    return {
        (name, int(o)): ev["forecasts"][name][:, j]
        for name in ev["forecasts"]
        if name in METHODS
        for j, o in enumerate(ev["origin_index"])
    }


def largest_series(frame: pd.DataFrame, top: int, value: str) -> pd.DataFrame:
    """The rows of the ``top`` series of a long frame (``series_id``, ``period``, ``value``) with the
    largest total absolute value; ties go to the series seen first."""
    totals = frame[value].abs().groupby(frame["series_id"], sort=False).sum()
    keep = totals.sort_values(ascending=False, kind="stable").index[:top]
    return frame[frame["series_id"].isin(keep)].reset_index(drop=True)


def run_forecast(  # noqa: PLR0913 - one keyword per command option
    sm: SeriesMatrix,
    out: str | Path,
    *,
    h: int,
    models: Sequence[str],
    n_origins: int = 8,
    levels: Sequence[float] = (80.0, 95.0),
    select: str = "series",
    params: Mapping[str, Any] | None = None,
    fmt: str = "csv",
    prefix: str = "",
    seed: int = 0,
    threads: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate ``models`` by rolling origin, fit the forecaster on their statistical methods, forecast
    ``h`` periods after the data and write the files (names start with ``prefix``) into ``out``."""
    models, skipped = installed_methods(models)
    stat = [m for m in models if m in METHODS]
    if not stat and skipped:
        raise ConfigError(
            f"{', '.join(skipped)} need statsforecast: {EXTRA_HINT}; naive and seasonal_naive run without it"
        )
    if not stat:
        raise ConfigError(
            f"the forecast chooses among statistical methods: add one of {', '.join(METHODS)} to --models"
        )
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"format must be csv or parquet, not {fmt!r}")
    ev = rolling_origin(
        sm, h=h, n_origins=n_origins, models=list(models), params=params, seed=seed, threads=threads, progress=progress
    )
    fc = fit_forecaster(
        sm, h=h, methods=stat, levels=levels, n_origins=n_origins, select=select, cache=ladder_cache(ev), n_jobs=threads
    )
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    frame = fc.forecast()
    table = target / f"{prefix}forecast.{fmt}"
    if fmt == "csv":
        frame.to_csv(table, index=False)
    else:
        frame.to_parquet(table, index=False)
    fc.save(target / f"{prefix}forecaster")
    plot_future(fc, frame, target / f"{prefix}forecast.png")
    plot_forecasts(sm, ev, target / f"{prefix}evaluation.png")
    return {
        "n_series": len(sm.ids),
        "n_periods": int(sm.Y.shape[1]),
        "first_period": str(sm.periods[0]),
        "last_period": str(sm.periods[-1]),
        "forecast_periods": [str(p) for p in fc.future_periods()],
        "season": sm.season,
        "h": h,
        "levels": list(fc.levels),
        "nonnegative": fc.nonnegative,
        "methods_chosen": fc.info["chosen_counts"],
        "select": select,
        "intervals": {
            "calibration": fc.calibration,
            "score": fc.score,
            "sides": fc.sides,
            "what": "split-conformal per series: each series' own error quantile, apart for the days with a zero "
            "and a non-zero forecast, shrunk towards the pooled one where it has few errors",
            "upper_multiplier_median": {
                f"{lv:g}": {
                    seg: np.median(q[:, g, :, 1], 0).tolist()
                    for g, seg in enumerate(("zero_forecast", "nonzero_forecast"))
                }
                for lv, q in zip(fc.levels, fc.quantiles, strict=True)
            },
        },
        "series_start": "each series' first non-zero value (periods before it are not history)",
        "evaluation": {k: v for k, v in ev.items() if k not in ("forecasts", "actual")},
        "table": table.name,
        "skipped_methods": {m: f"needs statsforecast: {EXTRA_HINT}" for m in skipped},
    }
