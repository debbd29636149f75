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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.errors import ConfigError, DataError
from chronorec.temporal.forecast.intervals import (
    ZERO,
    conformal_quantiles,
    interval_report,
    min_upper,
    series_quantiles,
)
from chronorec.temporal.forecast.methods import (
    INTERMITTENT,
    METHODS,
    NUMPY_METHODS,
    forecast_matrix,
    has_statsforecast,
)
from chronorec.temporal.forecast.metrics import forecast_metrics, mase_scale, nanmean
from chronorec.temporal.forecast.series import (
    SeriesMatrix,
    is_count,
    short_window_message,
    training_window,
)

__all__ = [
    "DEFAULT_METHODS",
    "IntervalForecaster",
    "conformal_quantiles",
    "fit_forecaster",
    "interval_report",
    "interval_coverage",
    "load_forecaster",
]

DEFAULT_METHODS = ("naive", "seasonal_naive", "ets", "theta", "croston_sba", "tsb", "adida")
KIND = "forecaster"


def default_methods() -> tuple[str, ...]:
    """The candidates when none are named: :data:`DEFAULT_METHODS`, or only the numpy ones without statsforecast."""
    return DEFAULT_METHODS if has_statsforecast() else NUMPY_METHODS


def series_scale(Y: np.ndarray, season: int) -> np.ndarray:
    """Each series' error scale: its in-sample seasonal-naive MAE, else its mean absolute level, else 1."""
    s = mase_scale(Y, season)
    level = nanmean(np.abs(Y), 1)
    level = np.where(np.isfinite(level), level, 0.0)
    s = np.where(np.isfinite(s) & (s > 0), s, level)
    return np.where(s > 0, s, 1.0)


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
    quantiles: np.ndarray  # (levels, series, 2, h, 2) band multipliers: zero / non-zero forecast, lower / upper
    scale: np.ndarray  # (series,)
    nonnegative: bool
    info: dict[str, Any] = field(default_factory=dict)
    floor: np.ndarray | None = None  # (series,) the least upper bound (a recent non-zero value)
    calibration: str = "series"
    score: str = "scale"  # errors over the series' scale, or over scale + |forecast| ("forecast")
    sides: str = "count"  # symmetric, signed or count (:func:`~chronorec.temporal.forecast.intervals.series_quantiles`)

    def future_periods(self) -> pd.DatetimeIndex:
        """The ``h`` periods after the last observed one."""
        step = self.periods[-1] - self.periods[-2] if len(self.periods) > 1 else pd.Timedelta(days=1)
        return pd.DatetimeIndex([self.periods[-1] + step * (k + 1) for k in range(self.h)])

    def point_forecast(self, n_jobs: int | None = None) -> np.ndarray:
        """(series, h): each series' chosen method refitted on the whole history."""
        out = np.empty((len(self.ids), self.h))
        for name in sorted(set(self.methods)):
            rows = np.flatnonzero(np.asarray(self.methods) == name)
            out[rows] = forecast_matrix(name, self.Y[rows], self.h, self.season, n_jobs=n_jobs)[0]
        return np.maximum(out, 0.0) if self.nonnegative else out

    def intervals(self, mean: np.ndarray) -> dict[str, np.ndarray]:
        """``lo-<level>`` and ``hi-<level>`` (series, h) around ``mean``: each cell's quantile is its
        series' for a zero or a non-zero forecast; the upper bound is at least ``floor``."""
        out = {}
        seg = (np.abs(mean) > ZERO).astype(int)
        rows = np.arange(len(mean))[:, None]
        steps = np.arange(mean.shape[1])[None, :]
        for lv, q in zip(self.levels, self.quantiles, strict=True):
            d = difficulty(mean, self.scale, self.score)
            m = q[rows, seg, steps]  # (series, h, 2)
            with np.errstate(invalid="ignore"):  # an infinite lower multiplier: the band reaches 0
                lo = np.where(np.isinf(m[..., 0]), -np.inf, mean - m[..., 0] * d)
            hi = mean + m[..., 1] * d
            hi = np.maximum(hi, lo)
            if self.floor is not None:
                hi = np.maximum(hi, self.floor[:, None])
            out[f"lo-{lv:g}"] = np.maximum(lo, 0.0) if self.nonnegative else lo
            out[f"hi-{lv:g}"] = hi
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
            "calibration": self.calibration,
            "score": self.score,
            "sides": self.sides,
            "info": self.info,
        }
        with atomic_dir(path) as tmp:
            (tmp / "forecaster.json").write_text(json.dumps(meta, indent=2, default=str))
            save_tensors(
                tmp / "forecaster.safetensors",
                {
                    "Y": self.Y,
                    "quantiles": self.quantiles,
                    "scale": self.scale,
                    "floor": self.floor if self.floor is not None else np.zeros(len(self.ids)),
                },
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
    q = t["quantiles"]
    if q.ndim == 2:  # saved before the per-series calibration: one pooled |error| quantile per level and step
        q = np.broadcast_to(q[:, None, None, :, None], (q.shape[0], len(meta["ids"]), 2, q.shape[1], 2)).copy()
    return IntervalForecaster(
        ids=list(meta["ids"]),
        periods=periods,
        Y=t["Y"],
        season=int(meta["season"]),
        h=int(meta["h"]),
        methods=list(meta["methods"]),
        levels=[float(v) for v in meta["levels"]],
        quantiles=q,
        scale=t["scale"],
        nonnegative=bool(meta["nonnegative"]),
        info=meta.get("info", {}),
        floor=t.get("floor"),
        calibration=meta.get("calibration", "pooled"),
        score=meta.get("score", "scale"),
        sides=meta.get("sides", "symmetric"),
    )


def _candidate_forecasts(
    sm: SeriesMatrix, origins: np.ndarray, h: int, methods: Sequence[str], cache: dict | None, n_jobs: int | None
) -> dict[str, np.ndarray]:
    """(series, origins, h) forecasts of every method; ``cache`` keeps them by (method, origin) across calls
    on prefixes of the same series (as :func:`interval_coverage` makes)."""
    out = {}
    for name in methods:
        preds = []
        for o in origins:
            key = (name, int(o))
            if cache is None or key not in cache:
                p = forecast_matrix(name, sm.Y[:, :o], h, sm.season, n_jobs=n_jobs)[0]
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
    mae = np.stack([nanmean(np.abs(preds[n] - actual), (1, 2)) for n in names], 1)  # (S, methods)
    mase = {n: float(nanmean(mae[:, i] / scale)) for i, n in enumerate(names)}
    mae = np.where(np.isfinite(mae), mae, np.inf)  # a series without calibration cells: the first method
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
    calibration: str = "series",
    n_jobs: int | None = None,
    score: str = "scale",
    sides: str = "count",
    floor: bool = True,
) -> IntervalForecaster:
    """Choose the method(s) and calibrate the intervals on ``n_origins`` rolling origins ``step``
    periods apart (default ``h``), the last ending at the end of the data; ``nonnegative`` (default:
    :func:`is_count` of the history) clips forecasts and lower bounds at zero; ``calibration`` is
    ``series`` or ``pooled`` (:func:`~chronorec.temporal.forecast.intervals.series_quantiles`);
    ``n_jobs`` the statsforecast processes; ``floor=False`` lets a series with a recent non-zero
    value have a zero-width band (the conformal one: cheaper in interval score where its purchases
    are rare). The evaluation of every candidate at those origins is
    in ``info``."""
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
    preds = _candidate_forecasts(sm, origins, h, methods, cache, n_jobs)
    chosen, sel = _choose(preds, actual, scale, select)
    nonneg = is_count(sm.Y) if nonnegative is None else nonnegative
    rows = np.arange(len(chosen))
    best = np.stack([preds[m][i] for i, m in zip(rows, chosen, strict=True)])
    if nonneg:
        best = np.maximum(best, 0.0)
    full_scale = series_scale(sm.Y, sm.season)  # the scale the bands are drawn with, known at fit time
    score = score if calibration == "series" else "scale"
    z = np.abs(best - actual) / difficulty(best, full_scale, score)
    sides = sides if calibration == "series" else "symmetric"
    if sides == "count" and not nonneg:
        sides = "signed"  # a series that goes negative has no zero floor to reach
    z = np.sign(actual - best) * z
    quantiles = series_quantiles(
        z, np.abs(best) <= ZERO, levels, calibration=calibration, sides=sides, actual_zero=actual == 0
    )
    info = {
        "origins": [str(sm.periods[o]) for o in origins],
        "select": select,
        **sel,
        "candidates": {n: _summary(forecast_metrics(actual, p, scale)) for n, p in preds.items()},
        "chosen": _summary(forecast_metrics(actual, best, scale)),
        "intermittent_share": float(np.mean([nanmean(np.where(np.isfinite(y), y == 0, np.nan)) > 0.3 for y in sm.Y])),
        "calibration": calibration,
    }
    return IntervalForecaster(
        ids=[str(i) for i in sm.ids],
        periods=sm.periods,
        Y=sm.Y,
        season=sm.season,
        h=h,
        methods=chosen,
        levels=[float(v) for v in levels],
        quantiles=quantiles,
        scale=full_scale,
        nonnegative=nonneg,
        info=info,
        floor=min_upper(sm.Y, max(sm.season, h)) if floor and calibration == "series" and nonneg else None,
        calibration=calibration,
        score=score,
        sides=sides,
    )


def difficulty(mean: np.ndarray, scale: np.ndarray, score: str) -> np.ndarray:
    """What a cell's absolute error is divided by: the series' scale (``score="scale"``), or the scale
    plus the forecast's size (``"forecast"``: a forecast of 24 units errs more than one of 2)."""
    sc = scale.reshape((-1,) + (1,) * (mean.ndim - 1))
    if score == "scale":
        return np.broadcast_to(sc, mean.shape)
    f = np.abs(np.nan_to_num(mean))
    if score == "forecast":
        return sc + f
    if score == "relative":
        return np.where(f > ZERO, f, sc)
    raise ConfigError(f"score must be scale, forecast or relative, not {score!r}")


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
    calibration: str = "series",
    n_jobs: int | None = None,
    cache: dict | None = None,
    arrays: bool = False,
    score: str = "scale",
    sides: str = "count",
    floor: bool = True,
) -> dict[str, Any]:
    """Held-out coverage of the intervals: at each of ``n_test`` origins ``step`` apart (the last
    ending at the end of the data), a forecaster fitted on the data before the origin only (method
    choice and quantiles from its own ``n_calibration`` earlier origins) forecasts ``h`` periods;
    the share of actual values inside each interval, overall, per step and per origin, the mean
    interval width (scaled), the point-forecast metrics, and ``report``: coverage by segment
    (:func:`~chronorec.temporal.forecast.intervals.interval_report`: zero / non-zero forecast,
    median series, volume decile, step), zero-width share and MSIS. ``n_test`` defaults to every
    origin that leaves the first forecaster more than two seasons of training window. ``cache``
    keeps the candidates' forecasts by (method, origin) for another call on the same series;
    ``arrays`` adds the forecasts, actual values and bands (series, tests, h) under ``arrays``."""
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
    cache = {} if cache is None else cache
    bands: dict[str, list[np.ndarray]] = {}
    means, actual, per_origin, chosen = [], [], [], []
    fit_kw = {"h": h, "methods": methods, "levels": levels, "n_origins": n_calibration, "step": step}
    fit_kw |= {"select": select, "cache": cache, "calibration": calibration, "n_jobs": n_jobs}
    fit_kw |= {"score": score, "sides": sides, "floor": floor}
    for t in tests:
        past = SeriesMatrix(ids=sm.ids, periods=sm.periods[:t], Y=sm.Y[:, :t], season=sm.season)
        fc = fit_forecaster(past, **fit_kw)
        mean = _refit_at(sm, int(t), h, fc, cache, n_jobs)
        b = fc.intervals(mean)
        y = sm.Y[:, t : t + h]
        per_origin.append({"origin": str(sm.periods[t]), **_origin_coverage(y, mean, b, levels)})
        for k, v in b.items():
            bands.setdefault(k, []).append(v)
        means.append(mean)
        actual.append(y)
        chosen.append(fc.methods)
    pred, act = np.stack(means, 1), np.stack(actual, 1)
    B = {k: np.stack(v, 1) for k, v in bands.items()}
    o0 = int(tests[0])
    scale = series_scale(sm.Y[:, :o0], sm.season)
    report = interval_report(
        act,
        pred,
        {lv: (B[f"lo-{lv:g}"], B[f"hi-{lv:g}"]) for lv in levels},
        scale,
        np.nansum(np.abs(sm.Y[:, :o0]), 1),
        recent=recent_activity(sm.Y, tests, max(sm.season, h)),
    )
    ok = np.isfinite(act) & np.isfinite(pred)
    out = {
        "protocol": f"{n_test} held-out origins {step} periods apart, each with {n_calibration} calibration "
        f"origins before it; horizon {h}; calibration {calibration}",
        "test_origins": [str(sm.periods[t]) for t in tests],
        "n_series": len(sm.ids),
        "levels": list(levels),
        "coverage": {f"{lv:g}": report["levels"][f"{lv:g}"]["pooled"] for lv in levels},
        "coverage_by_step": {f"{lv:g}": report["levels"][f"{lv:g}"]["by_step"] for lv in levels},
        "scaled_width": {
            f"{lv:g}": float(np.mean(((B[f"hi-{lv:g}"] - B[f"lo-{lv:g}"]) / scale[:, None, None])[ok])) for lv in levels
        },
        "report": report,
        "per_origin": per_origin,
        "methods_chosen": [pd.Series(c).value_counts().to_dict() for c in chosen],
        "point": _summary(forecast_metrics(act, pred, scale)),
        "intermittent_methods": [m for m in (methods or default_methods()) if m in INTERMITTENT],
    }
    if arrays:
        out["arrays"] = {"mean": pred, "actual": act, "methods": chosen, "test_index": tests, **B}
    return out


def _origin_coverage(y: np.ndarray, mean: np.ndarray, b: dict[str, np.ndarray], levels: Sequence[float]) -> dict:
    """The share of one origin's actual values ``y`` inside each band (cells with a forecast only)."""
    ok = np.isfinite(y) & np.isfinite(mean)
    out = {}
    for lv in levels:
        hit = (y >= b[f"lo-{lv:g}"]) & (y <= b[f"hi-{lv:g}"])
        out[f"coverage_{lv:g}"] = float(hit[ok].mean()) if ok.any() else None
    return out


def recent_activity(Y: np.ndarray, origins: np.ndarray, window: int) -> np.ndarray:
    """(series, origins): whether each series has a non-zero value in the ``window`` periods before
    each origin (the series whose bands must not have zero width)."""
    return np.stack([np.nan_to_num(np.abs(Y[:, max(0, int(o) - window) : int(o)])).sum(1) > 0 for o in origins], 1)


def _refit_at(sm: SeriesMatrix, t: int, h: int, fc: IntervalForecaster, cache: dict, n_jobs: int | None) -> np.ndarray:
    """``fc.point_forecast()`` at origin ``t`` of ``sm`` (its history is ``sm.Y[:, :t]``), each
    method's forecast taken from ``cache`` when a calibration already made it there."""
    out = np.empty((len(sm.ids), h))
    names = np.asarray(fc.methods)
    for name in sorted(set(fc.methods)):
        rows = names == name
        out[rows] = _candidate_forecasts(sm, np.array([t]), h, [name], cache, n_jobs)[name][rows, 0]
    return np.maximum(out, 0.0) if fc.nonnegative else out
