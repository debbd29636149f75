"""Fitted scikit-learn classifiers and calibrators as plain arrays: saved with safetensors, scored in
numpy, never pickled.

* :func:`export_gbm` / :func:`gbm_scores`: a ``HistGradientBoostingClassifier`` (binary, numeric
  features) as its trees' node arrays; the score walks them as scikit-learn does (a missing value
  goes where the node sends missing values, else left when ``x <= threshold``), so the probabilities
  equal ``predict_proba``'s.
* :func:`export_logistic` / :func:`logistic_scores`: the feature models' logistic pipeline (signed
  log, median imputation with missing indicators, standard scaling, logistic regression).
* :func:`fit_calibrator` / :func:`calibrate`: Platt scaling (a logistic regression on the logit of
  the score) or isotonic regression (its step points, interpolated), fitted on validation cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chronorec.errors import ConfigError, ModelLoadError

__all__ = ["calibrate", "export_gbm", "export_logistic", "fit_calibrator", "gbm_scores", "logistic_scores"]

_NODE_FIELDS = ("feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf", "value")


def export_gbm(classifier: Any) -> dict[str, np.ndarray]:
    """The trees of a fitted binary ``HistGradientBoostingClassifier`` as arrays (nodes of all trees
    concatenated, child indices made global) plus the baseline raw score."""
    preds = getattr(classifier, "_predictors", None)
    if preds is None or len(getattr(classifier, "classes_", [])) != 2:
        raise ConfigError("only a fitted binary HistGradientBoostingClassifier can be exported")
    cols: dict[str, list[np.ndarray]] = {f: [] for f in _NODE_FIELDS}
    roots, offset = [], 0
    for (tree,) in preds:
        nodes = tree.nodes
        if "is_categorical" in nodes.dtype.names and nodes["is_categorical"].any():
            raise ConfigError("categorical splits cannot be exported")
        roots.append(offset)
        for f in _NODE_FIELDS:
            v = nodes[f].astype(np.float64 if f in ("num_threshold", "value") else np.int64)
            cols[f].append(v + offset if f in ("left", "right") else v)
        offset += len(nodes)
    out = {f"gbm_{f}": np.concatenate(v) for f, v in cols.items()}
    out["gbm_roots"] = np.asarray(roots, dtype=np.int64)
    out["gbm_baseline"] = np.asarray(classifier._baseline_prediction, dtype=np.float64).reshape(-1)
    return out


def gbm_scores(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """P(y = 1) of the exported trees for the rows of ``X``."""
    X = np.asarray(X, dtype=np.float64)
    feat, thr = arrays["gbm_feature_idx"], arrays["gbm_num_threshold"]
    miss_left, left, right = arrays["gbm_missing_go_to_left"].astype(bool), arrays["gbm_left"], arrays["gbm_right"]
    leaf, value = arrays["gbm_is_leaf"].astype(bool), arrays["gbm_value"]
    rows = np.arange(len(X))
    raw = np.full(len(X), float(arrays["gbm_baseline"][0]))
    for root in arrays["gbm_roots"]:
        node = np.full(len(X), root, dtype=np.int64)
        active = ~leaf[node]
        while active.any():
            n = node[active]
            x = X[rows[active], feat[n]]
            go_left = np.where(np.isnan(x), miss_left[n], x <= thr[n])
            node[active] = np.where(go_left, left[n], right[n])
            active = ~leaf[node]
        raw += value[node]
    return 1.0 / (1.0 + np.exp(-raw))


def export_logistic(pipeline: Any) -> dict[str, np.ndarray]:
    """The arrays of the feature models' logistic pipeline (see
    :func:`~chronorec.temporal.behavior.feature_models.fit_feature_model`)."""
    _, imputer, scaler, lr = (step for _, step in pipeline.steps)
    ind = imputer.indicator_.features_ if imputer.indicator_ is not None else np.zeros(0, dtype=np.int64)
    return {
        "lr_median": np.asarray(imputer.statistics_, dtype=np.float64),
        "lr_indicator": np.asarray(ind, dtype=np.int64),
        "lr_mean": np.asarray(scaler.mean_, dtype=np.float64),
        "lr_scale": np.asarray(scaler.scale_, dtype=np.float64),
        "lr_coef": np.asarray(lr.coef_[0], dtype=np.float64),
        "lr_intercept": np.asarray(lr.intercept_, dtype=np.float64),
    }


def logistic_scores(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """P(y = 1) of the exported logistic pipeline."""
    from chronorec.temporal.behavior.feature_models import signed_log

    Z = signed_log(np.asarray(X, dtype=np.float64))
    miss = np.isnan(Z)
    Z = np.where(miss, arrays["lr_median"][None, :], Z)
    Z = np.column_stack([Z, miss[:, arrays["lr_indicator"]].astype(np.float64)])
    Z = (Z - arrays["lr_mean"]) / arrays["lr_scale"]
    return 1.0 / (1.0 + np.exp(-(Z @ arrays["lr_coef"] + arrays["lr_intercept"][0])))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_calibrator(kind: str, p: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """``platt``: P = sigmoid(a * logit(p) + b); ``isotonic``: a non-decreasing step map; ``none``."""
    if kind == "none":
        return {"cal_kind": np.array([0])}
    if len(np.unique(y)) < 2:
        raise ConfigError("the calibration cases hold one class only: a longer history or another horizon")
    if kind == "platt":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
        return {"cal_kind": np.array([1]), "cal_ab": np.array([lr.coef_[0, 0], lr.intercept_[0]])}
    if kind == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        return {"cal_kind": np.array([2]), "cal_x": iso.X_thresholds_, "cal_y": iso.y_thresholds_}
    raise ConfigError(f"calibration must be platt, isotonic or none, not {kind!r}")


def calibrate(cal: dict[str, np.ndarray], p: np.ndarray) -> np.ndarray:
    """Apply a calibrator of :func:`fit_calibrator` to scores ``p``."""
    kind = int(cal["cal_kind"][0])
    if kind == 0:
        return p
    if kind == 1:
        a, b = cal["cal_ab"]
        return 1.0 / (1.0 + np.exp(-(a * _logit(p) + b)))
    if kind == 2:
        return np.interp(p, cal["cal_x"], cal["cal_y"])
    raise ModelLoadError(f"unknown calibrator kind {kind}")
