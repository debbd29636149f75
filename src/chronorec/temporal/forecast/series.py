"""Series packed on a common grid, the training-window scaler and calendar features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from chronorec.errors import ConfigError

__all__ = [
    "SeriesMatrix",
    "calendar_features",
    "check_series_frame",
    "fit_scaler",
    "is_count",
    "series_starts",
    "to_matrix",
]


@dataclass
class SeriesMatrix:
    """Series on a common grid: ``Y[s, t]`` is series ``ids[s]`` in period ``periods[t]``; NaN before a
    series' start (its first event, see :func:`to_matrix`), so that every series has its own history."""

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
    start: str = "first",
) -> SeriesMatrix:
    """Pack long-format ``series_id, period, <value>`` into a matrix on a common grid.

    ``start="first"``: each series starts at its first non-zero value (its first event; a series
    with none at its first row): periods before it are NaN, periods after it without a row are 0.
    ``start="grid"``: every series is zero-filled from the first period of the grid (the old layout,
    which puts years of zeros before a late item and makes ``naive`` forecast 0).
    ``freq`` (pandas alias) defaults to the smallest gap between periods; ``season`` defaults to 24
    for hourly and 7 for daily data, 52 for weekly.
    """
    if start not in ("first", "grid"):
        raise ConfigError(f"start must be first or grid, not {start!r}")
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
    piv = piv.reindex(index=ids, columns=grid)
    Y = piv.to_numpy(np.float64)
    if start == "first":
        seen = np.isfinite(Y)
        first = np.where((seen & (Y != 0)).any(1), np.argmax(seen & (Y != 0), 1), np.argmax(seen, 1))
        before = np.arange(Y.shape[1])[None, :] < first[:, None]
        Y = np.where(before, np.nan, np.nan_to_num(Y, nan=0.0))
    else:
        Y = np.nan_to_num(Y, nan=0.0)
    if season is None:
        step = (grid[1] - grid[0]).total_seconds() if len(grid) > 1 else 86400
        season = {3600: 24, 86400: 7, 604800: 52}.get(int(step), 1)
    return SeriesMatrix(ids=ids, periods=grid, Y=Y, season=season)


def series_starts(Y: np.ndarray) -> np.ndarray:
    """Each row's first finite period (its start; the row's length for a row with none)."""
    ok = np.isfinite(Y)
    return np.where(ok.any(1), np.argmax(ok, 1), Y.shape[1])


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


FREQ_SECONDS = {"week": 7 * 86400, "day": 86400, "hour": 3600}
"""The forecasting frequencies, coarsest first, with their period in seconds."""
SEASONS = {"week": 52, "day": 7, "hour": 24}
"""The default season of each frequency (a year of weeks, a week of days, a day of hours)."""


def freq_name(periods: pd.DatetimeIndex) -> str | None:
    """``hour``, ``day`` or ``week`` for a regular grid of that step (None otherwise)."""
    if len(periods) < 2:
        return None
    step = int((periods[1] - periods[0]).total_seconds())
    return {v: k for k, v in FREQ_SECONDS.items()}.get(step)


def training_window(n_periods: int, h: int, n_origins: int, step: int | None = None) -> int:
    """Periods before the first rolling origin (see :func:`~chronorec.temporal.forecast.core.rolling_origin`)."""
    return n_periods - h - (step or h) * (n_origins - 1)


def choose_freq(span_seconds: float, *, h: int, n_origins: int, step: int | None = None) -> str:
    """The coarsest frequency (week, day, hour) at which the data's span leaves a training window of
    more than two seasons before the first of ``n_origins`` origins of ``h`` periods."""
    for name, secs in FREQ_SECONDS.items():
        n = int(span_seconds // secs) + 1
        if training_window(n, h, n_origins, step) > 2 * SEASONS[name]:
            return name
    return "hour"


def short_window_message(sm: SeriesMatrix, o0: int, h: int, n_origins: int, step: int | None = None) -> str:
    """Why the data are too short for the evaluation, and what would fit: a finer frequency (named,
    with its number of periods), fewer origins or a shorter horizon."""
    T = sm.Y.shape[1]
    name = freq_name(sm.periods)
    msg = f"training window of {o0} periods is too short for season {sm.season}"
    msg += f" ({T} {name or ''} periods in the data, {h}-period horizon, {n_origins} origins)".replace("  ", " ")
    names = list(FREQ_SECONDS)
    if name in names and names.index(name) + 1 < len(names):
        finer = names[names.index(name) + 1]
        n_finer = T * FREQ_SECONDS[name] // FREQ_SECONDS[finer]
        return (
            msg
            + f": use a finer frequency, --freq {finer} ({n_finer} periods), or fewer --origins / a shorter --horizon"
        )
    return msg + ": use fewer --origins or a shorter --horizon"


NEGATIVE_SHARE = 0.01


def is_count(Y: np.ndarray) -> bool:
    """Whether series are counts (forecasts and lower bounds clipped at zero): no more than
    :data:`NEGATIVE_SHARE` of the values negative (net units or revenue with the odd day of returns)."""
    ok = np.isfinite(Y)
    return bool(np.mean(Y[ok] < 0) <= NEGATIVE_SHARE) if ok.any() else True


def check_series_frame(frame: pd.DataFrame, value: str, source: str) -> pd.DataFrame:
    """``frame`` (long format: ``series_id, period, <value>``) with its periods parsed and its values
    numeric, or a :class:`~chronorec.errors.DataError` naming the file, the count of bad rows and the
    first one: a missing, non-numeric or infinite value is never read as 0 sales, and a period that
    is not a time is never dropped silently."""
    from chronorec.errors import DataError

    if len(frame) == 0:
        raise DataError(f"{source}: no rows")
    y = pd.to_numeric(frame[value], errors="coerce").to_numpy(np.float64)
    periods = pd.to_datetime(frame["period"], errors="coerce", utc=True)
    for bad, what, fix in (
        (~np.isfinite(y), f"'{value}' is missing, not a number or infinite", "fill or drop those rows"),
        (periods.isna().to_numpy(), "'period' is not a date-time", "write periods as ISO dates (2024-03-01)"),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: {int(bad.sum()):,} of {len(frame):,} rows where {what} (first: row {i + 2}, series "
                f"{frame['series_id'].iloc[i]!r}, {value}={str(frame[value].iloc[i])!r}); {fix}"
            )
    out = frame.copy()
    out[value] = y
    return out
