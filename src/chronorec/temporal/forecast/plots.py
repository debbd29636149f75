"""Plots of forecasts, the largest series first, with concise date labels that do not overlap.

* :func:`plot_forecasts`: the rolling-origin evaluation (actual against each model at the last
  origin, and the error by horizon step);
* :func:`plot_future`: a fitted forecaster's history, forecast and prediction intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.temporal.forecast.series import SeriesMatrix, is_count

__all__ = ["largest_first", "plot_forecasts", "plot_future"]


def largest_first(Y: np.ndarray, n: int) -> list[int]:
    """Rows of the ``n`` series with the largest total absolute volume, largest first."""
    return [int(i) for i in np.argsort(-np.nansum(np.abs(Y), 1), kind="stable")[:n]]


def _dates(ax: Any) -> None:
    """Concise date ticks (year / month shown once, not on every label)."""
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.tick_params(axis="x", labelsize=8)


def plot_forecasts(
    sm: SeriesMatrix,
    ev: dict[str, Any],
    path: str | Path,
    *,
    n_series: int = 3,
    models: Sequence[str] | None = None,
) -> Path:
    """Actual vs predicted for the ``n_series`` largest series at the last origin (horizon shaded),
    plus MASE by horizon step."""
    from chronorec.plots import pyplot, save_figure

    models = list(models or ev["forecasts"])
    series = largest_first(sm.Y, n_series)
    fig, axes = pyplot().subplots(len(series) + 1, 1, figsize=(10, 2.8 * (len(series) + 1)))
    axes = np.atleast_1d(axes)
    o = ev["origin_index"][-1]
    h = ev["h"]
    lo = max(0, o - 4 * sm.season)
    x = sm.periods[lo : o + h]
    counts = is_count(sm.Y)  # forecasts drawn clipped at zero, as the forecaster writes them
    for ax, s in zip(axes[:-1], series, strict=False):
        ax.plot(x, sm.Y[s, lo : o + h], "k-", lw=1.2, label="actual")
        for name in models:
            f = ev["forecasts"][name][s, -1]
            ax.plot(sm.periods[o : o + h], np.maximum(f, 0) if counts else f, lw=1, label=name)
        ax.axvspan(sm.periods[o], sm.periods[o + h - 1], color="grey", alpha=0.15, label="forecast horizon")
        ax.set_title(f"series {sm.ids[s]} (total {np.nansum(sm.Y[s]):,.0f})", fontsize=9)
        _dates(ax)
    axes[0].legend(fontsize=7, ncol=4)
    ax = axes[-1]
    for name in models:
        ax.plot(np.arange(1, h + 1), ev["results"][name]["by_horizon"]["MASE"], "o-", label=name)
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("MASE")
    ax.set_title("error by horizon (all series and origins)", fontsize=9)
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def plot_future(
    fc: Any, frame: pd.DataFrame, path: str | Path, *, n_series: int = 4, history: int | None = None
) -> Path:
    """History (the last ``history`` periods, default 8 seasons), forecast and intervals of the
    ``n_series`` largest series of a fitted forecaster; ``frame`` is its :meth:`forecast`."""
    from chronorec.plots import pyplot, save_figure

    rows = largest_first(fc.Y, n_series)
    keep = history or 8 * fc.season
    fig, axes = pyplot().subplots(len(rows), 1, figsize=(10, 2.6 * len(rows)), squeeze=False)
    levels = sorted(fc.levels, reverse=True)
    for ax, s in zip(axes[:, 0], rows, strict=True):
        sid = fc.ids[s]
        f = frame[frame["series_id"] == sid]
        ax.plot(fc.periods[-keep:], fc.Y[s, -keep:], "k-", lw=1.1, label="history")
        for i, lv in enumerate(levels):
            ax.fill_between(
                f["period"],
                f[f"lo-{lv:g}"],
                f[f"hi-{lv:g}"],
                color="C0",
                alpha=0.15 + 0.15 * i,
                lw=0,
                label=f"{lv:g}% interval",
            )
        ax.plot(f["period"], f["mean"], "C0-", lw=1.5, label="forecast")
        ax.set_title(f"{sid}: {fc.methods[s]} (history total {np.nansum(fc.Y[s]):,.0f})", fontsize=9)
        if fc.nonnegative:
            ax.set_ylim(bottom=0)
        _dates(ax)
    axes[0, 0].legend(fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
