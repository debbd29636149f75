"""Calibration: reliability curves, expected calibration error and reliability diagrams.

One binning, :func:`reliability_curve` (equal-width bins of a predicted probability); on it
:func:`calibration_curve` / :func:`calibration_plot` for binary probabilities (behaviour
prediction) and :func:`plot_reliability` for the top-1 confidence of a ranking model (temperature
calibration of recommendations).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def calibration_curve(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> dict[str, list[float]]:
    """Mean predicted probability, observed frequency and count per equal-width probability bin
    (empty bins are left out): :func:`reliability_curve` with the binary outcome as "correct"."""
    c = reliability_curve(np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64), n_bins=bins)
    c = c[c["count"] > 0]
    return {
        "mean_predicted": c["confidence"].tolist(),
        "observed": c["accuracy"].tolist(),
        "count": c["count"].astype(int).tolist(),
    }


def _label_counts(ax: Any, x: Any, y: Any, counts: Any, color: str, row: int = 0) -> None:
    """Write each bin's case count next to its point (curve ``row`` a line lower than the one
    before, so the labels of several curves do not overprint), so sparse bins are seen as such."""
    for xi, yi, n in zip(x, y, counts, strict=True):
        ax.annotate(
            f"n={int(n):,}", (xi, yi), textcoords="offset points", xytext=(5, -9 - 7 * row), fontsize=6, color=color
        )


def calibration_plot(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, *, bins: int = 10, title: str = "Calibration"
) -> Path:
    """Reliability diagram of several models: ``curves = {name: (y, p)}``; writes a PNG."""
    from chronorec.plots import pyplot, save_figure

    fig, (ax, axh) = pyplot().subplots(2, 1, figsize=(6, 7), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for row, (name, (y, p)) in enumerate(curves.items()):
        c = calibration_curve(y, p, bins=bins)
        line = ax.plot(c["mean_predicted"], c["observed"], "o-", label=name)[0]
        _label_counts(ax, c["mean_predicted"], c["observed"], c["count"], line.get_color(), row)
        axh.hist(np.asarray(p), bins=bins, range=(0, 1), histtype="step", label=name)
    ax.set_ylabel("observed frequency (n = cases in the bin)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    axh.set_xlabel("predicted probability")
    axh.set_ylabel("cases")
    axh.set_yscale("log")
    return save_figure(fig, path)


def reliability_curve(confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins of a predicted probability (the top-1 confidence of a ranking model, or the
    probability of a binary event) with the mean prediction, the observed frequency of ``correct``
    and the count per bin: ``bin_low, bin_high, confidence, accuracy, count``."""
    confidence = np.asarray(confidence, dtype=np.float64)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = which == b
        rows.append(
            {
                "bin_low": edges[b],
                "bin_high": edges[b + 1],
                "confidence": float(confidence[sel].mean()) if sel.any() else float("nan"),
                "accuracy": float(np.asarray(correct)[sel].mean()) if sel.any() else float("nan"),
                "count": int(sel.sum()),
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(curve: pd.DataFrame) -> float:
    c = curve[curve["count"] > 0]
    n = c["count"].sum()
    return float((c["count"] * (c["confidence"] - c["accuracy"]).abs()).sum() / n) if n else 0.0


def plot_reliability(curves: Mapping[str, pd.DataFrame], path: str | Path, *, title: str | None = None) -> Path:
    """Reliability diagram (accuracy vs. top-1 confidence per bin), one line per curve, as a PNG."""
    from chronorec.plots import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for row, (label, c) in enumerate(curves.items()):
        c = c[c["count"] > 0]
        line = ax.plot(c["confidence"], c["accuracy"], "o-", label=f"{label} (ECE {expected_calibration_error(c):.3f})")
        _label_counts(ax, c["confidence"], c["accuracy"], c["count"], line[0].get_color(), row)
    ax.set_xlabel("top-1 confidence")
    ax.set_ylabel("top-1 accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title or "Reliability on validation data")
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)
