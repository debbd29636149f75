"""The neural forecasters: global LSTM / GRU and a causal Transformer over windows of periods,
trained with the shared :func:`chronorec.training.trainer.train` (early stopping on -MAE)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chronorec.errors import DataError
from chronorec.temporal.forecast.forecaster_config import RNNForecastConfig, TransformerForecastConfig
from chronorec.temporal.forecast.models import Forecaster
from chronorec.temporal.forecast.series import fit_scaler

__all__ = ["GRUForecaster", "RNNForecaster", "TransformerForecaster"]


def _window_centered(net: Any) -> Any:
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
    Config = RNNForecastConfig

    def _network(self, c: int) -> Any:
        """The network: (x (B, L, 1 + c), fut (B, h, c)) -> (B, h) scaled forecasts."""
        import torch
        from torch import nn

        h, hidden = self.h, self.config.hidden
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

    def _windows(self, Z: np.ndarray, cal: np.ndarray, taus: np.ndarray) -> tuple[Any, Any, Any]:
        """Inputs, future calendars and targets of the windows ending before each ``tau``, as tensors."""
        import torch

        S, c, h = Z.shape[0], cal.shape[1], self.h
        idx = taus[:, None] - self.L + np.arange(self.L)[None, :]  # (n, L)
        x = np.concatenate([Z[:, idx][..., None], np.broadcast_to(cal[idx], (S, *idx.shape, c))], -1)
        fut = np.broadcast_to(cal[taus[:, None] + np.arange(h)[None, :]], (S, len(taus), h, c))
        y = Z[:, taus[:, None] + np.arange(h)[None, :]]

        def f(a: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(a.reshape(-1, *a.shape[2:]), dtype=np.float32))

        return f(x), f(fut), f(y)

    def fit(self, Y_train, cal):
        import torch
        import torch.nn.functional as F

        from chronorec.training.settings import TrainSettings
        from chronorec.training.trainer import train

        cfg, h, m = self.config, self.h, self.season
        self.L = cfg.window or min(4 * m, max(Y_train.shape[1] // 3, m))
        self.mu, self.sd = fit_scaler(Y_train)
        torch.manual_seed(self.run.seed)
        Z = (Y_train - self.mu[:, None]) / self.sd[:, None]
        o0 = Z.shape[1]
        self.net = self._network(cal.shape[1])
        if cfg.center:
            self.net = _window_centered(self.net)
        t_train = np.arange(self.L, o0 - 2 * h + 1)
        if len(t_train) == 0:
            raise DataError(f"training window too short for the {self.name} forecaster's windows: fewer origins")
        xtr, ftr, ytr = self._windows(Z, cal, t_train)
        xva, fva, yva = self._windows(Z, cal, np.array([o0 - h]))
        bs = cfg.batch_size

        def batches(epoch, rng):
            order = rng.permutation(len(xtr))
            for b in range(0, len(order), bs):
                i = torch.from_numpy(order[b : b + bs])
                yield xtr[i], ftr[i], ytr[i]

        def loss_fn(net, batch):
            x, fu, y = batch
            return F.l1_loss(net(x, fu), y) if cfg.loss == "mae" else F.mse_loss(net(x, fu), y)

        def validate():
            with torch.inference_mode():
                return -float((self.net(xva, fva) - yva).abs().mean())

        run = {name: getattr(self.run, name) for name in type(self.run).model_fields}
        res = train(
            self.net,
            batches=batches,
            loss_fn=loss_fn,
            validate=validate,
            settings=TrainSettings.of(cfg, **run, label=f"{self.name}-forecast"),
            n_batches=lambda: (len(xtr) + bs - 1) // bs,
            monitor="neg_mae",
            params=cfg.model_dump(),
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

    Hyper-parameters: :class:`~chronorec.temporal.forecast.forecaster_config.TransformerForecastConfig`.
    """

    name = "transformer"
    Config = TransformerForecastConfig

    def _network(self, c: int) -> Any:
        import torch
        from torch import nn

        from chronorec.nn.blocks import TransformerBlock

        cfg, h, L = self.config, self.h, self.L
        dim, layers, heads, dropout = cfg.dim, cfg.layers, cfg.heads, cfg.dropout

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
