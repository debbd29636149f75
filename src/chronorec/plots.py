"""Plots of a run: training curves and metric comparisons (matplotlib, Agg backend, PNG files).

matplotlib is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, dpi: int = 110) -> Path:
    """Lay out ``fig``, write it as a PNG (creating the folder), close it and return the path."""
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=dpi)
    pyplot().close(fig)
    return p


def training_histories(results: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``{name: fit_info["history"]}`` for the models that have a non-empty training history.

    ``results`` maps a model name to either a fit_info dict or a result dict holding ``fit_info``.
    """
    out = {}
    for name, res in results.items():
        info = res.get("fit_info", res) if isinstance(res, Mapping) else {}
        hist = (info or {}).get("history") or []
        if hist:
            out[name] = list(hist)
    return out


def plot_training_curves(
    results: Mapping[str, Mapping[str, Any]], path: str | Path, *, title: str | None = None
) -> Path | None:
    """Loss and validation NDCG@10 per epoch, one line per model. Returns the PNG path (None if no curves)."""
    histories = training_histories(results)
    if not histories:
        return None
    plt = pyplot()
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for name, hist in histories.items():
        epochs = [h.get("epoch", i + 1) for i, h in enumerate(hist)]
        loss = [h.get("loss") for h in hist]
        val = [h.get("val_ndcg10") for h in hist]
        line = ax_loss.plot(epochs, [float("nan") if v is None else v for v in loss], marker="o", ms=3, label=name)[0]
        pts = [(e, v) for e, v in zip(epochs, val, strict=True) if v is not None]
        if pts:
            ax_val.plot(*zip(*pts, strict=True), marker="o", ms=3, color=line.get_color(), label=name)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("Training loss")
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("NDCG@10")
    ax_val.set_title("Validation NDCG@10")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_metrics(
    metrics: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    names: Sequence[str] = ("HR@10", "NDCG@10"),
    title: str | None = None,
) -> Path:
    """Grouped bars of ``names`` (default HR@10 and NDCG@10) per model. ``metrics``: ``{model: {metric: value}}``."""
    import numpy as np

    plt = pyplot()
    models = list(metrics)
    x = np.arange(len(models))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(models) + 2), 4))
    for j, m in enumerate(names):
        vals = [float(metrics[mod].get(m, float("nan"))) for mod in models]
        bars = ax.bar(x + (j - (len(names) - 1) / 2) * width, vals, width, label=m)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    ax.set_xticks(x, models, rotation=20, ha="right")
    ax.set_ylabel("value")
    ax.set_title(title or "Test metrics (full-catalogue ranking)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)
