"""The feature models of behaviour prediction: logistic regression and gradient boosting (scikit-learn)
on the temporal features, with the regularisation grids searched on validation."""

from __future__ import annotations

from typing import Any

import numpy as np

from chronorec.errors import ConfigError

__all__ = ["FEATURE_GRIDS", "FEATURE_MODELS", "fit_feature_model", "signed_log"]

FEATURE_MODELS = ("logistic", "gbm")


def signed_log(x: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): compresses counts and durations, keeps zero and the sign."""
    return np.sign(x) * np.log1p(np.abs(x))


# regularisation grids, searched on the validation cut-off only (never on test)
FEATURE_GRIDS: dict[str, list[dict[str, Any]]] = {
    "logistic": [{"C": c} for c in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)],
    "gbm": [
        {
            "learning_rate": lr,
            "max_iter": it,
            "max_leaf_nodes": leaves,
            "min_samples_leaf": msl,
            "l2_regularization": 1.0,
        }
        for lr, it in ((0.03, 150), (0.03, 400))
        for leaves in (4, 15)
        for msl in (50, 200)
    ],
}


def fit_feature_model(
    kind: str, x: np.ndarray, y: np.ndarray, *, seed: int = 0, params: dict[str, Any] | None = None
) -> Any:
    """A fitted scikit-learn classifier: ``logistic`` (signed-log, median imputation with
    missing indicators, standard scaling, L2 logistic regression with inverse strength ``C``) or
    ``gbm`` (histogram gradient boosting, which handles missing values itself; ``params`` override
    its settings). Fitted on the training cases only."""
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
        gp = {"learning_rate": 0.03, "max_iter": 200, "max_leaf_nodes": 15, "min_samples_leaf": 40}
        gp.update({"l2_regularization": 1.0, **params})
        model = HistGradientBoostingClassifier(**gp, random_state=seed)
    else:
        raise ConfigError(f"unknown feature model {kind!r}: use logistic or gbm")
    return model.fit(x, y)
