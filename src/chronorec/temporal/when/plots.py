"""Plots of the time-to-event evaluation: survival curves of a few test users, calibration per horizon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["calibration_figure", "survival_figure"]


def survival_figure(test: dict[str, Any], path: str | Path, *, title: str, users: int = 4) -> Path:
    """S(t) of ``users`` test users spread over the learned model's risk (lowest to highest), the learned
    model's curve solid and the Kaplan-Meier of the user's segment dashed; each user's observed event
    time is marked (a cross), or the end of the follow-up (an open circle) when censored."""
    from chronorec.plots import pyplot, save_figure

    grid = np.asarray(test["grid"])
    surv = test["surv"]
    risk = 1.0 - surv["when"][:, -1]
    order = np.argsort(risk, kind="stable")
    pick = order[np.linspace(0, len(order) - 1, users).round().astype(int)] if len(order) else []
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    for k, i in enumerate(pick):
        color = f"C{k}"
        ax.plot(grid, surv["when"][i], color=color, lw=2, label=f"user {k + 1}: learned (risk {risk[i]:.2f})")
        if "km" in surv:
            ax.plot(grid, surv["km"][i], color=color, lw=1, ls="--")
        t, seen = float(test["time"][i]), bool(test["observed"][i])
        s_t = float(np.interp(t, grid, surv["when"][i]))
        ax.plot([t], [s_t], "x" if seen else "o", color=color, ms=9, mfc="none" if not seen else color)
    ax.set_xlabel("hours after the test cut-off")
    ax.set_ylabel("P(no event yet)")
    ax.set_ylim(0, 1.02)
    ax.set_title(
        f"{title}\nsolid: learned model, dashed: Kaplan-Meier of the user's segment\nx: the user's event, o: censored",
        fontsize=10,
    )
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def calibration_figure(test: dict[str, Any], horizon: float, path: str | Path, *, title: str) -> Path:
    """Reliability diagram of P(event within ``horizon``) of every method that gives it."""
    from chronorec.evaluation.reliability_curves import calibration_plot

    y = np.asarray(test["observed"]) & (np.asarray(test["time"]) <= horizon)
    curves = {name: (y, p[horizon]) for name, p in test["p_within"].items() if horizon in p}
    return calibration_plot(curves, path, title=f"{title}: P(event within {horizon:g} h), test cut-off")
