"""The feature models of behaviour prediction: logistic regression and gradient boosting (scikit-learn)
on the temporal features, with the regularisation grids searched on validation."""

from __future__ import annotations

from typing import Any

import numpy as np

from chronorec.errors import ConfigError

__all__ = ["FEATURE_GRIDS", "FEATURE_MODELS", "GBM_DEFAULTS", "fit_feature_model", "signed_log"]

FEATURE_MODELS = ("logistic", "gbm")


def signed_log(x: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): compresses counts and durations, keeps zero and the sign."""
    return np.sign(x) * np.log1p(np.abs(x))


# regularisation grids, searched on the validation cut-off only (never on test)
FEATURE_GRIDS: dict[str, list[dict[str, Any]]] = {
    "logistic": [{"C": c} for c in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)],
    # learning rate 0.1, trees added until the validation cut-off's log loss stops improving
    # (20 rounds): three fits of 30-150 trees each, where the former grid of eight fits at rate 0.03
    # grew 2,200 trees (95 s on 300 synthetic users, benchmarks/behavior_prediction.py)
    "gbm": [
        {"max_leaf_nodes": leaves, "min_samples_leaf": msl, "l2_regularization": 1.0}
        for leaves, msl in ((7, 100), (15, 40), (31, 200))
    ],
}


GBM_DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.1,
    "max_iter": 300,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "n_iter_no_change": 20,
}


def fit_feature_model(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> Any:
    """A fitted scikit-learn classifier: ``logistic`` (signed-log, median imputation with
    missing indicators, standard scaling, L2 logistic regression with inverse strength ``C``) or
    ``gbm`` (histogram gradient boosting, which handles missing values itself; ``params`` override
    :data:`GBM_DEFAULTS`). Fitted on the training cases only; ``validation`` (the validation
    cut-off's ``x, y``) stops the boosting when its log loss no longer improves (without it,
    scikit-learn's own early stopping on a random tenth of the training cases above 10,000 cases)."""
    params = params or {}
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if kind == "logistic":
        model = make_pipeline(
            FunctionTransformer(signed_log),
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=params.get("C", 0.3), max_iter=2000),
        )
    elif kind == "gbm":
        model = HistGradientBoostingClassifier(**{**GBM_DEFAULTS, **params}, random_state=seed)
        if validation is not None and len(np.unique(validation[1])) > 1 and set(np.unique(validation[1])) <= set(y):
            model.set_params(early_stopping=True)
            return model.fit(x, y, X_val=validation[0], y_val=validation[1])
        return model.fit(x, y)
    else:
        raise ConfigError(f"unknown feature model {kind!r}: use logistic or gbm")
    return model.fit(x, y)
