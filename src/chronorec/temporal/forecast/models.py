"""The forecaster interface of the ladder and its one global model without a network: gradient
boosting on lags. The statistical methods (naive, seasonal naive, ETS, Theta, Croston, ...) come
from statsforecast (:mod:`~chronorec.temporal.forecast.methods`).

Every forecaster is built as ``Model(season, h, config, run)``: ``config`` is its own pydantic
hyper-parameter model (``Model.Config``), ``run`` the run settings (the seed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chronorec.errors import ConfigError, DataError
from chronorec.temporal.forecast.forecaster_config import ForecasterConfig, GBMForecastConfig
from chronorec.training.settings import RunSettings

__all__ = ["GBM", "Forecaster"]


class Forecaster:
    """``fit(Y_train, cal)`` on the training window; ``predict(Y_hist, o, h, cal)`` at origin ``o``
    (``Y_hist`` = actual values before ``o``) returns (series, h)."""

    name = "base"
    global_model = False
    Config: type[ForecasterConfig] = ForecasterConfig

    def __init__(
        self, season: int, h: int, config: ForecasterConfig | None = None, run: RunSettings | None = None
    ) -> None:
        self.season, self.h = season, h
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise ConfigError(f"{self.name} takes a {self.Config.__name__}, not a {type(self.config).__name__}")
        self.run = run or RunSettings(progress=False)
        self.info: dict[str, Any] = {}

    def fit(self, Y_train: np.ndarray, cal: np.ndarray) -> Forecaster:
        return self

    def predict(self, Y_hist: np.ndarray, o: int, h: int, cal: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _lag_features(Yn: np.ndarray, taus: np.ndarray, n_lags: int, season: int, steps: np.ndarray) -> np.ndarray:
    """Rows for (series, tau, step): lags Yn[tau-1..tau-n_lags], means of the last season and of
    4 seasons, the seasonal lag of the target period, and the step."""
    S = Yn.shape[0]
    cols = [Yn[:, taus[:, None] - 1 - np.arange(n_lags)[None, :]]]  # (S, n_tau, n_lags)
    cs = np.concatenate([np.zeros((S, 1)), np.cumsum(Yn, 1)], 1)
    for w in (season, 4 * season):
        w = min(w, n_lags)
        cols.append(((cs[:, taus] - cs[:, taus - w]) / w)[..., None])
    base = np.concatenate(cols, -1)  # (S, n_tau, F)
    n_tau = len(taus)
    rows = []
    for k in steps:
        tgt = taus + k - 1
        seas_idx = tgt - season * ((k - 1) // season + 1)  # the latest same-season value before tau
        seas = Yn[:, seas_idx][..., None]
        rows.append(np.concatenate([base, seas, np.full((S, n_tau, 1), k, np.float64)], -1))
    return np.stack(rows, 2)  # (S, n_tau, n_steps, F)


class GBM(Forecaster):
    """One global HistGradientBoostingRegressor on per-series scaled values (scale = training-window
    mean absolute level), direct multi-horizon: one row per (series, origin, step)."""

    name = "gbm"
    global_model = True
    Config = GBMForecastConfig

    def fit(self, Y_train, cal):
        from sklearn.ensemble import HistGradientBoostingRegressor

        m, c = self.season, self.config
        self.n_lags = c.n_lags or min(4 * m, max(Y_train.shape[1] // 3, m))
        self.level = np.maximum(np.abs(Y_train).mean(1), 1e-8)  # fitted on the training window only
        Yn = Y_train / self.level[:, None]
        o0 = Y_train.shape[1]
        taus = np.arange(self.n_lags, o0 - self.h + 1)
        if len(taus) == 0:
            raise DataError("training window too short for the GBM lags: fewer origins or a shorter horizon")
        rng = np.random.default_rng(self.run.seed)
        steps = np.arange(1, self.h + 1)
        X = _lag_features(Yn, taus, self.n_lags, m, steps)
        tgt = Yn[:, taus[:, None] + steps[None, :] - 1]  # (S, n_tau, h)
        calf = cal[taus[:, None] + steps[None, :] - 1]  # (n_tau, h, c)
        X = np.concatenate([X, np.broadcast_to(calf, (X.shape[0], *calf.shape))], -1)
        X, y = X.reshape(-1, X.shape[-1]), tgt.reshape(-1)
        if len(y) > c.max_rows:
            keep = rng.choice(len(y), c.max_rows, replace=False)
            X, y = X[keep], y[keep]
        self.model = HistGradientBoostingRegressor(
            loss="absolute_error" if c.loss == "mae" else "squared_error",
            learning_rate=c.learning_rate,
            max_iter=c.max_iter,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            random_state=self.run.seed,
        ).fit(X, y)
        self.info["train_rows"] = len(y)
        return self

    def predict(self, Y_hist, o, h, cal):
        Yn = Y_hist / self.level[:, None]
        steps = np.arange(1, h + 1)
        X = _lag_features(Yn, np.array([o]), self.n_lags, self.season, steps)[:, 0]  # (S, h, F)
        calf = cal[o + steps - 1]
        X = np.concatenate([X, np.broadcast_to(calf, (X.shape[0], *calf.shape))], -1)
        return self.model.predict(X.reshape(-1, X.shape[-1])).reshape(len(Yn), h) * self.level[:, None]
