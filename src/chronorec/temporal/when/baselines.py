"""Baselines of the time-to-event task, all fitted on the training cut-offs only.

* :class:`KaplanMeierSegments` (base install): one Kaplan-Meier curve per recency x frequency
  segment of the training cases (tertiles of the hours since the user's last target event and of
  their count of target events, users without one a segment of their own per recency tertile of
  any event): every user of a segment gets its curve.
* :func:`fit_cox` and :func:`fit_rsf` (the ``survival`` extra: scikit-survival): Cox proportional
  hazards (ridge penalty chosen on the validation C-index) and a random survival forest (leaf size
  chosen so) on the temporal features (signed log, median imputation with missing indicators;
  standardised for Cox). The forest (100 trees) is trained on at most ``max_cases`` training cases
  with times rounded up to a grid of about 200 steps (its leaves store a curve per distinct time).
* :func:`fit_horizon_classifiers`: the per-horizon gradient-boosting classifiers of behaviour
  prediction (:func:`chronorec.temporal.behavior.fit_feature_model`), one per horizon H, trained on
  the training cases whose follow-up covers H, their settings chosen on validation ROC-AUC.

Each survival baseline answers ``survival(hours) -> (n, len(hours))`` for a set of cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from chronorec.errors import ConfigError
from chronorec.temporal.when.data import WhenData
from chronorec.temporal.when.metrics import concordance, kaplan_meier, step_at

__all__ = [
    "KaplanMeierSegments",
    "fit_cox",
    "fit_horizon_classifiers",
    "fit_rsf",
    "require_sksurv",
    "segment_columns",
]


def require_sksurv() -> Any:
    """scikit-survival, or a :class:`ConfigError` naming the extra that installs it."""
    try:
        import sksurv  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the Cox and random-survival-forest baselines need scikit-survival: pip install 'chronorec[survival]' "
            "(or leave cox and rsf out of --baselines; the learned model and Kaplan-Meier run without it)"
        ) from None
    import sksurv

    return sksurv


def segment_columns(data: WhenData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hours since the last target event, number of target events, hours since the last event) per case."""
    t = data.target
    f = data.features
    rec = f.get(f"hours_since_last_{t}", pd.Series(np.nan, index=f.index)).to_numpy(np.float64)
    freq = f.get(f"n_{t}", pd.Series(0.0, index=f.index)).to_numpy(np.float64)
    any_rec = f["hours_since_last"].to_numpy(np.float64)
    return rec, np.nan_to_num(freq), any_rec


@dataclass
class KaplanMeierSegments:
    """Kaplan-Meier per recency x frequency segment (see the module docstring)."""

    rec_edges: np.ndarray
    freq_edges: np.ndarray
    any_edges: np.ndarray
    curves: dict[int, tuple[np.ndarray, np.ndarray]]
    overall: tuple[np.ndarray, np.ndarray]

    @staticmethod
    def _edges(x: np.ndarray) -> np.ndarray:
        x = x[np.isfinite(x)]
        return np.unique(np.quantile(x, [1 / 3, 2 / 3])) if len(x) else np.zeros(0)

    def segment(self, data: WhenData, rows: np.ndarray) -> np.ndarray:
        rec, freq, any_rec = (c[rows] for c in segment_columns(data))
        r = np.searchsorted(self.rec_edges, rec, side="right")
        q = np.searchsorted(self.freq_edges, freq, side="right")
        a = np.searchsorted(self.any_edges, any_rec, side="right")
        never = ~np.isfinite(rec)
        return np.where(never, 100 + a, r * 10 + q)

    @classmethod
    def fit(cls, data: WhenData, rows: np.ndarray, *, min_cases: int = 20) -> KaplanMeierSegments:
        ti = data.target_index
        rec, freq, any_rec = (c[rows] for c in segment_columns(data))
        has = np.isfinite(rec)
        self = cls(cls._edges(rec[has]), cls._edges(freq[has]), cls._edges(any_rec), {}, (np.zeros(0), np.zeros(0)))
        t, e = data.time[rows, ti], data.observed[rows, ti]
        self.overall = kaplan_meier(t, e)
        seg = self.segment(data, rows)
        for s in np.unique(seg):
            m = seg == s
            if m.sum() >= min_cases:
                self.curves[int(s)] = kaplan_meier(t[m], e[m])
        return self

    def survival(self, data: WhenData, rows: np.ndarray, hours: Sequence[float]) -> np.ndarray:
        seg = self.segment(data, rows)
        out = np.empty((len(rows), len(hours)))
        for s in np.unique(seg):
            m = seg == s
            times, surv = self.curves.get(int(s), self.overall)
            out[m] = step_at(times, surv, np.asarray(hours, dtype=np.float64))[None, :]
        return out


def _informative(x: np.ndarray) -> np.ndarray:
    """Indices of the columns of ``x`` with at least two distinct finite values."""
    ok = []
    for j in range(x.shape[1]):
        v = x[:, j][np.isfinite(x[:, j])]
        if len(v) and v.min() < v.max():
            ok.append(j)
    return np.asarray(ok, dtype=np.int64)


def _design(data: WhenData, train_rows: np.ndarray, *, scale: bool) -> tuple[Any, np.ndarray]:
    """(fitted transformer, X of every case): signed log, median imputation with indicators, optional scaling."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from chronorec.temporal.behavior.feature_models import signed_log

    steps = [FunctionTransformer(signed_log), SimpleImputer(strategy="median", add_indicator=True)]
    if scale:
        steps.append(StandardScaler())
    x = data.features.to_numpy(np.float64)
    tr = x[train_rows]
    keep = _informative(tr)
    pipe = make_pipeline(*steps).fit(tr[:, keep])
    return pipe, pipe.transform(x[:, keep])


def _surv_target(data: WhenData, rows: np.ndarray, round_to: float | None = None) -> Any:
    from sksurv.util import Surv

    ti = data.target_index
    t = data.time[rows, ti].astype(np.float64)
    if round_to:
        t = np.maximum(np.ceil(t / round_to) * round_to, round_to)
    return Surv.from_arrays(data.observed[rows, ti].astype(bool), t)


def _curves(fns: Sequence[Any], hours: Sequence[float]) -> np.ndarray:
    """(n, len(hours)) from scikit-survival step functions, held flat past their domain."""
    h = np.asarray(hours, dtype=np.float64)
    out = np.empty((len(fns), len(h)))
    for i, fn in enumerate(fns):
        lo, hi = fn.domain
        out[i] = np.where(h < lo, 1.0, fn(np.clip(h, lo, hi)))
    return out


@dataclass
class SkSurvModel:
    """A fitted scikit-survival estimator with its input transformer and the settings chosen on validation."""

    name: str
    estimator: Any
    X: np.ndarray  # every case's design row
    params: dict[str, Any]
    search: list[dict[str, Any]]

    def survival(self, data: WhenData, rows: np.ndarray, hours: Sequence[float]) -> np.ndarray:
        fns = self.estimator.predict_survival_function(self.X[rows])
        return _curves(fns, hours)


def _search(name: str, make: Any, grid: Sequence[dict[str, Any]], data: WhenData, X: np.ndarray, fit_rows: np.ndarray,
            y: Any) -> SkSurvModel:  # fmt: skip
    """The estimator of ``grid`` with the best validation C-index (risk = 1 - S(validation follow-up))."""
    va = data.part("validation")
    ti = data.target_index
    tau = data.follow_up_hours("validation")
    best, search = None, []
    for params in grid:
        est = make(**params).fit(X[fit_rows], y)
        m = SkSurvModel(name, est, X, params, [])
        risk = 1.0 - m.survival(data, va, [tau])[:, 0]
        c = concordance(data.time[va, ti], data.observed[va, ti], risk)
        search.append({"params": params, "validation_cindex": c})
        if best is None or c > best[1]:
            best = (m, c)
    best[0].search = search
    return best[0]


def fit_cox(data: WhenData, *, alphas: Sequence[float] = (0.1, 1.0, 10.0, 100.0)) -> SkSurvModel:
    """Cox PH on the standardised features, its ridge penalty chosen on the validation C-index."""
    require_sksurv()
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    tr = data.part("train")
    _, X = _design(data, tr, scale=True)
    y = _surv_target(data, tr)
    grid = [{"alpha": a, "ties": "efron", "n_iter": 200} for a in alphas]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _search("cox", CoxPHSurvivalAnalysis, grid, data, X, tr, y)


def fit_rsf(
    data: WhenData,
    *,
    leaves: Sequence[int] = (20, 60),
    n_estimators: int = 100,
    max_cases: int = 10000,
    time_grid_hours: float | None = None,
    seed: int = 0,
    n_jobs: int | None = None,
) -> SkSurvModel:
    """A random survival forest on the features, its leaf size chosen on the validation C-index. Times
    are rounded up to ``time_grid_hours`` (default: the longest training time / 200, so at most about
    200 distinct times: each leaf stores a curve over them)."""
    require_sksurv()
    from sksurv.ensemble import RandomSurvivalForest

    tr = data.part("train")
    _, X = _design(data, tr, scale=False)
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(tr, size=min(max_cases, len(tr)), replace=False))
    step = time_grid_hours or float(data.time[tr, data.target_index].max()) / 200
    y = _surv_target(data, fit_rows, round_to=step)

    def make(**p: Any) -> Any:
        return RandomSurvivalForest(n_estimators=n_estimators, max_features="sqrt", random_state=seed, n_jobs=n_jobs,
                                    **p)  # fmt: skip

    grid = [{"min_samples_leaf": k} for k in leaves]
    return _search("rsf", make, grid, data, X, fit_rows, y)


def fit_horizon_classifiers(
    data: WhenData, horizons_hours: Sequence[float], *, seed: int = 0, kind: str = "gbm"
) -> dict[float, dict[str, Any]]:
    """One classifier of "the target within H" per horizon whose label is known on the training and the
    validation cases (follow-up at least H): ``{H: {"model", "params", "validation_roc_auc", ...}}``;
    a horizon longer than the validation follow-up is left out."""
    from chronorec.evaluation.classification import binary_metrics
    from chronorec.temporal.behavior import FEATURE_GRIDS, fit_feature_model

    ti = data.target_index
    x = data.features.to_numpy(np.float64)
    follow = (data.cases["end"] - data.cases["cutoff"]).to_numpy() / 3600.0
    out: dict[float, dict[str, Any]] = {}
    for h in horizons_hours:
        tr = data.part("train")
        tr = tr[follow[tr] >= h - 1e-6]
        va = data.part("validation")
        if not len(tr) or follow[va].max() < h - 1e-6:
            continue
        y = (data.observed[:, ti] & (data.time[:, ti] <= h)).astype(np.int64)
        if len(np.unique(y[tr])) < 2 or len(np.unique(y[va])) < 2:
            continue
        cols = _informative(x[tr])  # a column with no value (or one) in training is left out
        best = None
        for params in FEATURE_GRIDS[kind]:
            m = fit_feature_model(kind, x[tr][:, cols], y[tr], seed=seed, params=params)
            auc = float(binary_metrics(y[va], m.predict_proba(x[va][:, cols])[:, 1])["roc_auc"])
            if best is None or auc > best["validation_roc_auc"]:
                best = {"model": m, "params": params, "validation_roc_auc": auc, "train_cases": int(len(tr)),
                        "columns": cols}  # fmt: skip
        out[float(h)] = best
    return out
