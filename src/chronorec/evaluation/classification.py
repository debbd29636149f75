"""Classification metrics, computed by scikit-learn and returned as plain JSON-ready dicts.

* :func:`binary_metrics`: accuracy, precision / recall / F1 per class and macro, ROC-AUC
  (tie-aware), PR-AUC (average precision, step interpolation), Brier score, base rate and the
  confusion matrix, at a probability threshold.
* :func:`multiclass_metrics`: the same for K classes from a probability matrix (ROC-AUC and
  PR-AUC one-vs-rest, macro-averaged over classes present; Brier = mean squared error of the
  one-hot target, summed over classes; log loss with probabilities clipped at 1e-15).

Undefined values are NaN rather than an exception: ROC-AUC with one class present, average
precision without positives, Brier score and base rate of no cases.
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
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(score, dtype=np.float64)))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """PR-AUC as average precision: sum over thresholds of (R_k - R_{k-1}) * P_k (tied scores
    form one threshold). NaN without positives."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y).astype(bool)
    if not y.any():
        return float("nan")
    return float(average_precision_score(y, np.asarray(score, dtype=np.float64)))


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of cases of true class ``i`` predicted as ``j``."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    labels = np.arange(n_classes)
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        return np.zeros((n_classes, n_classes), np.int64)
    return sk_confusion_matrix(y, np.asarray(pred, dtype=np.int64), labels=labels)


def _threshold_metrics(y: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class and macro precision / recall / F1 (0 where undefined) and the confusion matrix."""
    from sklearn.metrics import precision_recall_fscore_support

    k = len(names)
    cm = confusion_matrix(y, pred, k)
    if len(y):
        precision, recall, f1, support = precision_recall_fscore_support(
            y, pred, labels=np.arange(k), zero_division=0.0
        )
    else:
        precision = recall = f1 = np.zeros(k)
        support = np.zeros(k, np.int64)
    per_class = {
        str(n): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for n, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    }
    return {
        "accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "per_class": per_class,
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
        "confusion_matrix": cm.tolist(),
    }


def binary_metrics(y: np.ndarray, p: np.ndarray, *, threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of predicted probabilities ``p`` for labels ``y`` in {0, 1}.

    Threshold metrics (accuracy, precision, recall, F1 per class and macro, the confusion matrix)
    predict 1 where ``p >= threshold``; ``precision``, ``recall`` and ``f1`` at the top level are
    those of the positive class.
    """
    from sklearn.metrics import brier_score_loss

    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    out = _threshold_metrics(y, (p >= threshold).astype(np.int64), ["0", "1"])
    pos = out["per_class"]["1"]
    out.update(
        {
            "precision": pos["precision"],
            "recall": pos["recall"],
            "f1": pos["f1"],
            "roc_auc": roc_auc(y, p),
            "pr_auc": average_precision(y, p),
            "brier": float(brier_score_loss(y, p, labels=[0, 1])) if len(y) else float("nan"),
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
    out = _threshold_metrics(y, proba.argmax(1), names)
    aucs = [roc_auc(y == c, proba[:, c]) for c in range(k)]
    aps = [average_precision(y == c, proba[:, c]) for c in range(k)]
    for n, a, ap in zip(names, aucs, aps, strict=True):
        out["per_class"][n]["roc_auc"] = a
        out["per_class"][n]["pr_auc"] = ap
    out["macro_roc_auc"] = float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")
    out["macro_pr_auc"] = float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")
    # the multi-class Brier score and the log loss are one line each; scikit-learn's versions
    # renormalise or clip differently, which would move the validation search of next_type
    onehot = np.eye(k)[y]
    out["brier"] = float(np.mean(((proba - onehot) ** 2).sum(1))) if len(y) else float("nan")
    out["log_loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)))) if len(y) else 0.0
    out["n"] = len(y)
    return out
