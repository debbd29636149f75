"""Activity forecasting on many series at once, evaluated by rolling origin.

Series come in long format (``series_id, period, y``) and are packed into a matrix ``Y`` (series x
periods) on a common grid (:func:`to_matrix`), each series starting at its first event (NaN before:
the statistical methods fit the observed tail only, the global models see zeros there, and no
metric counts a period before a series' start or an origin before it). The first forecast origin ``o0``
ends the training window: global models and every scaler are fitted on ``Y[:, :o0]`` only; at
each later origin ``o`` a model sees the actual values before ``o`` (as they would be known then)
and forecasts ``h`` periods ahead.

The ladder (:data:`LADDER`): the statistical methods of statsforecast, refitted per series and
origin (:mod:`~chronorec.temporal.forecast.methods`: ``naive``, ``seasonal_naive``,
``moving_average``, ``ets`` (AutoETS), ``theta`` (AutoTheta) and the intermittent-demand methods
``croston``, ``croston_sba``, ``tsb``, ``adida``, ``imapa``), ``gbm`` (one global
histogram gradient-boosting model on scaled lags, rolling means and calendar features of the
target period, direct multi-horizon with the step as a feature), ``lstm`` / ``gru`` (one global
recurrent network over windows of [scaled y, calendar] per period, calendar of the forecast periods
fed to the head, direct multi-output) and ``transformer`` (a small causal Transformer encoder over
the same windows, same head), trained with :func:`chronorec.training.trainer.train`.

Each model has its own pydantic hyper-parameter model (:mod:`~chronorec.temporal.forecast.forecaster_config`);
the modules: :mod:`~chronorec.temporal.forecast.series` (the matrix, scaler, calendar),
:mod:`~chronorec.temporal.forecast.metrics`, :mod:`~chronorec.temporal.forecast.models` (the models
without a network), :mod:`~chronorec.temporal.forecast.neural` and
:mod:`~chronorec.temporal.forecast.plots`; this one runs the rolling-origin evaluation.

Metrics (:func:`forecast_metrics`): MSE, MAE, RMSE, sMAPE (0 where actual and forecast are both 0)
and MASE = MAE / the in-sample one-step seasonal-naive MAE of each series over the training window
(series with a zero scale are left out of MASE and counted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from chronorec.errors import ConfigError, DataError
from chronorec.temporal.forecast.forecaster_config import ForecasterConfig
from chronorec.temporal.forecast.methods import METHODS as STAT_METHODS
from chronorec.temporal.forecast.methods import method_class
from chronorec.temporal.forecast.metrics import forecast_metrics, mase_scale
from chronorec.temporal.forecast.models import GBM, Forecaster
from chronorec.temporal.forecast.neural import GRUForecaster, RNNForecaster, TransformerForecaster
from chronorec.temporal.forecast.plots import plot_forecasts
from chronorec.temporal.forecast.series import (
    SeriesMatrix,
    calendar_features,
    fit_scaler,
    series_starts,
    short_window_message,
    to_matrix,
)
from chronorec.training.settings import RunSettings

logger = logging.getLogger(__name__)

__all__ = [
    "LADDER",
    "MODELS",
    "Forecaster",
    "SeriesMatrix",
    "fit_scaler",
    "forecast_metrics",
    "mase_scale",
    "model_config",
    "plot_forecasts",
    "rolling_origin",
    "to_matrix",
]

LADDER = (*STAT_METHODS, "gbm", "lstm", "gru", "transformer")

MODELS: dict[str, type[Forecaster]] = {
    **{name: method_class(name) for name in STAT_METHODS},
    **{c.name: c for c in (GBM, RNNForecaster, GRUForecaster, TransformerForecaster)},
}


def model_config(name: str, params: Mapping[str, Any] | ForecasterConfig | None = None) -> Any:
    """The hyper-parameters of the forecaster ``name``: its ``Config`` from ``params`` (a mapping,
    validated; unknown keys are refused), or ``params`` itself when it is already a config."""
    cls = MODELS[name].Config
    if params is None:
        return cls()
    if isinstance(params, cls):
        return params
    if not isinstance(params, Mapping):
        raise ConfigError(f"{name} takes a {cls.__name__} or a mapping, not a {type(params).__name__}")
    return cls.model_validate(dict(params))


def rolling_origin(
    sm: SeriesMatrix,
    *,
    h: int,
    n_origins: int = 4,
    step: int | None = None,
    models: Sequence[str] = LADDER,
    params: Mapping[str, Mapping[str, Any] | ForecasterConfig] | None = None,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate each model at ``n_origins`` origins ``step`` periods apart (default ``h``), the last
    one ending at the last period. Returns metrics per model and the forecasts.

    ``params`` maps a model name to its hyper-parameters (a dict, validated by the model's
    ``Config``, or the config itself); ``seed``, ``threads`` and ``progress`` are the run settings of
    every model. Global models are fitted once on the training window (before the first origin);
    local ones see the history up to each origin.
    """
    from tqdm.auto import tqdm

    T = sm.Y.shape[1]
    step = step or h
    origins = T - h - step * np.arange(n_origins)[::-1]
    o0 = int(origins[0])
    if o0 <= 2 * sm.season:
        raise DataError(short_window_message(sm, o0, h, n_origins, step))
    cal = calendar_features(
        sm.periods.append(pd.date_range(sm.periods[-1], periods=h + 1, freq=sm.periods.freq)[1:]), sm.season
    )
    actual = np.stack([sm.Y[:, o : o + h] for o in origins], 1)  # (S, origins, h)
    scale = mase_scale(sm.Y[:, :o0], sm.season)
    results: dict[str, Any] = {}
    forecasts: dict[str, np.ndarray] = {}
    run = RunSettings(seed=seed, threads=threads, progress=progress)
    for name in models:
        if name not in MODELS:
            raise ConfigError(f"unknown forecaster {name!r}; known: {', '.join(MODELS)}")
    zero = np.nan_to_num(sm.Y, nan=0.0)  # the global models see zeros before a series' start
    started = series_starts(sm.Y)[:, None] < origins[None, :]  # (S, origins): a series is forecast once it exists
    for name in tqdm(models, desc="forecasters", disable=not progress, leave=False):
        model = MODELS[name](sm.season, h, model_config(name, (params or {}).get(name)), run)
        Y = sm.Y if name in STAT_METHODS else zero
        t0 = time.perf_counter()
        model.fit(Y[:, :o0], cal)
        fit_s = time.perf_counter() - t0
        preds = np.stack([model.predict(Y[:, :o], int(o), h, cal) for o in origins], 1)
        preds = np.where(started[:, :, None], preds, np.nan)
        forecasts[name] = preds
        met = forecast_metrics(actual, preds, scale)
        met.update({"fit_seconds": fit_s, "total_seconds": time.perf_counter() - t0, **model.info})
        results[name] = met
        if progress:
            logger.info("%s: MASE %.3f sMAPE %.1f RMSE %.3f", name, met["MASE"], met["sMAPE"], met["RMSE"])
    return {
        "origins": [str(sm.periods[o]) for o in origins],
        "origin_index": origins.tolist(),
        "h": h,
        "season": sm.season,
        "n_series": len(sm.ids),
        "n_periods": T,
        "train_periods": o0,
        "results": results,
        "forecasts": forecasts,
        "actual": actual,
    }
