"""The learned model of *when*: a GRU over the user's steps and the temporal features, into a censored
log-normal mixture per behaviour (Shchur et al. 2020; :class:`chronorec.nn.time_heads.LogNormalMixtureHead`).

One fitted model answers every horizon: ``P(T_b <= H)`` is the mixture's CDF (monotone in ``H``), the
expected time is closed-form and the quantiles come from its inverse. It is trained on the training
cut-offs with the censored negative log-likelihood (a case without an event by the end of its
follow-up contributes ``log S(c)``), the other behaviours' times weighted by ``aux_weight`` next to
the target's, and the epoch is chosen on the validation cut-off (the shared trainer,
:func:`chronorec.training.trainer.train`). With ``ensemble > 1`` several seeds are trained and their
mixtures pooled (equal weights: one mixture with all their components).

:class:`WhenModel` predicts at any time ``at`` (default: the end of its data) for every user with an
event before it; saved as JSON (settings, feature names, report) + safetensors (weights and the
feature scaler) + Parquet (the events the features need), atomically: no pickle.
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
from chronorec.datasets.temporal import CATEGORY
from chronorec.errors import DataError
from chronorec.temporal.when.config import WhenModelConfig
from chronorec.temporal.when.data import N_STEP_FEATURES, WhenData, make_when_data
from chronorec.temporal.when.metrics import concordance
from chronorec.training.settings import RunSettings

__all__ = ["KIND", "QUANTILES", "FeatureScaler", "WhenModel", "fit_when_model", "load_when_model"]

KIND = "when-model"
QUANTILES = (0.1, 0.5, 0.9)


@dataclass
class FeatureScaler:
    """Signed log, standardised with the training cases' mean and deviation, missing values at 0 with one
    indicator for each column that had any missing value in training."""

    names: list[str]
    mu: np.ndarray
    sd: np.ndarray
    indicator: np.ndarray  # bool per kept column

    @classmethod
    def fit(cls, features: pd.DataFrame, rows: np.ndarray) -> FeatureScaler:
        from chronorec.temporal.behavior.feature_models import signed_log

        x = signed_log(features.to_numpy(np.float64)[rows])
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mu, sd = np.nanmean(x, 0), np.nanstd(x, 0)
        keep = np.isfinite(mu) & (sd > 0)
        names = [n for n, k in zip(features.columns, keep, strict=True) if k]
        return cls(names, mu[keep], sd[keep], np.isnan(x[:, keep]).any(0))

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        from chronorec.temporal.behavior.feature_models import signed_log

        x = signed_log(features.reindex(columns=self.names).to_numpy(np.float64))
        miss = np.isnan(x)
        z = np.nan_to_num((x - self.mu) / self.sd, nan=0.0, posinf=0.0, neginf=0.0)
        return np.column_stack([np.clip(z, -10, 10), miss[:, self.indicator]]).astype(np.float32)

    @property
    def width(self) -> int:
        return len(self.names) + int(self.indicator.sum())

    def arrays(self) -> dict[str, np.ndarray]:
        return {"scaler.mu": self.mu, "scaler.sd": self.sd, "scaler.indicator": self.indicator.astype(np.int8)}


def _build_net(n_beh: int, n_feats: int, cfg: WhenModelConfig, n_items: int = 0):
    import torch
    from torch import nn

    from chronorec.nn.time_heads import LogNormalMixtureHead

    class WhenNet(nn.Module):
        """Steps (behaviour embedding + step numbers) -> GRU -> last state, beside the feature MLP -> head."""

        def __init__(self):
            super().__init__()
            d, width = cfg.dim, 0
            if cfg.use_sequence:
                self.beh = nn.Embedding(n_beh + 1, d, padding_idx=0)
                self.num = nn.Linear(N_STEP_FEATURES, d)
                self.drop = nn.Dropout(cfg.dropout)
                self.rnn = nn.GRU(d, d, batch_first=True)
                width += d
            if cfg.use_features and n_feats:
                self.feats = nn.Sequential(nn.Linear(n_feats, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, d))
                width += d
            if cfg.item_bag and n_items:
                self.items = nn.EmbeddingBag(n_items + 2, d, mode="mean", padding_idx=0)
                width += d
            if not width:
                raise ValueError("the model needs the sequence, the features or both")
            self.mix = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, d), nn.GELU())
            self.head = LogNormalMixtureHead(d, n_beh, cfg.components)

        def forward(self, tok: torch.Tensor, num: torch.Tensor, f: torch.Tensor, bag: torch.Tensor):
            parts = []
            if cfg.use_sequence:
                h = (self.beh(tok) + self.num(num)) * (tok > 0).unsqueeze(-1)
                out, _ = self.rnn(self.drop(h))
                parts.append(out[:, -1])
            if cfg.use_features and n_feats:
                parts.append(self.feats(f))
            if cfg.item_bag and n_items:
                parts.append(self.items(bag))
            return self.head(self.mix(torch.cat(parts, -1)))

    return WhenNet()


class MixturePrediction:
    """The pooled mixture of one or more networks over a set of cases (numpy out)."""

    def __init__(self, params: list[Any]):
        import torch

        from chronorec.nn.time_heads import MixtureParams

        n = len(params)
        p0 = params[0]
        self.params = MixtureParams(
            torch.cat([p.log_w for p in params], -1) - float(np.log(n)),
            torch.cat([p.mu for p in params], -1),
            torch.cat([p.sigma for p in params], -1),
            p0.loc,
            p0.scale,
        )

    def cdf(self, hours: Sequence[float]) -> np.ndarray:
        """(n, behaviours, len(hours)): P(T_b <= H)."""
        import torch

        mu = self.params.mu
        h = torch.as_tensor(np.asarray(hours, dtype=np.float32)).expand(*mu.shape[:-1], len(hours))
        return self.params.cdf(h).numpy().astype(np.float64)

    def mean(self) -> np.ndarray:
        return self.params.mean().numpy().astype(np.float64)

    def quantile(self, q: float) -> np.ndarray:
        return self.params.quantile(q).numpy().astype(np.float64)


@dataclass
class WhenModel:
    """Fitted networks, their feature scaler and settings; predicts per user and behaviour."""

    config: WhenModelConfig
    nets: list[Any]
    scaler: FeatureScaler
    settings: dict[str, Any]  # behaviors, target, freq, windows, utc_offset_hours, horizons_hours
    events: pd.DataFrame = field(repr=False)
    report: dict[str, Any] = field(default_factory=dict)
    item_vocab: list[str] = field(default_factory=list)  # the item bag's tokens (empty: no bag)

    @property
    def behaviors(self) -> list[str]:
        return list(self.settings["behaviors"])

    @property
    def as_of(self) -> int:
        return int(self.events[C.TIME].max()) + 1

    def mixture(self, data: WhenData, rows: np.ndarray | None = None) -> MixturePrediction:
        """The pooled mixture of the cases ``rows`` of ``data`` (default all)."""
        import torch

        rows = np.arange(len(data.cases)) if rows is None else np.asarray(rows)
        x = _inputs(data, rows, self.scaler, self.config, self.item_vocab)
        out = []
        with torch.inference_mode():
            for net in self.nets:
                net.eval()
                chunks = [net(*(v[b : b + 2048] for v in x)) for b in range(0, len(rows), 2048)]
                out.append(_cat(chunks))
        return MixturePrediction(out)

    def cases_at(self, events: pd.DataFrame | None, at: int | None) -> WhenData:
        ev = self.events if events is None else events
        if at is None:
            at = self.as_of if events is None else int(pd.to_numeric(ev[C.TIME]).max()) + 1
        if int(at) <= int(pd.to_numeric(ev[C.TIME]).min()):
            raise DataError(f"no events before {pd.Timestamp(int(at), unit='s')} UTC: a later --at")
        s = self.settings
        return make_when_data(
            ev, cutoffs={"test": [int(at)]}, target=s["target"], behaviors=s["behaviors"], freq=s["freq"],
            windows=tuple(s["windows"]), utc_offset_hours=float(s["utc_offset_hours"]),
        )  # fmt: skip

    def predict(
        self,
        events: pd.DataFrame | None = None,
        *,
        at: int | None = None,
        horizons_hours: Sequence[float] | None = None,
        behaviors: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """One row per (user, behaviour) for every user with an event before ``at`` (default: the end of
        the events): ``user_id, behavior, at, p_within_<H>h`` per horizon, ``expected_hours``,
        ``median_hours``, ``q10_hours``, ``q90_hours``."""
        data = self.cases_at(events, at)
        return self.table(data, horizons_hours=horizons_hours, behaviors=behaviors)

    def table(
        self, data: WhenData, *, horizons_hours: Sequence[float] | None = None, behaviors: Sequence[str] | None = None
    ) -> pd.DataFrame:
        hz = list(horizons_hours or self.settings["horizons_hours"])
        behs = list(behaviors or self.behaviors)
        unknown = [b for b in behs if b not in self.behaviors]
        if unknown:
            raise DataError(f"behaviour(s) {unknown} not modelled (this model knows {self.behaviors})")
        mix = self.mixture(data)
        cdf, mean = mix.cdf(hz), mix.mean()
        qs = {q: mix.quantile(q) for q in QUANTILES}
        users = data.cases[C.USER].to_numpy()
        at = pd.Timestamp(int(data.cases["cutoff"].iloc[0]), unit="s", tz="UTC") if len(users) else pd.NaT
        frames = []
        for b in behs:
            i = self.behaviors.index(b)
            cols: dict[str, Any] = {C.USER: users, "behavior": b, "at": at}
            for k, h in enumerate(hz):
                cols[horizon_column(h)] = cdf[:, i, k]
            cols["expected_hours"] = mean[:, i]
            cols["median_hours"] = qs[0.5][:, i]
            cols["q10_hours"] = qs[0.1][:, i]
            cols["q90_hours"] = qs[0.9][:, i]
            frames.append(pd.DataFrame(cols))
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        order = np.lexsort((out["behavior"].map(behs.index).to_numpy(), np.arange(len(out)) % max(len(users), 1)))
        return out.iloc[order].reset_index(drop=True)

    def save(self, path: str | Path) -> Path:
        """JSON + safetensors + Parquet, atomically (see the module docstring)."""
        from chronorec.artifacts import atomic_dir, save_tensors, write_manifest

        arrays = dict(self.scaler.arrays())
        for k, net in enumerate(self.nets):
            arrays.update({f"net{k}.{name}": v for name, v in net.state_dict().items()})
        meta = {
            "config": self.config.model_dump(),
            "settings": self.settings,
            "features": self.scaler.names,
            "n_networks": len(self.nets),
            "item_vocab": self.item_vocab,
            "report": self.report,
        }
        cols = [c for c in (C.USER, C.ITEM, C.TIME, C.BEHAVIOR, CATEGORY) if c in self.events.columns]
        with atomic_dir(path) as tmp:
            (tmp / "when.json").write_text(json.dumps(meta, indent=2, default=_json_default))
            save_tensors(tmp / "when.safetensors", arrays)
            self.events[cols].to_parquet(tmp / "events.parquet", index=False)
            write_manifest(tmp, KIND)
        return Path(path)


def horizon_column(hours: float) -> str:
    """``p_within_24h`` for 24 hours (``p_within_0.5h`` for half an hour)."""
    return f"p_within_{float(hours):g}h"


def _cat(chunks: list[Any]) -> Any:
    import torch

    from chronorec.nn.time_heads import MixtureParams

    if len(chunks) == 1:
        return chunks[0]
    p0 = chunks[0]
    return MixtureParams(
        torch.cat([c.log_w for c in chunks]), torch.cat([c.mu for c in chunks]),
        torch.cat([c.sigma for c in chunks]), p0.loc, p0.scale,
    )  # fmt: skip


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def load_when_model(path: str | Path) -> WhenModel:
    """A model saved by :meth:`WhenModel.save` (manifest and checksums verified)."""
    import torch

    from chronorec.artifacts import load_tensors, open_saved

    d = open_saved(path, KIND, "when-model", "predict-when --save")
    meta = json.loads((d / "when.json").read_text())
    arrays = load_tensors(d / "when.safetensors")
    cfg = WhenModelConfig(**meta["config"])
    scaler = FeatureScaler(
        list(meta["features"]), arrays["scaler.mu"], arrays["scaler.sd"], arrays["scaler.indicator"].astype(bool)
    )
    n_beh = len(meta["settings"]["behaviors"])
    vocab = [str(v) for v in meta.get("item_vocab", [])]
    nets = []
    for k in range(int(meta["n_networks"])):
        net = _build_net(n_beh, scaler.width, cfg, len(vocab))
        prefix = f"net{k}."
        state = {n[len(prefix) :]: torch.from_numpy(v.copy()) for n, v in arrays.items() if n.startswith(prefix)}
        net.load_state_dict(state)
        net.eval()
        nets.append(net)
    events = pd.read_parquet(d / "events.parquet")
    return WhenModel(cfg, nets, scaler, meta["settings"], events, meta.get("report", {}), vocab)


# ----------------------------------------------------------------------------- fitting
def _inputs(
    data: WhenData, rows: np.ndarray, scaler: FeatureScaler, cfg: WhenModelConfig, vocab: list[str]
) -> tuple[Any, ...]:
    """The network's inputs of the cases ``rows``: step tokens, step numbers, features, item bags."""
    import torch

    users = data.cases[C.USER].to_numpy()[rows]
    cuts = data.cases["cutoff"].to_numpy(np.int64)[rows]
    tok, num = data.sequences.encode(users, cuts, cfg.max_len)
    f = scaler.transform(data.features.iloc[rows])
    if vocab and data.items is not None:
        bag = data.items.bags(users, cuts, vocab, cfg.item_bag)
    else:
        bag = np.zeros((len(rows), 1), np.int64)
    return torch.from_numpy(tok), torch.from_numpy(num), torch.from_numpy(f), torch.from_numpy(bag)


def _tensors(
    data: WhenData, rows: np.ndarray, scaler: FeatureScaler, cfg: WhenModelConfig, vocab: list[str]
) -> tuple[Any, ...]:
    import torch

    t = data.time[rows].astype(np.float32)
    return (*_inputs(data, rows, scaler, cfg, vocab), torch.from_numpy(t), torch.from_numpy(data.observed[rows]))


def ranking_loss(params: Any, t: Any, observed: Any, mark: int, sigma: float) -> Any:
    """DeepHit's ranking term over the pairs of a batch: for each (i, j) with ``i``'s event observed
    before ``t_j``, ``exp(-(F_i(t_i) - F_j(t_i)) / sigma)`` (``F``: the mark's CDF), averaged."""
    import torch

    z = (torch.log(t.clamp_min(1e-6)) - params.loc) / params.scale  # (n,)
    mu, sd, w = params.mu[:, mark], params.sigma[:, mark], params.log_w[:, mark].exp()  # (n, K)
    # F[j, i] = CDF of case j at case i's time
    F = (w[:, None, :] * torch.special.ndtr((z[None, :, None] - mu[:, None, :]) / sd[:, None, :])).sum(-1)
    own = torch.diagonal(F)  # F_i(t_i)
    pair = observed[:, None] & (t[:, None] < t[None, :])  # (i, j)
    if not bool(pair.any()):
        return t.new_zeros(())
    margin = own[:, None] - F.T  # F_i(t_i) - F_j(t_i), indexed (i, j)
    return torch.exp(-margin / sigma)[pair].mean()


def _fit_one(
    data: WhenData, scaler: FeatureScaler, cfg: WhenModelConfig, run: RunSettings, seed: int, vocab: list[str]
):
    """One network trained on the training cases, its epoch chosen on the validation cases."""
    import torch

    from chronorec.training.settings import TrainSettings
    from chronorec.training.trainer import train

    torch.manual_seed(seed)
    tr, va = data.part("train"), data.part("validation")
    xtr, xva = _tensors(data, tr, scaler, cfg, vocab), _tensors(data, va, scaler, cfg, vocab)
    net = _build_net(len(data.behaviors), scaler.width, cfg, len(vocab))
    observed_times = xtr[4][xtr[5]]
    net.head.set_time_scale(observed_times if observed_times.numel() > 1 else xtr[4].flatten())
    ti = data.target_index
    w = torch.full((len(data.behaviors),), float(cfg.aux_weight))
    w[ti] = 1.0
    tau_val = data.follow_up_hours("validation")

    def batches(epoch: int, rng: np.random.Generator):
        order = rng.permutation(len(tr))
        for b in range(0, len(order), cfg.batch_size):
            i = torch.from_numpy(order[b : b + cfg.batch_size])
            yield tuple(x[i] for x in xtr)

    def loss_fn(m, batch):
        tok, num, f, bag, t, obs = batch
        p = m(tok, num, f, bag)
        loss = m.head.nll(p, t, obs, w.expand_as(t))
        if cfg.rank_weight > 0:
            loss = loss + cfg.rank_weight * ranking_loss(p, t[:, ti], obs[:, ti], ti, cfg.rank_sigma)
        return loss

    def validate() -> float:
        net.eval()
        with torch.inference_mode():
            p = net(*xva[:4])
            if cfg.monitor == "nll":
                return -float(net.head.nll(p, xva[4], xva[5], w.expand_as(xva[4])))
            risk = p.cdf(torch.full_like(xva[4], tau_val))[:, ti].numpy()
        return concordance(xva[4][:, ti].numpy(), xva[5][:, ti].numpy(), risk)

    res = train(
        net,
        batches=batches,
        loss_fn=loss_fn,
        validate=validate,
        settings=TrainSettings.of(
            cfg,
            **{k: getattr(run, k) for k in RunSettings.model_fields if k != "seed"},
            seed=seed,
            label=f"when-{seed}",
        ),  # fmt: skip
        n_batches=lambda: (len(tr) + cfg.batch_size - 1) // cfg.batch_size,
        monitor="cindex" if cfg.monitor == "cindex" else "neg_nll",
        params=cfg.model_dump(),
    )
    net.eval()
    info = {"seed": seed, "best_epoch": res.best_epoch, "epochs_run": len(res.history),
            "best_validation": res.best_metric, "train_seconds": res.train_seconds, "stopped": res.stopped}  # fmt: skip
    return net, info


def fit_when_model(
    data: WhenData,
    config: WhenModelConfig | None = None,
    *,
    run: RunSettings | None = None,
    freq: str = "day",
    windows: Sequence[int] = (1, 7, 28),
    utc_offset_hours: float = 0.0,
    horizons_hours: Sequence[float] = (24.0, 168.0),
) -> WhenModel:
    """Fit the learned model on ``data``'s training cases (epochs chosen on its validation cases);
    ``freq``, ``windows`` and ``utc_offset_hours`` must be those ``data`` was built with (saved with
    the model, which rebuilds the features at prediction time)."""
    from chronorec.training.runtime import set_threads

    cfg = config or WhenModelConfig()
    run = run or RunSettings(progress=False)
    set_threads(run.threads)
    t0 = time.perf_counter()
    if not len(data.part("train")) or not len(data.part("validation")):
        raise DataError("the time-to-event model needs training and validation cases: earlier cut-offs")
    scaler = FeatureScaler.fit(data.features, data.part("train"))
    vocab: list[str] = []
    if cfg.item_bag and data.items is not None:  # the training window: every training follow-up ends here
        vocab = data.items.vocabulary(min(data.cutoffs["validation"]), cfg.min_item_count)
    nets, infos = [], []
    for k in range(cfg.ensemble):
        net, info = _fit_one(data, scaler, cfg, run, run.seed + k, vocab)
        nets.append(net)
        infos.append(info)
    settings = {
        "behaviors": list(data.behaviors),
        "target": data.target,
        "freq": freq,
        "windows": [int(x) for x in windows],
        "utc_offset_hours": float(utc_offset_hours),
        "horizons_hours": [float(h) for h in horizons_hours],
        "time_unit": "hours",
    }
    report = {"fit": infos, "fit_seconds": time.perf_counter() - t0,
              "cases": {p: int(len(data.part(p))) for p in ("train", "validation", "test")}}  # fmt: skip
    return WhenModel(cfg, nets, scaler, settings, data.events, report, vocab)
