"""Forecast metrics: MSE, MAE, RMSE, sMAPE (0 where actual and forecast are both 0) and MASE = MAE / the
in-sample one-step seasonal-naive MAE of each series over the training window (series with a zero
scale are left out of MASE and counted).

Series start at their first event (NaN before it, :func:`~chronorec.temporal.forecast.series.to_matrix`):
every metric and scale skips the cells where the actual or the forecast is NaN (a period before a
series existed, or an origin before its first event)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["forecast_metrics", "mase_scale", "nanmean"]


def nanmean(a: np.ndarray, axis: Any = None) -> Any:
    """``np.nanmean`` without the warning on all-NaN slices (they are NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def mase_scale(Y_train: np.ndarray, season: int) -> np.ndarray:
    """In-sample seasonal-naive MAE of each series over its observed periods (NaN where it has fewer
    than ``season + 1`` of them)."""
    if Y_train.shape[1] <= season:
        return np.full(Y_train.shape[0], np.nan)
    return nanmean(np.abs(Y_train[:, season:] - Y_train[:, :-season]), 1)


def _smape(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    den = np.abs(y) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 200.0 * np.abs(y - f) / den, np.where(np.isfinite(den), 0.0, np.nan))


def forecast_metrics(actual: np.ndarray, pred: np.ndarray, scale: np.ndarray) -> dict[str, Any]:
    """Metrics of forecasts ``pred`` for ``actual``, both (series, origins, horizon).

    Aggregates over every (series, origin, step) where both are finite; MASE is the mean over series
    with a positive ``scale`` of MAE_series / scale. Also per horizon step (``by_horizon``) and per
    series."""
    e = pred - actual
    ae = np.abs(e)
    mae_s = nanmean(ae, (1, 2))
    ok = np.isfinite(scale) & (scale > 0) & np.isfinite(mae_s)
    mase_s = np.where(ok, mae_s / np.where(ok, scale, 1.0), np.nan)
    mase_h = nanmean(nanmean(ae, 1)[ok] / scale[ok, None], 0) if ok.any() else np.full(ae.shape[2], np.nan)
    return {
        "MSE": float(nanmean(e**2)),
        "MAE": float(nanmean(ae)),
        "RMSE": float(np.sqrt(nanmean(e**2))),
        "sMAPE": float(nanmean(_smape(actual, pred))),
        "MASE": float(np.nanmean(mase_s)) if ok.any() else float("nan"),
        "MASE_median": float(np.nanmedian(mase_s)) if ok.any() else float("nan"),
        "series_in_MASE": int(ok.sum()),
        "series_zero_scale": int((~ok).sum()),
        "cells": int(np.isfinite(e).sum()),
        "by_horizon": {
            "MAE": nanmean(ae, (0, 1)).tolist(),
            "RMSE": np.sqrt(nanmean(e**2, (0, 1))).tolist(),
            "MASE": np.asarray(mase_h).tolist(),
        },
        "per_series": {"MAE": mae_s.tolist(), "MASE": mase_s.tolist()},
    }
