"""Classification metrics, written out in numpy so that each one can be checked by hand.

* :func:`binary_metrics`: accuracy, precision / recall / F1 per class and macro, ROC-AUC
  (tie-aware, Mann-Whitney), PR-AUC (average precision, step interpolation as in scikit-learn),
  Brier score, base rate and the confusion matrix, at a probability threshold.
* :func:`multiclass_metrics`: the same for K classes from a probability matrix (ROC-AUC and
  PR-AUC one-vs-rest, macro-averaged over classes present; Brier = mean squared error of the
  one-hot target, summed over classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "average_precision",
    "binary_metrics",
    "confusion_matrix",
    "multiclass_metrics",
    "roc_auc",
]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2.

    NaN if only one class is present.
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    r = rankdata(s)  # average ranks handle ties
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """PR-AUC as average precision: sum over thresholds of (R_k - R_{k-1}) * P_k (tied scores
    form one threshold). NaN without positives."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, yy = s[order], y[order]
    tp = np.cumsum(yy)
    last = np.r_[s[1:] != s[:-1], True]  # the last row of each tied group
    tp, k = tp[last], (np.flatnonzero(last) + 1)
    precision = tp / k
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of cases of true class ``i`` predicted as ``j``."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _prf(cm: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    tp = np.diag(cm).astype(np.float64)
    pred_n = cm.sum(0).astype(np.float64)
    true_n = cm.sum(1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred_n > 0, tp / pred_n, 0.0)
        recall = np.where(true_n > 0, tp / true_n, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = {
        str(n): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for n, p, r, f, s in zip(names, precision, recall, f1, true_n, strict=True)
    }
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "per_class": per_class,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "confusion_matrix": cm.tolist(),
    }


def binary_metrics(y: np.ndarray, p: np.ndarray, *, threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of predicted probabilities ``p`` for labels ``y`` in {0, 1}.

    Threshold metrics (accuracy, precision, recall, F1 per class and macro, the confusion matrix)
    predict 1 where ``p >= threshold``; ``precision``, ``recall`` and ``f1`` at the top level are
    those of the positive class.
    """
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    pred = (p >= threshold).astype(np.int64)
    out = _prf(confusion_matrix(y, pred, 2), ["0", "1"])
    pos = out["per_class"]["1"]
    out.update(
        {
            "precision": pos["precision"],
            "recall": pos["recall"],
            "f1": pos["f1"],
            "roc_auc": roc_auc(y, p),
            "pr_auc": average_precision(y, p),
            "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan"),
            "base_rate": float(y.mean()) if len(y) else float("nan"),
            "threshold": threshold,
            "n": len(y),
        }
    )
    return out


def multiclass_metrics(y: np.ndarray, proba: np.ndarray, *, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics of a probability matrix ``proba`` (n, K) for labels ``y`` in 0..K-1 (argmax decision)."""
    y = np.asarray(y).astype(np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    k = proba.shape[1]
    names = list(classes) if classes is not None else [str(i) for i in range(k)]
    out = _prf(confusion_matrix(y, proba.argmax(1), k), names)
    onehot = np.eye(k)[y]
    aucs = [roc_auc(y == c, proba[:, c]) for c in range(k)]
    aps = [average_precision(y == c, proba[:, c]) for c in range(k)]
    for n, a, ap in zip(names, aucs, aps, strict=True):
        out["per_class"][n]["roc_auc"] = a
        out["per_class"][n]["pr_auc"] = ap
    out["macro_roc_auc"] = float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")
    out["macro_pr_auc"] = float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")
    out["brier"] = float(np.mean(((proba - onehot) ** 2).sum(1))) if len(y) else float("nan")
    out["log_loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)))) if len(y) else 0.0
    out["n"] = len(y)
    return out
