"""Forecasts of the future with prediction intervals, a saved forecaster, and their held-out coverage.

:func:`fit_forecaster` evaluates candidate statistical methods (:mod:`~chronorec.temporal.forecast.methods`)
at ``n_origins`` rolling origins before the end of the data, chooses a method per series (lowest MAE
over the origins) or one for all series (lowest mean MASE), and keeps the chosen method's errors.
Intervals are split-conformal: the absolute errors, divided by each series' scale (its in-sample
seasonal-naive MAE, else its mean absolute level), give one quantile per horizon step and level,
pooled over series and origins (neighbouring steps are pooled in until 50 errors are there; the
quantiles never shrink with the step). The forecast refits the chosen method on the whole history
and puts ``mean -/+ quantile x scale`` around it; counts (at most 1% of the history negative, as
net sales with the odd day of returns) are clipped at zero.

:func:`interval_coverage` is the held-out check: at each of ``n_test`` later origins it fits a
forecaster on the data before that origin only (its calibration origins end by it) and counts how
often the actual values fall inside the intervals.

:class:`IntervalForecaster` saves as JSON + safetensors (no pickle): the chosen methods, the
quantiles, the scales and the history; a loaded forecaster refits the same methods on the same
history, so its forecasts are identical.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.errors import ConfigError, DataError
from chronorec.temporal.forecast.methods import (
    INTERMITTENT,
    METHODS,
    NUMPY_METHODS,
    forecast_matrix,
    has_statsforecast,
)
from chronorec.temporal.forecast.metrics import forecast_metrics, mase_scale
from chronorec.temporal.forecast.series import SeriesMatrix, is_count, short_window_message, training_window

__all__ = [
    "DEFAULT_METHODS",
    "IntervalForecaster",
    "conformal_quantiles",
    "fit_forecaster",
    "interval_coverage",
    "load_forecaster",
]

DEFAULT_METHODS = ("naive", "seasonal_naive", "ets", "theta", "croston_sba", "tsb", "adida")
KIND = "forecaster"
MIN_POOL = 50  # errors per step before neighbouring steps are pooled in


def default_methods() -> tuple[str, ...]:
    """The candidates when none are named: :data:`DEFAULT_METHODS`, or only the numpy ones without statsforecast."""
    return DEFAULT_METHODS if has_statsforecast() else NUMPY_METHODS


def series_scale(Y: np.ndarray, season: int) -> np.ndarray:
    """Each series' error scale: its in-sample seasonal-naive MAE, else its mean absolute level, else 1."""
    s = mase_scale(Y, season)
    level = np.abs(Y).mean(1)
    s = np.where(np.isfinite(s) & (s > 0), s, level)
    return np.where(s > 0, s, 1.0)


def conformal_quantiles(z: np.ndarray, levels: Sequence[float], *, min_pool: int = MIN_POOL) -> np.ndarray:
    """Split-conformal quantiles (levels, h) of the scaled absolute errors ``z`` (series, origins, h).

    Step ``k`` uses the errors of steps ``k - w .. k + w`` (``w`` grows from 0 until ``min_pool``
    errors are in), the finite-sample rank ``ceil((n + 1) level / 100)``; the result is made
    non-decreasing in the step."""
    h = z.shape[2]
    out = np.empty((len(levels), h))
    for k in range(h):
        w = 0
        while True:
            pool = z[:, :, max(0, k - w) : k + w + 1].ravel()
            pool = np.sort(pool[np.isfinite(pool)])
            if len(pool) >= min_pool or w >= h:
                break
            w += 1
        if len(pool) == 0:
            raise DataError("no forecast errors to calibrate the intervals: more origins")
        for i, lv in enumerate(levels):
            rank = min(math.ceil((len(pool) + 1) * lv / 100.0), len(pool))
            out[i, k] = pool[rank - 1]
    return np.maximum.accumulate(out, axis=1)


def _origins(T: int, h: int, n_origins: int, step: int) -> np.ndarray:
    return T - h - step * np.arange(n_origins)[::-1]


@dataclass
class IntervalForecaster:
    """A fitted forecaster: the chosen method per series, the interval quantiles and the history."""

    ids: list[str]
    periods: pd.DatetimeIndex
    Y: np.ndarray  # (series, periods) history
    season: int
    h: int
    methods: list[str]  # chosen per series
    levels: list[float]
    quantiles: np.ndarray  # (levels, h) scaled absolute-error quantiles
    scale: np.ndarray  # (series,)
    nonnegative: bool
    info: dict[str, Any] = field(default_factory=dict)

    def future_periods(self) -> pd.DatetimeIndex:
        """The ``h`` periods after the last observed one."""
        step = self.periods[-1] - self.periods[-2] if len(self.periods) > 1 else pd.Timedelta(days=1)
        return pd.DatetimeIndex([self.periods[-1] + step * (k + 1) for k in range(self.h)])

    def point_forecast(self) -> np.ndarray:
        """(series, h): each series' chosen method refitted on the whole history."""
        out = np.empty((len(self.ids), self.h))
        for name in sorted(set(self.methods)):
            rows = np.flatnonzero(np.asarray(self.methods) == name)
            out[rows] = forecast_matrix(name, self.Y[rows], self.h, self.season)[0]
        return np.maximum(out, 0.0) if self.nonnegative else out

    def intervals(self, mean: np.ndarray) -> dict[str, np.ndarray]:
        """``lo-<level>`` and ``hi-<level>`` (series, h) around ``mean``."""
        out = {}
        for lv, q in zip(self.levels, self.quantiles, strict=True):
            half = q[None, :] * self.scale[:, None]
            lo = mean - half
            out[f"lo-{lv:g}"] = np.maximum(lo, 0.0) if self.nonnegative else lo
            out[f"hi-{lv:g}"] = mean + half
        return out

    def forecast(self) -> pd.DataFrame:
        """Long format: ``series_id, period, step, method, mean, lo-<level>, hi-<level>...``."""
        mean = self.point_forecast()
        bands = self.intervals(mean)
        S, h = mean.shape
        frame = {
            "series_id": np.repeat(np.asarray(self.ids, dtype=object), h),
            "period": np.tile(self.future_periods(), S),
            "step": np.tile(np.arange(1, h + 1), S),
            "method": np.repeat(np.asarray(self.methods, dtype=object), h),
            "mean": mean.ravel(),
        }
        for lv in self.levels:
            frame[f"lo-{lv:g}"] = bands[f"lo-{lv:g}"].ravel()
            frame[f"hi-{lv:g}"] = bands[f"hi-{lv:g}"].ravel()
        return pd.DataFrame(frame)

    def save(self, path: str | Path) -> Path:
        """JSON (methods, levels, grid, information) + safetensors (history, quantiles, scales), atomically."""
        from chronorec.artifacts import atomic_dir, save_tensors, write_manifest

        meta = {
            "ids": self.ids,
            "start": str(self.periods[0]),
            "step_seconds": int((self.periods[1] - self.periods[0]).total_seconds())
            if len(self.periods) > 1
            else 86400,
            "n_periods": len(self.periods),
            "season": self.season,
            "h": self.h,
            "methods": self.methods,
            "levels": self.levels,
            "nonnegative": self.nonnegative,
            "info": self.info,
        }
        with atomic_dir(path) as tmp:
            (tmp / "forecaster.json").write_text(json.dumps(meta, indent=2, default=str))
            save_tensors(
                tmp / "forecaster.safetensors", {"Y": self.Y, "quantiles": self.quantiles, "scale": self.scale}
            )
            write_manifest(tmp, KIND)
        return Path(path)


def load_forecaster(path: str | Path) -> IntervalForecaster:
    """A forecaster saved by :meth:`IntervalForecaster.save` (manifest and checksums verified)."""
    from chronorec.artifacts import load_tensors, open_saved

    d = open_saved(path, KIND, "forecaster")
    meta = json.loads((d / "forecaster.json").read_text())
    t = load_tensors(d / "forecaster.safetensors")
    periods = pd.date_range(meta["start"], periods=meta["n_periods"], freq=pd.Timedelta(seconds=meta["step_seconds"]))
    return IntervalForecaster(
        ids=list(meta["ids"]),
        periods=periods,
        Y=t["Y"],
        season=int(meta["season"]),
        h=int(meta["h"]),
        methods=list(meta["methods"]),
        levels=[float(v) for v in meta["levels"]],
        quantiles=t["quantiles"],
        scale=t["scale"],
        nonnegative=bool(meta["nonnegative"]),
        info=meta.get("info", {}),
    )


def _candidate_forecasts(
    sm: SeriesMatrix, origins: np.ndarray, h: int, methods: Sequence[str], cache: dict | None
) -> dict[str, np.ndarray]:
    """(series, origins, h) forecasts of every method; ``cache`` keeps them by (method, origin) across calls
    on prefixes of the same series (as :func:`interval_coverage` makes)."""
    out = {}
    for name in methods:
        preds = []
        for o in origins:
            key = (name, int(o))
            if cache is None or key not in cache:
                p = forecast_matrix(name, sm.Y[:, :o], h, sm.season)[0]
                if cache is None:
                    preds.append(p)
                    continue
                cache[key] = p
            preds.append(cache[key])
        out[name] = np.stack(preds, 1)
    return out


def _choose(
    preds: dict[str, np.ndarray], actual: np.ndarray, scale: np.ndarray, select: str
) -> tuple[list[str], dict[str, Any]]:
    """The method per series (``series``: lowest MAE over the origins; ``global``: lowest mean MASE)."""
    names = list(preds)
    mae = np.stack([np.abs(preds[n] - actual).mean((1, 2)) for n in names], 1)  # (S, methods)
    mase = {n: float(np.mean(mae[:, i] / scale)) for i, n in enumerate(names)}
    if select == "global":
        best = min(names, key=lambda n: mase[n])
        chosen = [best] * len(actual)
    elif select == "series":
        chosen = [names[i] for i in mae.argmin(1)]
    else:
        raise ConfigError(f"select must be series or global, not {select!r}")
    counts = pd.Series(chosen).value_counts().to_dict()
    return chosen, {"scaled_mae": mase, "chosen_counts": {k: int(v) for k, v in counts.items()}}


def fit_forecaster(  # noqa: PLR0913 - the public keyword API: one keyword per protocol choice
    sm: SeriesMatrix,
    *,
    h: int,
    methods: Sequence[str] | None = None,
    levels: Sequence[float] = (80.0, 95.0),
    n_origins: int = 8,
    step: int | None = None,
    select: str = "series",
    nonnegative: bool | None = None,
    cache: dict | None = None,
) -> IntervalForecaster:
    """Choose the method(s) and calibrate the intervals on ``n_origins`` rolling origins ``step``
    periods apart (default ``h``), the last ending at the end of the data; ``nonnegative`` (default:
    :func:`is_count` of the history) clips forecasts and lower bounds at zero. The evaluation of
    every candidate at those origins is in ``info``."""
    methods = list(methods or default_methods())
    for name in methods:
        if name not in METHODS:
            raise ConfigError(f"unknown forecasting method {name!r}; known: {', '.join(METHODS)}")
    for lv in levels:
        if not 0 < lv < 100:
            raise ConfigError(f"interval levels are percentages between 0 and 100, not {lv}")
    step = step or h
    T = sm.Y.shape[1]
    o0 = training_window(T, h, n_origins, step)
    if o0 <= 2 * sm.season:
        raise DataError(short_window_message(sm, o0, h, n_origins, step))
    origins = _origins(T, h, n_origins, step)
    actual = np.stack([sm.Y[:, o : o + h] for o in origins], 1)
    scale = series_scale(sm.Y[:, :o0], sm.season)
    preds = _candidate_forecasts(sm, origins, h, methods, cache)
    chosen, sel = _choose(preds, actual, scale, select)
    nonneg = is_count(sm.Y) if nonnegative is None else nonnegative
    rows = np.arange(len(chosen))
    best = np.stack([preds[m][i] for i, m in zip(rows, chosen, strict=True)])
    if nonneg:
        best = np.maximum(best, 0.0)
    z = np.abs(best - actual) / scale[:, None, None]
    info = {
        "origins": [str(sm.periods[o]) for o in origins],
        "select": select,
        **sel,
        "candidates": {n: _summary(forecast_metrics(actual, p, scale)) for n, p in preds.items()},
        "chosen": _summary(forecast_metrics(actual, best, scale)),
        "intermittent_share": float(np.mean([(y == 0).mean() > 0.3 for y in sm.Y])),
    }
    return IntervalForecaster(
        ids=[str(i) for i in sm.ids],
        periods=sm.periods,
        Y=sm.Y,
        season=sm.season,
        h=h,
        methods=chosen,
        levels=[float(v) for v in levels],
        quantiles=conformal_quantiles(z, levels),
        scale=series_scale(sm.Y, sm.season),
        nonnegative=nonneg,
        info=info,
    )


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("MASE", "MASE_median", "MAE", "RMSE", "sMAPE")}


def interval_coverage(  # noqa: PLR0913 - the evaluation's keyword API mirrors fit_forecaster's
    sm: SeriesMatrix,
    *,
    h: int,
    n_test: int | None = None,
    n_calibration: int = 8,
    step: int | None = None,
    methods: Sequence[str] | None = None,
    levels: Sequence[float] = (80.0, 95.0),
    select: str = "series",
) -> dict[str, Any]:
    """Held-out coverage of the intervals: at each of ``n_test`` origins ``step`` apart (the last
    ending at the end of the data), a forecaster fitted on the data before the origin only (method
    choice and quantiles from its own ``n_calibration`` earlier origins) forecasts ``h`` periods;
    the share of actual values inside each interval, overall, per step and per origin, with the
    mean interval width (scaled) and the point-forecast metrics. ``n_test`` defaults to every origin
    that leaves the first forecaster more than two seasons of training window."""
    step = step or h
    T = sm.Y.shape[1]
    if n_test is None:  # the earliest origin t must leave training_window(t, ...) > 2 seasons
        first = 2 * sm.season + 1 + h + step * (n_calibration - 1)
        n_test = (T - h - first) // step + 1
    if n_test < 1:
        raise DataError(
            short_window_message(sm, training_window(T - h, h, n_calibration, step), h, n_calibration, step)
        )
    tests = _origins(T, h, n_test, step)
    cache: dict = {}
    inside = {lv: [] for lv in levels}
    width = {lv: [] for lv in levels}
    means, actual, per_origin = [], [], []
    for t in tests:
        past = SeriesMatrix(ids=sm.ids, periods=sm.periods[:t], Y=sm.Y[:, :t], season=sm.season)
        fc = fit_forecaster(
            past, h=h, methods=methods, levels=levels, n_origins=n_calibration, step=step, select=select, cache=cache
        )
        mean = fc.point_forecast()
        bands = fc.intervals(mean)
        y = sm.Y[:, t : t + h]
        row = {"origin": str(sm.periods[t])}
        for lv in levels:
            lo, hi = bands[f"lo-{lv:g}"], bands[f"hi-{lv:g}"]
            hit = (y >= lo) & (y <= hi)
            inside[lv].append(hit)
            width[lv].append((hi - lo) / fc.scale[:, None])
            row[f"coverage_{lv:g}"] = float(hit.mean())
        per_origin.append(row)
        means.append(mean)
        actual.append(y)
    pred, act = np.stack(means, 1), np.stack(actual, 1)
    o0 = int(tests[0])
    out = {
        "protocol": f"{n_test} held-out origins {step} periods apart, each with {n_calibration} calibration "
        f"origins before it; horizon {h}",
        "test_origins": [str(sm.periods[t]) for t in tests],
        "n_series": len(sm.ids),
        "levels": list(levels),
        "coverage": {f"{lv:g}": float(np.mean(inside[lv])) for lv in levels},
        "coverage_by_step": {f"{lv:g}": np.stack(inside[lv]).mean((0, 1)).tolist() for lv in levels},
        "scaled_width": {f"{lv:g}": float(np.mean(width[lv])) for lv in levels},
        "per_origin": per_origin,
        "point": _summary(forecast_metrics(act, pred, series_scale(sm.Y[:, :o0], sm.season))),
        "intermittent_methods": [m for m in (methods or default_methods()) if m in INTERMITTENT],
    }
    return out
