"""Series packed on a common grid, the training-window scaler and calendar features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SeriesMatrix", "calendar_features", "fit_scaler", "to_matrix"]


@dataclass
class SeriesMatrix:
    """Series on a common grid: ``Y[s, t]`` is series ``ids[s]`` in period ``periods[t]``."""

    ids: np.ndarray
    periods: pd.DatetimeIndex
    Y: np.ndarray  # (series, periods) float64
    season: int


def to_matrix(
    series: pd.DataFrame,
    *,
    value: str = "y",
    season: int | None = None,
    freq: str | None = None,
) -> SeriesMatrix:
    """Pack long-format ``series_id, period, <value>`` into a dense matrix (missing periods = 0).

    ``freq`` (pandas alias) defaults to the smallest gap between periods; ``season`` defaults to 24
    for hourly and 7 for daily data, 52 for weekly.
    """
    df = series[["series_id", "period", value]].copy()
    df["period"] = pd.to_datetime(df["period"])
    periods = np.sort(df["period"].unique())
    if freq is None:
        gap = pd.Timedelta(np.diff(periods).min()) if len(periods) > 1 else pd.Timedelta(days=1)
        grid = pd.date_range(periods[0], periods[-1], freq=gap)
    else:
        grid = pd.date_range(periods[0], periods[-1], freq=freq)
    ids = np.sort(df["series_id"].unique())
    piv = df.pivot_table(index="series_id", columns="period", values=value, aggfunc="sum")
    piv = piv.reindex(index=ids, columns=grid).fillna(0.0)
    if season is None:
        step = (grid[1] - grid[0]).total_seconds() if len(grid) > 1 else 86400
        season = {3600: 24, 86400: 7, 604800: 52}.get(int(step), 1)
    return SeriesMatrix(ids=ids, periods=grid, Y=piv.to_numpy(np.float64), season=season)


def fit_scaler(Y_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-series mean and standard deviation over the training window only (std floored at 1e-3
    of the mean absolute level, and 1 for an all-zero series)."""
    mu = Y_train.mean(1)
    sd = Y_train.std(1)
    floor = np.maximum(1e-3 * np.abs(Y_train).mean(1), 1e-8)
    sd = np.where(sd > floor, sd, np.where(np.abs(Y_train).mean(1) > 0, floor, 1.0))
    return mu, sd


def calendar_features(periods: pd.DatetimeIndex, season: int) -> np.ndarray:
    """(T, 4) sin/cos of the position in the season (hour of day or day of week) and of the day of year."""
    if season == 24:
        pos = periods.hour.to_numpy()
    elif season == 7:
        pos = periods.day_of_week.to_numpy()
    else:
        pos = np.arange(len(periods)) % max(season, 1)
    a = 2 * np.pi * pos / max(season, 1)
    b = 2 * np.pi * periods.day_of_year.to_numpy() / 365.25
    return np.column_stack([np.sin(a), np.cos(a), np.sin(b), np.cos(b)])
