"""Activity forecasting on many series at once, evaluated by rolling origin.

Series come in long format (``series_id, period, y``) and are packed into a dense matrix
``Y`` (series x periods) on a common grid (:func:`to_matrix`). The first forecast origin ``o0``
ends the training window: global models and every scaler are fitted on ``Y[:, :o0]`` only; at
each later origin ``o`` a model sees the actual values before ``o`` (as they would be known then)
and forecasts ``h`` periods ahead.

The ladder (:data:`LADDER`): ``naive`` (last value), ``seasonal_naive`` (value one season ago),
``moving_average`` (mean of the last season), ``ets`` (statsmodels Holt-Winters exponential
smoothing, additive damped trend and season, refitted per series and origin), ``gbm`` (one global
histogram gradient-boosting model on scaled lags, rolling means and calendar features of the
target period, direct multi-horizon with the step as a feature), ``lstm`` / ``gru`` (one global
recurrent network over windows of [scaled y, calendar] per period, calendar of the forecast periods
fed to the head, direct multi-output) and ``transformer`` (a small causal Transformer encoder over
the same windows, same head), trained with :func:`chronorec.training.trainer.train`.

Metrics (:func:`forecast_metrics`): MSE, MAE, RMSE, sMAPE (0 where actual and forecast are both 0)
and MASE = MAE / the in-sample one-step seasonal-naive MAE of each series over the training window
(series with a zero scale are left out of MASE and counted).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "LADDER",
    "Forecaster",
    "SeriesMatrix",
    "fit_scaler",
    "forecast_metrics",
    "plot_forecasts",
    "rolling_origin",
    "to_matrix",
]

LADDER = ("naive", "seasonal_naive", "moving_average", "ets", "gbm", "lstm", "gru", "transformer")


@dataclass
class SeriesMatrix:
    ids: np.ndarray
    periods: pd.DatetimeIndex
    Y: np.ndarray  # (series, periods) float64
    season: int

    @property
    def freq_seconds(self) -> int:
        return int((self.periods[1] - self.periods[0]).total_seconds()) if len(self.periods) > 1 else 86400


def to_matrix(
    series: pd.DataFrame,
    *,
    value: str = "y",
    season: int | None = None,
    freq: str | None = None,
) -> SeriesMatrix:
    """Pack long-format ``series_id, period, <value>`` into a dense matrix (missing periods = 0).

    ``freq`` (pandas alias) defaults to the smallest gap between periods; ``season`` defaults to 24
    for hourly and 7 for daily data, 52 for weekly.
    """
    df = series[["series_id", "period", value]].copy()
    df["period"] = pd.to_datetime(df["period"])
    periods = np.sort(df["period"].unique())
    if freq is None:
        gap = pd.Timedelta(np.diff(periods).min()) if len(periods) > 1 else pd.Timedelta(days=1)
        grid = pd.date_range(periods[0], periods[-1], freq=gap)
    else:
        grid = pd.date_range(periods[0], periods[-1], freq=freq)
    ids = np.sort(df["series_id"].unique())
    piv = df.pivot_table(index="series_id", columns="period", values=value, aggfunc="sum")
    piv = piv.reindex(index=ids, columns=grid).fillna(0.0)
    if season is None:
        step = (grid[1] - grid[0]).total_seconds() if len(grid) > 1 else 86400
        season = {3600: 24, 86400: 7, 604800: 52}.get(int(step), 1)
    return SeriesMatrix(ids=ids, periods=grid, Y=piv.to_numpy(np.float64), season=season)


# ----------------------------------------------------------------------------- metrics
def mase_scale(Y_train: np.ndarray, season: int) -> np.ndarray:
    """In-sample seasonal-naive MAE of each series (NaN where the window is too short)."""
    if Y_train.shape[1] <= season:
        return np.full(Y_train.shape[0], np.nan)
    return np.abs(Y_train[:, season:] - Y_train[:, :-season]).mean(1)


def _smape(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    den = np.abs(y) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 200.0 * np.abs(y - f) / den, 0.0)


def forecast_metrics(actual: np.ndarray, pred: np.ndarray, scale: np.ndarray) -> dict[str, Any]:
    """Metrics of forecasts ``pred`` for ``actual``, both (series, origins, horizon).

    Aggregates over every (series, origin, step); MASE is the mean over series with a positive
    ``scale`` of MAE_series / scale. Also per horizon step (``by_horizon``) and per series.
    """
    e = pred - actual
    ae = np.abs(e)
    ok = np.isfinite(scale) & (scale > 0)
    mae_s = ae.mean((1, 2))
    mase_s = np.where(ok, mae_s / np.where(ok, scale, 1.0), np.nan)
    mase_h = (ae.mean(1)[ok] / scale[ok, None]).mean(0) if ok.any() else np.full(ae.shape[2], np.nan)
    return {
        "MSE": float((e**2).mean()),
        "MAE": float(ae.mean()),
        "RMSE": float(np.sqrt((e**2).mean())),
        "sMAPE": float(_smape(actual, pred).mean()),
        "MASE": float(np.nanmean(mase_s)) if ok.any() else float("nan"),
        "MASE_median": float(np.nanmedian(mase_s)) if ok.any() else float("nan"),
        "series_in_MASE": int(ok.sum()),
        "series_zero_scale": int((~ok).sum()),
        "by_horizon": {
            "MAE": ae.mean((0, 1)).tolist(),
            "RMSE": np.sqrt((e**2).mean((0, 1))).tolist(),
            "MASE": np.asarray(mase_h).tolist(),
        },
        "per_series": {"MAE": mae_s.tolist(), "MASE": mase_s.tolist()},
    }


# ----------------------------------------------------------------------------- scaler
def fit_scaler(Y_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-series mean and standard deviation over the training window only (std floored at 1e-3
    of the mean absolute level, and 1 for an all-zero series)."""
    mu = Y_train.mean(1)
    sd = Y_train.std(1)
    floor = np.maximum(1e-3 * np.abs(Y_train).mean(1), 1e-8)
    sd = np.where(sd > floor, sd, np.where(np.abs(Y_train).mean(1) > 0, floor, 1.0))
    return mu, sd


# ----------------------------------------------------------------------------- calendar
def calendar_features(periods: pd.DatetimeIndex, season: int) -> np.ndarray:
    """(T, 4) sin/cos of the position in the season (hour of day or day of week) and of the day of year."""
    if season == 24:
        pos = periods.hour.to_numpy()
    elif season == 7:
        pos = periods.day_of_week.to_numpy()
    else:
        pos = np.arange(len(periods)) % max(season, 1)
    a = 2 * np.pi * pos / max(season, 1)
    b = 2 * np.pi * periods.day_of_year.to_numpy() / 365.25
    return np.column_stack([np.sin(a), np.cos(a), np.sin(b), np.cos(b)])


# ----------------------------------------------------------------------------- forecasters
class Forecaster:
    """``fit(Y_train, cal)`` on the training window; ``predict(Y_hist, o, h, cal)`` at origin ``o``
    (``Y_hist`` = actual values before ``o``) returns (series, h)."""

    name = "base"
    global_model = False

    def __init__(self, season: int, **params: Any):
        self.season = season
        self.params = params
        self.info: dict[str, Any] = {}

    def fit(self, Y_train: np.ndarray, cal: np.ndarray) -> "Forecaster":
        return self

    def predict(self, Y_hist: np.ndarray, o: int, h: int, cal: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Naive(Forecaster):
    name = "naive"

    def predict(self, Y_hist, o, h, cal):
        return np.repeat(Y_hist[:, -1:], h, 1)


class SeasonalNaive(Forecaster):
    name = "seasonal_naive"

    def predict(self, Y_hist, o, h, cal):
        m = self.season
        last = Y_hist[:, -m:]
        return last[:, np.arange(h) % m]


class MovingAverage(Forecaster):
    name = "moving_average"

    def predict(self, Y_hist, o, h, cal):
        w = self.params.get("window") or self.season
        return np.repeat(Y_hist[:, -w:].mean(1, keepdims=True), h, 1)


class ETS(Forecaster):
    """statsmodels Holt-Winters (additive damped trend, additive season), one fit per series and origin
    on the last ``max_history`` values; a series that fails to fit falls back to seasonal naive."""

    name = "ets"

    def predict(self, Y_hist, o, h, cal):
        import warnings

        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        m = self.season
        hist = Y_hist[:, -(self.params.get("max_history") or 8 * m) :]
        out = np.empty((len(hist), h))
        fails = 0
        for s, y in enumerate(hist):
            try:
                if np.ptp(y) == 0:
                    out[s] = y[-1]
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = ExponentialSmoothing(
                        y,
                        trend="add",
                        damped_trend=True,
                        seasonal="add" if len(y) >= 2 * m else None,
                        seasonal_periods=m,
                    ).fit()
                    out[s] = fit.forecast(h)
                if not np.all(np.isfinite(out[s])):
                    raise ValueError("non-finite forecast")
            except (ValueError, np.linalg.LinAlgError):
                fails += 1
                out[s] = y[-m:][np.arange(h) % m]
        self.info["fallbacks"] = self.info.get("fallbacks", 0) + fails
        return out


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

    def fit(self, Y_train, cal):
        from sklearn.ensemble import HistGradientBoostingRegressor

        m = self.season
        self.h = self.params["h"]
        self.n_lags = self.params.get("n_lags") or min(4 * m, max(Y_train.shape[1] // 3, m))
        self.level = np.maximum(np.abs(Y_train).mean(1), 1e-8)  # fitted on the training window only
        Yn = Y_train / self.level[:, None]
        o0 = Y_train.shape[1]
        taus = np.arange(self.n_lags, o0 - self.h + 1)
        if len(taus) == 0:
            raise ValueError("training window too short for the GBM lags")
        rng = np.random.default_rng(self.params.get("seed", 0))
        steps = np.arange(1, self.h + 1)
        X = _lag_features(Yn, taus, self.n_lags, m, steps)
        tgt = Yn[:, taus[:, None] + steps[None, :] - 1]  # (S, n_tau, h)
        calf = cal[taus[:, None] + steps[None, :] - 1]  # (n_tau, h, c)
        X = np.concatenate([X, np.broadcast_to(calf, (X.shape[0], *calf.shape))], -1)
        X, y = X.reshape(-1, X.shape[-1]), tgt.reshape(-1)
        cap = self.params.get("max_rows", 300_000)
        if len(y) > cap:
            keep = rng.choice(len(y), cap, replace=False)
            X, y = X[keep], y[keep]
        self.model = HistGradientBoostingRegressor(
            loss="absolute_error" if self.params.get("loss") == "mae" else "squared_error",
            learning_rate=self.params.get("learning_rate", 0.05),
            max_iter=self.params.get("max_iter", 300),
            max_leaf_nodes=31,
            min_samples_leaf=40,
            random_state=self.params.get("seed", 0),
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


def _WindowCentered(net: Any) -> Any:
    """Wraps a forecasting network: the mean scaled value of each input window is subtracted from
    its inputs and added back to its outputs (instance normalisation of the level, as in RevIN), so a
    level outside the training window's range is not extrapolated by the network itself."""
    import torch

    class Centered(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = net

        def forward(self, x, fut):
            level = x[:, :, :1].mean(1)  # (B, 1)
            return self.inner(torch.cat([x[:, :, :1] - level[:, None], x[:, :, 1:]], -1), fut) + level

    return Centered()


class RNNForecaster(Forecaster):
    """Global LSTM / GRU over windows of ``L`` periods with features [scaled y, calendar] per period,
    the calendar of the ``h`` forecast periods fed to the head, and ``h`` outputs (direct).

    The scaler (per-series mean / std) is fitted on the training window only; training windows end
    ``h`` periods before the training window's end, whose last ``h`` periods are the validation
    targets for early stopping; the shared loop :func:`chronorec.training.trainer.train` does the training.
    """

    name = "lstm"
    global_model = True
    center = False  # subtract each input window's mean scaled value (added back to the output)

    def _network(self, c: int) -> Any:
        """The network: (x (B, L, 1 + c), fut (B, h, c)) -> (B, h) scaled forecasts."""
        import torch
        from torch import nn

        h, hidden = self.h, self.params.get("hidden", 64)
        cell = nn.LSTM if self.name == "lstm" else nn.GRU

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = cell(1 + c, hidden, batch_first=True)
                self.head = nn.Sequential(nn.Linear(hidden + h * c, hidden), nn.GELU(), nn.Linear(hidden, h))

            def forward(self, x, fut):
                out, _ = self.rnn(x)
                return self.head(torch.cat([out[:, -1], fut.flatten(1)], 1))

        return Net()

    def fit(self, Y_train, cal):
        import torch
        import torch.nn.functional as F

        from chronorec.training.trainer import TrainSettings, train

        p = self.params
        h, m = p["h"], self.season
        self.h = h
        self.L = p.get("window") or min(4 * m, max(Y_train.shape[1] // 3, m))
        self.mu, self.sd = fit_scaler(Y_train)
        torch.manual_seed(p.get("seed", 0))
        Z = (Y_train - self.mu[:, None]) / self.sd[:, None]
        o0 = Z.shape[1]
        c = cal.shape[1]
        self.net = self._network(c)
        if p.get("center", self.center):
            self.net = _WindowCentered(self.net)

        def windows(taus):
            S = Z.shape[0]
            idx = taus[:, None] - self.L + np.arange(self.L)[None, :]  # (n, L)
            x = np.concatenate([Z[:, idx][..., None], np.broadcast_to(cal[idx], (S, *idx.shape, c))], -1)
            fut = np.broadcast_to(cal[taus[:, None] + np.arange(h)[None, :]], (S, len(taus), h, c))
            y = Z[:, taus[:, None] + np.arange(h)[None, :]]
            f = lambda a: torch.from_numpy(np.ascontiguousarray(a.reshape(-1, *a.shape[2:]), dtype=np.float32))  # noqa: E731
            return f(x), f(fut), f(y)

        t_train = np.arange(self.L, o0 - 2 * h + 1)
        t_val = np.array([o0 - h])
        if len(t_train) == 0:
            raise ValueError("training window too short for the recurrent forecaster's windows")
        xtr, ftr, ytr = windows(t_train)
        xva, fva, yva = windows(t_val)
        bs = p.get("batch_size", 256)

        def batches(epoch, rng):
            order = rng.permutation(len(xtr))
            for b in range(0, len(order), bs):
                i = torch.from_numpy(order[b : b + bs])
                yield xtr[i], ftr[i], ytr[i]

        def loss_fn(net, batch):
            x, fu, y = batch
            return F.l1_loss(net(x, fu), y) if p.get("loss", "mae") == "mae" else F.mse_loss(net(x, fu), y)

        def validate():
            with torch.inference_mode():
                return -float((self.net(xva, fva) - yva).abs().mean())

        res = train(
            self.net,
            batches=batches,
            loss_fn=loss_fn,
            validate=validate,
            settings=TrainSettings(
                epochs=p.get("epochs", 40),
                lr=p.get("lr", 2e-3),
                patience=p.get("patience", 6),
                seed=p.get("seed", 0),
                threads=p.get("threads"),
                progress=p.get("progress", False),
                label=f"{self.name}-forecast",
            ),
            n_batches=lambda: (len(xtr) + bs - 1) // bs,
        )
        self.info.update(
            {"best_epoch": res.best_epoch, "epochs_run": len(res.history), "train_seconds": res.train_seconds}
        )
        self.info["train_windows"] = int(len(xtr))
        return self

    def predict(self, Y_hist, o, h, cal):
        import torch

        Z = (Y_hist[:, -self.L :] - self.mu[:, None]) / self.sd[:, None]
        S, c = Z.shape[0], cal.shape[1]
        x = np.concatenate([Z[..., None], np.broadcast_to(cal[o - self.L : o], (S, self.L, c))], -1)
        fut = np.broadcast_to(cal[o : o + h], (S, h, c))
        self.net.eval()
        with torch.inference_mode():
            z = self.net(
                torch.from_numpy(x.astype(np.float32)), torch.from_numpy(np.ascontiguousarray(fut, np.float32))
            )
        return z.numpy()[:, :h].astype(np.float64) * self.sd[:, None] + self.mu[:, None]


class GRUForecaster(RNNForecaster):
    name = "gru"


class TransformerForecaster(RNNForecaster):
    """Global Transformer encoder over the same windows as the LSTM: each period's [scaled y, calendar]
    is projected to ``dim`` and given a learned position embedding; ``layers`` pre-norm self-attention
    blocks with a causal mask (each period attends to itself and earlier ones); the last position and
    the mean over the window, with the calendar of the ``h`` forecast periods, feed the direct
    ``h``-output head. Same scaler (training window only), windows, early stopping and loop as the LSTM.

    Each input window is centred on its mean scaled value, which is added back to the output
    (``center``, on by default here, off by default for the LSTM / GRU).

    Parameters: ``dim`` (32), ``layers`` (2), ``heads`` (4), ``dropout`` (0.1), ``center`` (True),
    ``window``, ``epochs``, ``lr``, ``patience``, ``batch_size``, ``loss`` (``mae`` or ``mse``).
    """

    name = "transformer"
    center = True

    def _network(self, c: int) -> Any:
        import torch
        from torch import nn

        from chronorec.models.sequential.blocks import TransformerBlock

        p, h, L = self.params, self.h, self.L
        dim, layers, heads = p.get("dim", 32), p.get("layers", 2), p.get("heads", 4)
        dropout = p.get("dropout", 0.1)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.inp = nn.Linear(1 + c, dim)
                self.pos = nn.Parameter(torch.randn(L, dim) * 0.02)
                self.blocks = nn.ModuleList(TransformerBlock(dim, heads, dropout) for _ in range(layers))
                self.ln = nn.LayerNorm(dim)
                self.head = nn.Sequential(nn.Linear(2 * dim + h * c, 2 * dim), nn.GELU(), nn.Linear(2 * dim, h))
                # True = may attend (scaled_dot_product_attention): itself and earlier periods
                self.register_buffer("mask", torch.ones(L, L, dtype=torch.bool).tril(), persistent=False)

            def forward(self, x, fut):
                z = self.inp(x) + self.pos[None, -x.shape[1] :]
                n = x.shape[1]
                mask = self.mask[-n:, -n:]
                for blk in self.blocks:
                    z = blk(z, mask)
                z = self.ln(z)
                return self.head(torch.cat([z[:, -1], z.mean(1), fut.flatten(1)], 1))

        return Net()


MODELS = {
    c.name: c
    for c in (Naive, SeasonalNaive, MovingAverage, ETS, GBM, RNNForecaster, GRUForecaster, TransformerForecaster)
}


# ----------------------------------------------------------------------------- evaluation
def rolling_origin(
    sm: SeriesMatrix,
    *,
    h: int,
    n_origins: int = 4,
    step: int | None = None,
    models: Sequence[str] = LADDER,
    params: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate each model at ``n_origins`` origins ``step`` periods apart (default ``h``), the last
    one ending at the last period. Returns metrics per model and the forecasts.

    Global models are fitted once on the training window (before the first origin); local ones see
    the history up to each origin.
    """
    from tqdm.auto import tqdm

    T = sm.Y.shape[1]
    step = step or h
    origins = T - h - step * np.arange(n_origins)[::-1]
    o0 = int(origins[0])
    if o0 <= 2 * sm.season:
        raise ValueError(f"training window of {o0} periods is too short for season {sm.season}: fewer origins")
    cal = calendar_features(
        sm.periods.append(pd.date_range(sm.periods[-1], periods=h + 1, freq=sm.periods.freq)[1:]), sm.season
    )
    actual = np.stack([sm.Y[:, o : o + h] for o in origins], 1)  # (S, origins, h)
    scale = mase_scale(sm.Y[:, :o0], sm.season)
    results: dict[str, Any] = {}
    forecasts: dict[str, np.ndarray] = {}
    for name in tqdm(models, desc="forecasters", disable=not progress, leave=False):
        if name not in MODELS:
            raise ValueError(f"unknown forecaster {name!r}; known: {', '.join(MODELS)}")
        kw = {"h": h, "seed": seed, **((params or {}).get(name, {}))}
        model = MODELS[name](sm.season, **kw)
        t0 = time.perf_counter()
        model.fit(sm.Y[:, :o0], cal)
        fit_s = time.perf_counter() - t0
        preds = np.stack([model.predict(sm.Y[:, :o], int(o), h, cal) for o in origins], 1)
        forecasts[name] = preds
        met = forecast_metrics(actual, preds, scale)
        met.update({"fit_seconds": fit_s, "total_seconds": time.perf_counter() - t0, **model.info})
        results[name] = met
        if progress:
            print(f"  {name}: MASE {met['MASE']:.3f} sMAPE {met['sMAPE']:.1f} RMSE {met['RMSE']:.3f}", flush=True)
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


# ----------------------------------------------------------------------------- plots
def plot_forecasts(
    sm: SeriesMatrix,
    ev: dict[str, Any],
    path: str | Path,
    *,
    series: Sequence[int] = (0, 1, 2),
    models: Sequence[str] | None = None,
) -> Path:
    """Actual vs predicted for a few series at the last origin (the horizon shaded), plus MAE by horizon step."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    models = list(models or ev["forecasts"])
    series = [s for s in series if s < len(sm.ids)]
    fig, axes = plt.subplots(len(series) + 1, 1, figsize=(10, 2.8 * (len(series) + 1)))
    axes = np.atleast_1d(axes)
    o = ev["origin_index"][-1]
    h = ev["h"]
    lo = max(0, o - 4 * sm.season)
    x = sm.periods[lo : o + h]
    for ax, s in zip(axes[:-1], series, strict=False):
        ax.plot(x, sm.Y[s, lo : o + h], "k-", lw=1.2, label="actual")
        for name in models:
            ax.plot(sm.periods[o : o + h], ev["forecasts"][name][s, -1], lw=1, label=name)
        ax.axvspan(sm.periods[o], sm.periods[o + h - 1], color="grey", alpha=0.15, label="forecast horizon")
        ax.set_title(f"series {sm.ids[s]}", fontsize=9)
    axes[0].legend(fontsize=7, ncol=4)
    ax = axes[-1]
    for name in models:
        ax.plot(np.arange(1, h + 1), ev["results"][name]["by_horizon"]["MASE"], "o-", label=name)
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("MASE")
    ax.set_title("error by horizon (all series and origins)", fontsize=9)
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
