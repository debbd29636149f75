"""The statistical ladder, from statsforecast: one model per series, refitted at every origin, every
series of an origin fitted in one vectorised ``StatsForecast(...).forecast`` call (parallel over
processes).

``naive`` (last value), ``seasonal_naive`` (value one season ago), ``moving_average`` (mean of the
last season), ``ets`` (AutoETS: error / trend / season chosen by AICc), ``theta`` (AutoTheta) and
the intermittent-demand methods for sparse series (mostly zero days of a product): ``croston``
(classic), ``croston_sba`` (Syntetos-Boylan bias correction), ``tsb`` (Teunter-Syntetos-Babai: the
demand probability decays when no demand comes), ``adida`` (temporal aggregation) and ``imapa``
(several aggregation levels). statsforecast is the ``forecast`` extra (in ``.[dev]``); without it
only ``naive`` and ``seasonal_naive`` run (:data:`NUMPY_METHODS`), and asking for another method
says which extra to install.

:class:`StatsForecaster` puts any of them on the rolling-origin ladder of
:func:`chronorec.temporal.forecast.core.rolling_origin`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chronorec.errors import ConfigError
from chronorec.temporal.forecast.forecaster_config import ETSConfig, ForecasterConfig, MovingAverageConfig
from chronorec.temporal.forecast.models import Forecaster

__all__ = [
    "INTERMITTENT",
    "METHODS",
    "NUMPY_METHODS",
    "StatsForecaster",
    "default_jobs",
    "forecast_matrix",
    "has_statsforecast",
    "installed_methods",
    "method_class",
]

INTERMITTENT = ("croston", "croston_sba", "tsb", "adida", "imapa")
SMOOTH = ("naive", "seasonal_naive", "moving_average", "ets", "theta")
METHODS = SMOOTH + INTERMITTENT
NUMPY_METHODS = ("naive", "seasonal_naive")
ETS_MAX_SEASON = 24
"""Longest season ETS models (as R's forecast::ets): a weekly series' year of 52 would put 52
seasonal states in the optimiser (about 0.1 s a series); ETS is fitted without a season above it."""
EXTRA_HINT = "pip install 'chronorec[forecast]' (statsforecast)"


def has_statsforecast() -> bool:
    """Whether the ``forecast`` extra is installed."""
    import importlib.util

    return importlib.util.find_spec("statsforecast") is not None


def installed_methods(models: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(models this install runs, statistical methods skipped)``: without the ``forecast`` extra,
    every statistical method but :data:`NUMPY_METHODS` is skipped (other models are kept as given)."""
    if has_statsforecast():
        return list(models), []
    skipped = [m for m in models if m in METHODS and m not in NUMPY_METHODS]
    return [m for m in models if m not in skipped], skipped


def _statsforecast_model(name: str, season: int, config: ForecasterConfig) -> Any:
    """The statsforecast model of ``name`` for series with season ``season``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from statsforecast import models as sf

    m = max(int(season), 1)
    window = getattr(config, "window", None) or m
    make: dict[str, Callable[[], Any]] = {
        "naive": sf.Naive,
        "seasonal_naive": lambda: sf.SeasonalNaive(season_length=m),
        "moving_average": lambda: sf.WindowAverage(window_size=window),
        "ets": lambda: sf.AutoETS(season_length=m if m <= ETS_MAX_SEASON else 1),
        "theta": lambda: sf.AutoTheta(season_length=m),
        "croston": sf.CrostonClassic,
        "croston_sba": sf.CrostonSBA,
        "tsb": lambda: sf.TSB(alpha_d=0.1, alpha_p=0.1),
        "adida": sf.ADIDA,
        "imapa": sf.IMAPA,
    }
    return make[name]()


def _numpy_forecast(name: str, y: np.ndarray, h: int, season: int) -> np.ndarray:
    """``naive`` (last value) or ``seasonal_naive`` (the last season repeated; naive while the series
    is shorter than a season), the same on every install."""
    if name == "naive" or len(y) < season:
        return np.repeat(y[-1], h)
    return y[-season:][np.arange(h) % season]


MIN_FIT = 3
"""Observed periods a series needs before a statsforecast model is fitted (fewer: naive, counted)."""


def default_jobs(n_series: int) -> int:
    """Processes for statsforecast: every core from 200 series on, else 1 (starting them costs more)."""
    import os

    return max(os.cpu_count() or 1, 1) if n_series >= 200 else 1


def _statsforecast_batch(
    name: str, ys: list[np.ndarray], h: int, season: int, config: ForecasterConfig, n_jobs: int
) -> np.ndarray:
    """(len(ys), h) forecasts of ``name`` on ragged series in one vectorised statsforecast call
    (``StatsForecast(...).forecast``, ``n_jobs`` processes, naive where a fit raises)."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from statsforecast import StatsForecast
        from statsforecast.models import Naive

    lens = np.array([len(y) for y in ys])
    df = pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(len(ys)), lens),
            "ds": np.concatenate([np.arange(n) for n in lens]),
            "y": np.concatenate(ys),
        }
    )
    sf = StatsForecast(
        models=[_statsforecast_model(name, season, config)], freq=1, n_jobs=n_jobs, fallback_model=Naive()
    )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fc = sf.forecast(df=df, h=h)
    return fc.iloc[:, -1].to_numpy(np.float64).reshape(len(ys), h)


def forecast_matrix(
    name: str,
    Y: np.ndarray,
    h: int,
    season: int,
    config: ForecasterConfig | None = None,
    *,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, int]:
    """Point forecasts (series, h) of method ``name`` fitted on each row of ``Y`` (its history), and
    the number of series that fell back (fewer than :data:`MIN_FIT` periods, or a forecast that was
    not finite: naive / seasonal naive).

    A row's history is its finite values (NaN before its start, see
    :func:`~chronorec.temporal.forecast.series.to_matrix`); a row with none is forecast NaN (it does
    not exist yet). ``naive`` and ``seasonal_naive`` are numpy; the other methods are fitted on every
    series in one vectorised statsforecast call with ``n_jobs`` processes (default
    :func:`default_jobs`). Constant series are forecast as their value; ``max_history`` (ETS / Theta)
    keeps only that many trailing periods (default: 8 seasons) to bound the fitting time.
    """
    if name not in METHODS:
        raise ConfigError(f"unknown forecasting method {name!r}; known: {', '.join(METHODS)}")
    config = config or ForecasterConfig()
    m = max(int(season), 1)
    if not has_statsforecast() and name not in NUMPY_METHODS:
        raise ConfigError(f"method {name!r} needs statsforecast: {EXTRA_HINT}")
    keep = getattr(config, "max_history", None) or (8 * m if name in ("ets", "theta") else None)
    out = np.full((len(Y), h), np.nan)
    fails = 0
    todo, ys = [], []
    for s, y in enumerate(np.asarray(Y, dtype=np.float64)):
        y = y[np.isfinite(y)]
        y = y[-keep:] if keep else y
        if len(y) == 0:
            continue
        if name in NUMPY_METHODS:
            out[s] = _numpy_forecast(name, y, h, m)
        elif np.ptp(y) == 0:
            out[s] = y[-1]
        elif len(y) < MIN_FIT:
            fails += 1
            out[s] = y[-1]
        else:
            todo.append(s)
            ys.append(y)
    if todo:
        jobs = n_jobs if n_jobs is not None else default_jobs(len(todo))
        out[todo] = _statsforecast_batch(name, ys, h, m, config, jobs)
        bad = [i for i, s in enumerate(todo) if not np.all(np.isfinite(out[s]))]
        for i in bad:
            out[todo[i]] = _numpy_forecast("seasonal_naive", ys[i], h, m)
        fails += len(bad)
    return out, fails


class StatsForecaster(Forecaster):
    """A method of :data:`METHODS` on the rolling-origin ladder: refitted per series at every origin on
    the history before it (a local model: nothing is fitted on the training window)."""

    name = "stats"

    def predict(self, Y_hist, o, h, cal):
        out, fails = forecast_matrix(self.name, Y_hist, h, self.season, self.config, n_jobs=self.run.threads)
        self.info["fallbacks"] = self.info.get("fallbacks", 0) + fails
        return out


_CONFIGS: dict[str, type[ForecasterConfig]] = {
    "ets": ETSConfig,
    "theta": ETSConfig,
    "moving_average": MovingAverageConfig,
}


def method_class(name: str) -> type[StatsForecaster]:
    """The ladder class of the statistical method ``name``."""
    return type(
        f"{name.title().replace('_', '')}Forecaster",
        (StatsForecaster,),
        {"name": name, "Config": _CONFIGS.get(name, ForecasterConfig), "__doc__": f"statsforecast's {name}."},
    )
