"""Plots of forecasts: actual against predicted at the last origin, and the error by horizon step."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.temporal.forecast.series import SeriesMatrix

__all__ = ["plot_forecasts"]


def plot_forecasts(
    sm: SeriesMatrix,
    ev: dict[str, Any],
    path: str | Path,
    *,
    series: Sequence[int] = (0, 1, 2),
    models: Sequence[str] | None = None,
) -> Path:
    """Actual vs predicted for a few series at the last origin (the horizon shaded), plus MAE by horizon step."""
    from chronorec.plots import pyplot, save_figure

    models = list(models or ev["forecasts"])
    series = [s for s in series if s < len(sm.ids)]
    fig, axes = pyplot().subplots(len(series) + 1, 1, figsize=(10, 2.8 * (len(series) + 1)))
    axes = np.atleast_1d(axes)
    o = ev["origin_index"][-1]
    h = ev["h"]
    lo = max(0, o - 4 * sm.season)
    x = sm.periods[lo : o + h]
    for ax, s in zip(axes[:-1], series, strict=False):
        ax.plot(x, sm.Y[s, lo : o + h], "k-", lw=1.2, label="actual")
        for name in models:
            ax.plot(sm.periods[o : o + h], ev["forecasts"][name][s, -1], lw=1, label=name)
        ax.axvspan(sm.periods[o], sm.periods[o + h - 1], color="grey", alpha=0.15, label="forecast horizon")
        ax.set_title(f"series {sm.ids[s]}", fontsize=9)
    axes[0].legend(fontsize=7, ncol=4)
    ax = axes[-1]
    for name in models:
        ax.plot(np.arange(1, h + 1), ev["results"][name]["by_horizon"]["MASE"], "o-", label=name)
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("MASE")
    ax.set_title("error by horizon (all series and origins)", fontsize=9)
    ax.legend(fontsize=7, ncol=4)
    return save_figure(fig, path, dpi=100)
