"""The training curve of one trained model: loss and validation metric per epoch, as a PNG.

``chronorec train`` writes it next to the model (``<model folder>/training_curve.png``; a picture
the service never loads, see :func:`chronorec.serving.service.check_model_dir`). The figures come
from the trainer's history (``fit_info["history"]``: one entry per epoch with ``loss`` and the
monitored validation metric ``val_<monitor>``); the best epoch, the one whose weights were kept,
is marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from chronorec.plots import pyplot, save_figure

CURVE_FILE = "training_curve.png"

__all__ = ["CURVE_FILE", "plot_training_curve", "validation_key", "write_training_curve"]

_LABELS = {"val_ndcg10": "validation NDCG@10", "val_pr_auc": "validation PR-AUC", "val_neg_mae": "validation -MAE"}


def validation_key(history: Sequence[Mapping[str, Any]]) -> str | None:
    """The monitored validation metric of a history (``val_ndcg10``...; not the timing ``val_seconds``)."""
    for entry in history:
        for key in entry:
            if key.startswith("val_") and key != "val_seconds":
                return key
    return None


def plot_training_curve(
    history: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "", best_epoch: int | None = None
) -> Path | None:
    """Loss (left axis) and the validation metric (right axis) per epoch; None for an empty history."""
    if not history:
        return None
    epochs = [int(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    loss = [float(h["loss"]) if h.get("loss") is not None else float("nan") for h in history]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, loss, marker="o", ms=3, color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.grid(alpha=0.3)
    key = validation_key(history)
    handles = ax.get_legend_handles_labels()[0]
    if key is not None:
        pts = [(e, float(h[key])) for e, h in zip(epochs, history, strict=True) if h.get(key) is not None]
        if pts:
            right = ax.twinx()
            handles += right.plot(
                *zip(*pts, strict=True), marker="s", ms=3, color="tab:orange", label=_LABELS.get(key, key)
            )
            right.set_ylabel(_LABELS.get(key, key), color="tab:orange")
    if best_epoch:
        handles.append(ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch ({best_epoch}): kept"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)
    if max(epochs) <= 20:
        ax.set_xticks(epochs)
    ax.set_title(title or "Training curve")
    return save_figure(fig, path)


class Fitted(Protocol):
    """What the curve reads of a model (:class:`chronorec.models.base.Recommender` declares it)."""

    kind: str
    fit_info: dict[str, Any]


def write_training_curve(model: Fitted, folder: str | Path, *, title: str | None = None) -> Path | None:
    """``<folder>/training_curve.png`` of a fitted model with a per-epoch history (None for models
    trained in one pass: popular, itemknn, ease)."""
    info = model.fit_info or {}
    history = info.get("history") or []
    if not history:
        return None
    label = title or f"{model.kind}: loss and validation per epoch"
    return plot_training_curve(history, Path(folder) / CURVE_FILE, title=label, best_epoch=info.get("best_epoch"))
