"""Forecast metrics: MSE, MAE, RMSE, sMAPE (0 where actual and forecast are both 0) and MASE = MAE / the
in-sample one-step seasonal-naive MAE of each series over the training window (series with a zero
scale are left out of MASE and counted)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["forecast_metrics", "mase_scale"]


def mase_scale(Y_train: np.ndarray, season: int) -> np.ndarray:
    """In-sample seasonal-naive MAE of each series (NaN where the window is too short)."""
    if Y_train.shape[1] <= season:
        return np.full(Y_train.shape[0], np.nan)
    return np.abs(Y_train[:, season:] - Y_train[:, :-season]).mean(1)


def _smape(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    den = np.abs(y) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 200.0 * np.abs(y - f) / den, 0.0)


def forecast_metrics(actual: np.ndarray, pred: np.ndarray, scale: np.ndarray) -> dict[str, Any]:
    """Metrics of forecasts ``pred`` for ``actual``, both (series, origins, horizon).

    Aggregates over every (series, origin, step); MASE is the mean over series with a positive
    ``scale`` of MAE_series / scale. Also per horizon step (``by_horizon``) and per series.
    """
    e = pred - actual
    ae = np.abs(e)
    ok = np.isfinite(scale) & (scale > 0)
    mae_s = ae.mean((1, 2))
    mase_s = np.where(ok, mae_s / np.where(ok, scale, 1.0), np.nan)
    mase_h = (ae.mean(1)[ok] / scale[ok, None]).mean(0) if ok.any() else np.full(ae.shape[2], np.nan)
    return {
        "MSE": float((e**2).mean()),
        "MAE": float(ae.mean()),
        "RMSE": float(np.sqrt((e**2).mean())),
        "sMAPE": float(_smape(actual, pred).mean()),
        "MASE": float(np.nanmean(mase_s)) if ok.any() else float("nan"),
        "MASE_median": float(np.nanmedian(mase_s)) if ok.any() else float("nan"),
        "series_in_MASE": int(ok.sum()),
        "series_zero_scale": int((~ok).sum()),
        "by_horizon": {
            "MAE": ae.mean((0, 1)).tolist(),
            "RMSE": np.sqrt((e**2).mean((0, 1))).tolist(),
            "MASE": np.asarray(mase_h).tolist(),
        },
        "per_series": {"MAE": mae_s.tolist(), "MASE": mase_s.tolist()},
    }
