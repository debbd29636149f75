"""Split-conformal prediction intervals that hold per series, and their held-out report by segment.

The calibration errors are the chosen method's absolute errors at rolling origins, divided by each
series' scale (its in-sample seasonal-naive MAE). Pooling them over every series (``pooled``, the
old calibration) lets the quiet series set the bands of the busy ones, and where most errors are
zero (sparse counts: a user buys on one day in ten) the band has width zero exactly on the days a
purchase is forecast. ``series`` (the default) calibrates each series on its own errors, apart for
the cells where the forecast was zero and those where it was not (a Mondrian split: the error of a
forecast purchase day is not the error of a forecast quiet day), and shrinks each series' quantile
towards the pooled quantile of its segment and step when it has few errors there
(``n / (n + SHRINK)`` on the series' own). A series whose recent history has a non-zero value never
gets a zero-width band: the upper bound is at least its smallest recent non-zero value.

:func:`interval_report` is the held-out check by segment: coverage pooled, on the cells with a zero
and a non-zero forecast, in the median series, by volume decile and by step; the share of
zero-width bands; and the mean scaled interval score (MSIS, Gneiting & Raftery 2007, as in the M4
competition: width plus ``2 / alpha`` times the miss, over the series' scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from chronorec.errors import ConfigError, DataError
from chronorec.temporal.forecast.metrics import nanmean

__all__ = [
    "CALIBRATIONS",
    "SHRINK",
    "conformal_quantiles",
    "interval_report",
    "min_upper",
    "series_quantiles",
]

CALIBRATIONS = ("series", "pooled")
MIN_POOL = 50  # errors per step before neighbouring steps are pooled in
SHRINK = 10.0  # pseudo-errors of the pooled quantile in a series' own
ZERO = 1e-9  # a forecast at most this is a zero forecast


def conformal_quantiles(z: np.ndarray, levels: Sequence[float], *, min_pool: int = MIN_POOL) -> np.ndarray:
    """Split-conformal quantiles (levels, h) of the scaled absolute errors ``z`` (series, origins, h),
    pooled over series and origins.

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


def _row_quantiles(z: np.ndarray, lv: float) -> tuple[np.ndarray, np.ndarray]:
    """Each row's conformal quantile of its finite values and the weight it can carry (0 where the
    row has too few values for the rank ``ceil((n + 1) level / 100) <= n``)."""
    srt = np.sort(z, 1)  # NaN last
    n = np.isfinite(z).sum(1)
    rank = np.ceil((n + 1) * lv / 100.0).astype(int)
    ok = (rank <= n) & (n > 0)
    q = np.take_along_axis(srt, np.clip(rank - 1, 0, z.shape[1] - 1)[:, None], 1)[:, 0]
    return np.where(ok, q, 0.0), ok


def _sides(z: np.ndarray, lv: float, sides: str) -> list[tuple[np.ndarray, float]]:
    """The (scores, probability in %) whose upper conformal quantiles are the band's lower and upper
    multipliers: ``|z|`` at ``lv`` twice (``symmetric``), or ``-z`` and ``z`` at ``1 - alpha / 2``
    (``signed``: equal tails of the signed errors, so that a count band can reach 0 below a
    forecast purchase without being as wide above it)."""
    if sides in ("symmetric", "count"):
        a = np.abs(z)
        return [(a, lv), (a, lv)]
    if sides == "signed":
        p = 100.0 - (100.0 - lv) / 2
        return [(-z, p), (z, p)]
    raise ConfigError(f"sides must be symmetric or signed, not {sides!r}")


def _calibrate(
    sc: np.ndarray, mask: np.ndarray, p: float, every: np.ndarray, shrink: float, min_pool: int
) -> np.ndarray:
    """(series, h): each series' conformal quantile of ``sc`` at ``p`` over its cells in ``mask``,
    shrunk towards the segment's pooled quantile of the step (``every`` where the segment is small)."""
    S = sc.shape[0]
    zg = np.where(mask, sc, np.nan)
    n = np.isfinite(zg).sum((1, 2))
    pooled = conformal_quantiles(zg, [p], min_pool=min_pool)[0] if n.sum() >= min_pool else every
    own, ok = _row_quantiles(zg.reshape(S, -1), p)
    w = np.where(ok, n / (n + shrink), 0.0)[:, None]
    return w * own[:, None] + (1 - w) * pooled[None, :]


def series_quantiles(  # noqa: PLR0913 - one keyword per calibration choice
    z: np.ndarray,
    zero: np.ndarray,
    levels: Sequence[float],
    *,
    calibration: str = "series",
    sides: str = "symmetric",
    actual_zero: np.ndarray | None = None,
    shrink: float | None = None,
    min_pool: int = MIN_POOL,
) -> np.ndarray:
    """Band multipliers (levels, series, 2, h, 2) from the scaled signed errors ``z`` (series,
    origins, h): the third axis is the segment (0: the cells with a zero forecast, ``zero``; 1: the
    others), the last the side (lower, upper: the band is ``mean - lower x s .. mean + upper x s``).

    ``pooled``: one |error| quantile per step for every series and both segments
    (:func:`conformal_quantiles`). ``series``: per segment, each series' own quantile (all its steps
    and origins in the segment) shrunk towards the segment's pooled quantile of the step by
    ``n / (n + shrink)``; a segment with fewer than ``min_pool`` errors in all borrows the all-cell
    pooled quantile. A zero forecast (of a count) errs upwards only: its band is ``0 .. q(|z|)``.
    ``sides``: ``symmetric`` (|z| at the level), ``signed`` (equal tails of ``z``) or ``count``:
    where at least ``alpha / 2`` of a series' non-zero-forecast cells had a zero actual
    (``actual_zero``; shrunk like the quantiles), the band of a forecast purchase is one-sided,
    ``0 .. mean + q(z, level)`` (the shortest band of a zero-inflated count), else signed."""
    if calibration not in CALIBRATIONS:
        raise ConfigError(f"calibration must be one of {', '.join(CALIBRATIONS)}, not {calibration!r}")
    if sides == "count" and actual_zero is None:
        raise ConfigError("sides='count' needs actual_zero")
    shrink = SHRINK if shrink is None else shrink
    S, _, h = z.shape
    out = np.empty((len(levels), S, 2, h, 2))
    ok = np.isfinite(z)
    for i, lv in enumerate(levels):
        for g, mask in enumerate((zero & ok, ~zero & ok)):
            kind = "symmetric" if g == 0 else ("signed" if sides == "count" else sides)
            for side, (sc, p) in enumerate(_sides(z, lv, kind)):
                every = conformal_quantiles(sc, [p], min_pool=min_pool)[0]
                if calibration == "pooled":
                    out[i, :, g, :, side] = every[None, :]
                else:
                    out[i, :, g, :, side] = _calibrate(sc, mask, p, every, shrink, min_pool)
            if sides == "count" and g == 1 and calibration == "series":
                n = mask.sum((1, 2))
                pz = (mask & actual_zero).sum() / max(mask.sum(), 1)
                share = (np.where(n > 0, (mask & actual_zero).sum((1, 2)) / np.maximum(n, 1), 0) * n + shrink * pz) / (
                    n + shrink
                )
                inflated = share >= (1 - lv / 100.0) / 2
                upper = _calibrate(z, mask, lv, conformal_quantiles(z, [lv], min_pool=min_pool)[0], shrink, min_pool)
                out[i, inflated, 1, :, 0] = np.inf
                out[i, inflated, 1, :, 1] = upper[inflated]
    return out


def min_upper(Y: np.ndarray, window: int) -> np.ndarray:
    """Each series' smallest non-zero absolute value in its last ``window`` periods (0: none)."""
    recent = np.abs(Y[:, -window:])
    pos = np.where(np.isfinite(recent) & (recent > 0), recent, np.inf)
    m = pos.min(1)
    return np.where(np.isfinite(m), m, 0.0)


def _coverage(hit: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    sel = hit if mask is None else hit[mask]
    return float(sel.mean()) if sel.size else None


def interval_report(  # noqa: PLR0913 - one array per ingredient of the report
    actual: np.ndarray,
    mean: np.ndarray,
    bands: dict[float, tuple[np.ndarray, np.ndarray]],
    scale: np.ndarray,
    volume: np.ndarray,
    *,
    recent: np.ndarray | None = None,
    by_step: bool = True,
) -> dict[str, Any]:
    """Held-out coverage of interval ``bands`` (level -> (lo, hi), each (series, origins, h) like
    ``actual`` and ``mean``) by segment: pooled, on the cells with a non-zero and a zero forecast,
    per series (median and quartiles), by volume decile of the series (``volume``: e.g. the total
    before the first test origin; decile 10 is the largest), by step; the share of zero-width
    bands (all, and ``zero_width_share_recent`` on the series with a recent non-zero value:
    ``recent``, (series, origins)) and MSIS (the interval score over ``scale``). Cells with a NaN
    actual or forecast are left out. ``zero_actual_share_nonzero_forecast`` is the least coverage
    any band reaching 0 has on the non-zero-forecast cells (counts are discrete: a band cannot
    cover 80 % of cells of which 89 % are 0 or 1 except by covering 89 %); ``series_median_zero_actual``
    the same for the median series."""
    ok = np.isfinite(actual) & np.isfinite(mean)
    nz = ok & (np.abs(mean) > ZERO)
    S = actual.shape[0]
    order = np.argsort(np.argsort(volume, kind="stable"), kind="stable")
    decile = (order * 10) // max(S, 1)  # 0..9, 9 the largest
    out: dict[str, Any] = {
        "cells": int(ok.sum()),
        "nonzero_forecast_share": float(nz.sum() / max(ok.sum(), 1)),
        "zero_actual_share_nonzero_forecast": float((actual[nz] == 0).mean()) if nz.any() else None,
        "at_most_one_share_nonzero_forecast": float((np.abs(actual[nz]) <= 1).mean()) if nz.any() else None,
        "series_median_zero_actual": float(
            np.nanmedian([(actual[s][ok[s]] == 0).mean() if ok[s].any() else np.nan for s in range(S)])
        ),
        "levels": {},
    }
    for lv, (lo, hi) in bands.items():
        alpha = 1 - lv / 100.0
        y = np.where(ok, actual, 0.0)
        hit = (y >= lo - 1e-9) & (y <= hi + 1e-9)
        per_series = np.array([hit[s][ok[s]].mean() if ok[s].any() else np.nan for s in range(S)])
        score = (hi - lo) + 2 / alpha * (np.maximum(lo - y, 0) + np.maximum(y - hi, 0))
        msis_s = nanmean(np.where(ok, score, np.nan), (1, 2)) / scale
        good = np.isfinite(msis_s) & np.isfinite(scale) & (scale > 0)
        rep = {
            "pooled": _coverage(hit, ok),
            "nonzero_forecast": _coverage(hit, nz),
            "zero_forecast": _coverage(hit, ok & ~nz),
            "series_median": float(np.nanmedian(per_series)),
            "series_q25": float(np.nanpercentile(per_series, 25)),
            "series_q75": float(np.nanpercentile(per_series, 75)),
            "by_volume_decile": [_coverage(hit, ok & (decile == d)[:, None, None]) for d in range(10)],
            "nonzero_forecast_by_volume_decile": [_coverage(hit, nz & (decile == d)[:, None, None]) for d in range(10)],
            "zero_width_share": float(((hi - lo) <= 1e-12)[ok].mean()) if ok.any() else None,
            "zero_width_share_recent": _coverage((hi - lo) <= 1e-12, ok & recent[:, :, None])
            if recent is not None
            else None,
            "MSIS": float(np.mean(msis_s[good])) if good.any() else None,
            "MSIS_median": float(np.median(msis_s[good])) if good.any() else None,
            "mean_width": float(np.mean((hi - lo)[ok])) if ok.any() else None,
        }
        if by_step:
            rep["by_step"] = [_coverage(hit[:, :, k], ok[:, :, k]) for k in range(actual.shape[2])]
            rep["nonzero_forecast_by_step"] = [_coverage(hit[:, :, k], nz[:, :, k]) for k in range(actual.shape[2])]
        out["levels"][f"{lv:g}"] = rep
    return out
