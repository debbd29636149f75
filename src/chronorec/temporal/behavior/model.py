"""A saved behaviour model: per-user probabilities of the target behaviour within the horizon.

:func:`fit_behavior_model` builds the cases at the cut-offs of
:func:`~chronorec.temporal.behavior.data.make_cutoffs` (training cut-offs every ``step``, then a
validation cut-off and a test cut-off one horizon apart, the test one the last with a full horizon
of data after it), fits a feature model (gradient boosting or logistic regression, its
regularisation chosen on validation by ROC-AUC) on the training cases, fits the calibrator (Platt or
isotonic) on the validation cases, and scores the untouched test cases: ROC-AUC, PR-AUC, Brier and
log loss before and after calibration, and the reliability table (mean prediction, observed rate
and count per bin).

:class:`BehaviorModel` predicts at any time ``at`` (default: the end of its data) for every user with
an event before ``at``, from the events saved with it or from new ones. Saved as JSON (settings,
feature names, test figures) + safetensors (the trees or coefficients and the calibrator) + Parquet
(the events needed for the features): no pickle.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.errors import ConfigError, DataError
from chronorec.evaluation.classification import binary_metrics
from chronorec.evaluation.reliability_curves import expected_calibration_error, reliability_curve
from chronorec.temporal.behavior.data import make_behavior_data
from chronorec.temporal.behavior.feature_models import FEATURE_GRIDS, fit_feature_model
from chronorec.temporal.behavior.portable import (
    calibrate,
    export_gbm,
    export_logistic,
    fit_calibrator,
    gbm_scores,
    logistic_scores,
)
from chronorec.temporal.behavior.timescale import DAILY_RECENT_S

__all__ = ["BehaviorModel", "fit_behavior_model", "load_behavior_model", "parse_time"]

KIND = "behavior-model"
SAVED_KINDS = ("gbm", "logistic")


def parse_time(value: str | int | float | None) -> int | None:
    """UTC seconds from epoch seconds or an ISO time (naive = UTC); None passes through."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"time {value!r} is neither epoch seconds nor an ISO date/time") from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.timestamp())


@dataclass
class BehaviorModel:
    """A fitted, calibrated classifier of "the user performs ``target`` within ``horizon_s``"."""

    kind: str  # gbm or logistic
    arrays: dict[str, np.ndarray]  # the model's and the calibrator's
    features: list[str]  # model input columns (the feature table's, then past_rate)
    settings: dict[str, Any]  # target, horizon_s, freq, windows, utc_offset_hours, classes
    events: pd.DataFrame = field(repr=False)
    report: dict[str, Any] = field(default_factory=dict)
    holdout: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # test labels and scores (not saved)

    @property
    def as_of(self) -> int:
        """The end of the model's data: one second after its last event."""
        return int(self.events[C.TIME].max()) + 1

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities of the model input rows ``X``."""
        return gbm_scores(self.arrays, X) if self.kind == "gbm" else logistic_scores(self.arrays, X)

    def proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the model input rows ``X``."""
        return np.clip(calibrate(self.arrays, self.scores(X)), 0.0, 1.0)

    def predict(self, events: pd.DataFrame | None = None, *, at: int | None = None) -> pd.DataFrame:
        """``user_id, probability, score, at`` for every user with an event before ``at`` (default:
        the end of the events), from ``events`` (default: the model's own)."""
        ev = self.events if events is None else events
        at = self.as_of if at is None and events is None else at
        if at is None:
            at = int(pd.to_numeric(ev[C.TIME]).max()) + 1
        if int(at) <= int(pd.to_numeric(ev[C.TIME]).min()):
            raise DataError(f"no events before {pd.Timestamp(int(at), unit='s')} UTC: a later --at")
        data = _cases(ev, self.settings, {"test": [int(at)]})
        X = _align(data, self.features)
        raw = self.scores(X)
        return pd.DataFrame(
            {
                C.USER: data.cases[C.USER].to_numpy(),
                "probability": np.clip(calibrate(self.arrays, raw), 0.0, 1.0),
                "score": raw,
                "at": pd.Timestamp(int(at), unit="s", tz="UTC"),
            }
        )

    def save(self, path: str | Path) -> Path:
        """JSON + safetensors + Parquet, atomically (see the module docstring)."""
        from chronorec.artifacts import atomic_dir, save_tensors, write_manifest

        meta = {"kind": self.kind, "features": self.features, "settings": self.settings, "report": self.report}
        with atomic_dir(path) as tmp:
            (tmp / "behavior.json").write_text(json.dumps(meta, indent=2, default=float))
            save_tensors(tmp / "behavior.safetensors", self.arrays)
            self.events.to_parquet(tmp / "events.parquet", index=False)
            write_manifest(tmp, KIND)
        return Path(path)


def load_behavior_model(path: str | Path) -> BehaviorModel:
    """A model saved by :meth:`BehaviorModel.save` (manifest and checksums verified)."""
    from chronorec.artifacts import load_tensors, open_saved

    d = open_saved(path, KIND, "behaviour model", "predict-behavior --save")
    meta = json.loads((d / "behavior.json").read_text())
    return BehaviorModel(
        kind=meta["kind"],
        arrays=load_tensors(d / "behavior.safetensors"),
        features=list(meta["features"]),
        settings=meta["settings"],
        events=pd.read_parquet(d / "events.parquet"),
        report=meta.get("report", {}),
    )


def _cases(events: pd.DataFrame, settings: dict[str, Any], cutoffs: dict[str, list[int]]) -> Any:
    """The cases at ``cutoffs`` with the model's lengths (a model saved before the recency windows
    followed the horizon has the daily ones: 1, 6, 24 and 72 hours)."""
    return make_behavior_data(
        events,
        target=settings["target"],
        horizon_s=int(settings["horizon_s"]),
        cutoffs=cutoffs,
        freq=settings["freq"],
        windows=tuple(settings["windows"]),
        utc_offset_hours=float(settings["utc_offset_hours"]),
        recent_s=settings.get("recent_s", DAILY_RECENT_S),
    )


def _align(data: Any, names: Sequence[str]) -> np.ndarray:
    """The model input of ``data`` in the column order ``names`` (a column the data lack is missing)."""
    frame = data.features.assign(past_rate=data.past_rate)
    return frame.reindex(columns=list(names)).to_numpy(np.float64)


def _reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    c = reliability_curve(p, y, n_bins=bins)
    return [
        {
            "bin": f"{r.bin_low:.1f}-{r.bin_high:.1f}",
            "mean_predicted": r.confidence,
            "observed": r.accuracy,
            "count": int(r.count),
        }
        for r in c.itertuples()
        if r.count > 0
    ]


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    m = binary_metrics(y, p)
    out = {k: float(m[k]) for k in ("roc_auc", "pr_auc", "brier", "log_loss") if k in m}
    out["ece"] = expected_calibration_error(reliability_curve(p, y, n_bins=10))
    out["mean_predicted"], out["positive_rate"] = float(np.mean(p)), float(np.mean(y))
    return out


def _search(kind: str, X: np.ndarray, y: np.ndarray, rows: dict[str, np.ndarray], seed: int) -> tuple[Any, dict, list]:
    """The model of ``kind`` whose regularisation scores the best validation ROC-AUC."""
    best, search = None, []
    xv, yv = X[rows["validation"]], y[rows["validation"]]
    for params in FEATURE_GRIDS[kind]:
        m = fit_feature_model(kind, X[rows["train"]], y[rows["train"]], seed=seed, params=params, validation=(xv, yv))
        auc = float(binary_metrics(yv, m.predict_proba(xv)[:, 1])["roc_auc"])
        search.append({"params": params, "validation_roc_auc": auc} | _n_trees(kind, m))
        if best is None or auc > best[1]:
            best = (m, auc, params)
    return best[0], best[2], search


def _scale_settings(scale: Any) -> dict[str, Any]:
    """What a saved model keeps of its time scale: what its features at a new time are built with."""
    return {
        "horizon_s": scale.horizon_s,
        "freq": scale.freq,
        "windows": list(scale.windows),
        "recent_s": list(scale.recent_s),
    }


def _n_trees(kind: str, fitted: Any) -> dict[str, int]:
    """The number of boosting rounds early stopping kept (gradient boosting only)."""
    return {"n_trees": int(fitted.n_iter_)} if kind == "gbm" else {}


def fit_behavior_model(  # noqa: PLR0913 - the public keyword API: one keyword per protocol choice
    events: pd.DataFrame,
    *,
    model: str = "gbm",
    target: str = "buy",
    horizon_s: int | None = None,
    step_s: int | None = None,
    n_train_cutoffs: int | None = None,
    freq: str | None = None,
    windows: Sequence[int | str] | None = None,
    utc_offset_hours: float = 0.0,
    calibration: str = "platt",
    test_cutoff: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    min_history_s: int | None = None,
) -> BehaviorModel:
    """Fit, calibrate on validation and score on the held-out test cut-off (see the module docstring;
    ``test_cutoff``, UTC seconds, moves it back in time). Lengths left None come from the data's span
    (:mod:`~chronorec.temporal.behavior.timescale`). ``threads`` caps the OpenMP threads of the
    gradient boosting (default: scikit-learn's own)."""
    from chronorec.datasets.temporal import event_frame
    from chronorec.temporal.behavior.data import make_cutoffs, resolve_scale

    if model not in SAVED_KINDS:
        raise ConfigError(f"a saved behaviour model is one of {', '.join(SAVED_KINDS)}, not {model!r}")
    t0 = time.perf_counter()
    ev = event_frame(events)
    if C.BEHAVIOR in ev.columns and target not in set(ev[C.BEHAVIOR]):
        raise ConfigError(
            f"target behaviour {target!r} not in the data (types: {sorted(set(ev[C.BEHAVIOR]))}): name one with --target"
        )
    scale = resolve_scale(
        ev[C.TIME].to_numpy(),
        horizon_s=horizon_s,
        step_s=step_s,
        min_history_s=min_history_s,
        freq=freq,
        windows=windows,
        events=ev if C.BEHAVIOR in ev.columns else None,
        target=target,
        utc_offset_hours=utc_offset_hours,
    )
    settings = {"target": target, **_scale_settings(scale), "utc_offset_hours": float(utc_offset_hours)}
    cuts = make_cutoffs(
        ev[C.TIME].to_numpy(),
        horizon_s=scale.horizon_s,
        step_s=scale.step_s,
        n_train=n_train_cutoffs,
        test_cutoff=test_cutoff,
        min_history_s=scale.min_history_s,
        align_s=scale.align_s,
        utc_offset_hours=utc_offset_hours,
    )
    data = _cases(ev, settings, cuts)
    settings["classes"] = data.classes
    X, y = data.model_input(), data.cases["y_target"].to_numpy()
    names = [*data.features.columns, "past_rate"]
    rows = {p: data.part(p) for p in ("train", "validation", "test")}
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        keep = np.flatnonzero(np.isfinite(X[rows["train"]]).any(0) & (np.nanstd(X[rows["train"]], 0) > 0))
    X, names = X[:, keep], [names[i] for i in keep]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        fitted, params, search = _search(model, X, y, rows, seed)
    arrays = export_gbm(fitted) if model == "gbm" else export_logistic(fitted)
    bm = BehaviorModel(model, arrays, names, settings, ev)
    raw = {p: bm.scores(X[rows[p]]) for p in ("validation", "test")}  # training cases are never scored
    bm.arrays.update(fit_calibrator(calibration, raw["validation"], y[rows["validation"]]))
    cal_test = bm.proba(X[rows["test"]])
    yt = y[rows["test"]]
    yv = y[rows["validation"]]
    bm.holdout = {"y": yt, "score": raw["test"], "probability": cal_test, "y_val": yv, "score_val": raw["validation"]}
    bm.report = {
        "protocol": "fit on the training cut-offs, calibrated on the validation cut-off, scored on the test cut-off",
        "time_scale": scale.describe(),
        "cutoffs": {p: [str(pd.Timestamp(t, unit="s")) + " UTC" for t in v] for p, v in cuts.items()},
        "cases": {p: int(len(r)) for p, r in rows.items()},
        "params": params,
        "search": search,
        "calibration": calibration,
        "test_uncalibrated": _scores(yt, raw["test"]),
        "test": _scores(yt, cal_test),
        "reliability_test": _reliability(yt, cal_test),
        "reliability_test_uncalibrated": _reliability(yt, raw["test"]),
        "fit_seconds": time.perf_counter() - t0,
    }
    if len(np.unique(yt)) < 2:
        raise DataError("the test cut-off holds one class only: a longer history or another horizon")
    return bm
