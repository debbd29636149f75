"""Next-behaviour prediction, split by time.

Two tasks, both posed at a cut-off time ``t`` for every user with at least one event before ``t``:

* ``target`` (binary): does the user perform the target behaviour (default ``buy``) in ``[t, t + H)``?
* ``next_type`` (multi-class): the behaviour type of the user's first event in ``[t, t + H)``
  (users without an event in the window are not cases of this task).

Cut-offs (see :func:`make_cutoffs`): the test cut-off ``t_test``, the validation cut-off
``t_test - H`` and training cut-offs ``t_test - 2H, t_test - 2H - step, ...``. Every label window
ends at or before the next later cut-off, so no training label uses an event at or after the
validation cut-off and no validation label one at or after the test cut-off; features at ``t``
use only events before ``t`` (:func:`chronorec.temporal.features.feature_table`). Encoders, scalers and
token vocabularies are fitted on the training window only.

Models: the trivial baselines (the user's past rate of the target behaviour; the training base
rate; for ``next_type`` the user's past type shares and the training prior), logistic regression
and gradient boosting (scikit-learn) on the temporal features, and GRU / LSTM / Transformer
sequence classifiers over event tokens (item, category, behaviour, bucketed gap to the previous
event, bucketed age at the cut-off) trained with the shared loop :func:`chronorec.training.trainer.train`.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.evaluation.calibration import calibration_plot
from chronorec.evaluation.classification import binary_metrics, multiclass_metrics
from chronorec.evaluation.stats import paired_bootstrap
from chronorec.temporal.features import CATEGORY, event_frame, feature_table

__all__ = [
    "BehaviorData",
    "SequenceClassifierConfig",
    "fit_sequence_classifier",
    "make_behavior_data",
    "make_cutoffs",
    "predict_behavior",
    "paired_bootstrap",
    "rolling_folds",
]

FEATURE_MODELS = ("logistic", "gbm")
SEQUENCE_MODELS = ("gru", "lstm", "transformer")
HYBRID = "+features"  # e.g. "gru+features": the sequence classifier with the feature vector at its head


# ----------------------------------------------------------------------------- samples
def make_cutoffs(
    timestamps: np.ndarray,
    *,
    horizon_s: int,
    step_s: int | None = None,
    n_train: int | None = 6,
    test_cutoff: int | None = None,
    min_history_s: int = 86400,
    align_s: int = 86400,
    utc_offset_hours: float = 0.0,
) -> dict[str, list[int]]:
    """Train / validation / test cut-offs (UTC seconds).

    The default test cut-off is the last ``align_s``-aligned boundary (local time) with a full
    horizon of data after it. Training cut-offs go back from ``validation - horizon_s`` by ``step_s``
    (default ``horizon_s``; a shorter step gives overlapping training label windows, all of which still
    end by the validation cut-off) while at least ``min_history_s`` lie between the start of the first
    ``align_s`` period and the cut-off, at most ``n_train`` of them (``None``: no limit).
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    off = int(round(utc_offset_hours * 3600))
    lo, hi = int(ts.min()), int(ts.max()) + 1
    lo = (lo + off) // align_s * align_s - off  # history counts from the start of the first (local) period
    if test_cutoff is None:
        last = hi - horizon_s
        test_cutoff = (last + off) // align_s * align_s - off
    val = test_cutoff - horizon_s
    step = step_s or horizon_s
    train = []
    t = val - horizon_s
    while t - lo >= min_history_s and (n_train is None or len(train) < n_train):
        train.append(int(t))
        t -= step
    if not train:
        raise ValueError("not enough history for a training cut-off: shorten --horizon or --min-history")
    return {"train": sorted(train), "validation": [int(val)], "test": [int(test_cutoff)]}


RECENT_HOURS = (1, 6, 24, 72)


def funnel_features(
    events: pd.DataFrame,
    users: np.ndarray,
    cutoff: int,
    *,
    classes: Sequence[str],
    target: str = "buy",
    hours: Sequence[int] = RECENT_HOURS,
    utc_offset_hours: float = 0.0,
) -> pd.DataFrame:
    """Recency and purchase-funnel features of ``users`` at ``cutoff``, from events strictly before it.

    Columns: ``recent{h}h_<b>`` (events of each type in the last ``h`` hours), ``recent{h}h_items``
    (distinct items), ``max_item_views_24h`` (most events on one item in the last 24 h),
    ``open_<b>_items[_24h|_72h]`` for ``b`` in cart / fav (distinct items carted or faved, with no
    ``target`` event on the same item since, all time and within the last 24 / 72 h),
    ``open_items_viewed_24h`` (events in the last 24 h on those open items), ``target_days``
    (distinct local days with a target event), ``hours_since_last_{b}_item_target`` (the most recent
    ``b`` event that is still open) and the cut-off's local hour as sin / cos.
    """
    ev = events[events[C.TIME] < cutoff]
    ev = ev[ev[C.USER].isin(users)]
    ui = pd.Index(users)
    u = ui.get_indexer(ev[C.USER])
    ts = ev[C.TIME].to_numpy()
    item = ev[C.ITEM].to_numpy()
    bc = pd.Categorical(ev[C.BEHAVIOR], categories=list(classes)).codes
    n, k = len(ui), len(classes)
    out: dict[str, np.ndarray] = {}
    age_h = (cutoff - ts) / 3600.0
    for h in hours:
        w = age_h <= h
        cnt = np.bincount(u[w] * k + bc[w], minlength=n * k).reshape(n, k)
        for i, b in enumerate(classes):
            out[f"recent{h}h_{b}"] = cnt[:, i].astype(np.float64)
        pairs = pd.DataFrame({"u": u[w], "i": item[w]}).drop_duplicates()
        out[f"recent{h}h_items"] = np.bincount(pairs["u"].to_numpy(), minlength=n).astype(np.float64)
    w24 = age_h <= 24
    per_item = pd.DataFrame({"u": u[w24], "i": item[w24]}).groupby(["u", "i"]).size()
    mx = per_item.groupby(level=0).max() if len(per_item) else pd.Series(dtype=np.float64)
    out["max_item_views_24h"] = mx.reindex(np.arange(n)).fillna(0).to_numpy(np.float64)
    ti = list(classes).index(target)
    frame = pd.DataFrame({"u": u, "i": item, "t": ts, "b": bc})
    last_target = frame[frame["b"] == ti].groupby(["u", "i"])["t"].max().rename("t_target")
    open_keys = []
    for b in ("cart", "fav"):
        if b not in classes or b == target:
            continue
        bi = list(classes).index(b)
        e = frame[frame["b"] == bi].groupby(["u", "i"])["t"].max().rename("t_b").to_frame().join(last_target)
        e = e[~(e["t_target"] >= e["t_b"])]  # no target event on the item since its last cart / fav
        uu = e.index.get_level_values(0).to_numpy()
        age = (cutoff - e["t_b"].to_numpy()) / 3600.0
        out[f"open_{b}_items"] = np.bincount(uu, minlength=n).astype(np.float64)
        out[f"open_{b}_items_24h"] = np.bincount(uu[age <= 24], minlength=n).astype(np.float64)
        out[f"open_{b}_items_72h"] = np.bincount(uu[age <= 72], minlength=n).astype(np.float64)
        rec = pd.Series(age).groupby(uu).min()
        out[f"hours_since_open_{b}"] = rec.reindex(np.arange(n)).to_numpy(np.float64)
        open_keys.append(e.index)
    if open_keys:
        keys = open_keys[0].append(open_keys[1:]).unique() if len(open_keys) > 1 else open_keys[0]
        recent = frame[w24]
        hit = pd.MultiIndex.from_arrays([recent["u"], recent["i"]]).isin(keys)
        out["open_items_viewed_24h"] = np.bincount(recent["u"].to_numpy()[hit], minlength=n).astype(np.float64)
    off = int(round(utc_offset_hours * 3600))
    days = pd.DataFrame({"u": u[bc == ti], "d": (ts[bc == ti] + off) // 86400}).drop_duplicates()
    out["target_days"] = np.bincount(days["u"].to_numpy(), minlength=n).astype(np.float64)
    hour = ((cutoff + off) % 86400) / 3600.0
    out["cutoff_hour_sin"] = np.full(n, np.sin(2 * np.pi * hour / 24))
    out["cutoff_hour_cos"] = np.full(n, np.cos(2 * np.pi * hour / 24))
    return pd.DataFrame(out)


@dataclass
class BehaviorData:
    """Cases (user, cut-off) with labels and the feature matrix, in one frame per part."""

    cases: pd.DataFrame  # user_id, cutoff, part, y_target, next_type (-1 = no event in the window)
    features: pd.DataFrame  # aligned with cases (same row order), numeric feature columns only
    classes: list[str]
    target: str
    horizon_s: int
    cutoffs: dict[str, list[int]]
    events: pd.DataFrame = field(repr=False)
    past_rate: np.ndarray = field(repr=False)  # the trivial baseline, aligned with cases
    past_shares: np.ndarray = field(repr=False)  # (n, K) past behaviour counts, aligned with cases

    def part(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.cases["part"].to_numpy() == name)

    def model_input(self) -> np.ndarray:
        """The feature models' input: every feature, plus the trivial baseline's (past-only) statistic."""
        return np.column_stack([self.features.to_numpy(np.float64), self.past_rate])


def make_behavior_data(
    events: pd.DataFrame,
    *,
    target: str = "buy",
    horizon_s: int = 86400,
    cutoffs: dict[str, list[int]] | None = None,
    n_train_cutoffs: int | None = None,
    step_s: int | None = None,
    freq: str = "day",
    windows: Sequence[int] = (1, 7, 28),
    utc_offset_hours: float = 0.0,
) -> BehaviorData:
    """Cases, labels, temporal features (:func:`chronorec.temporal.features.feature_table` plus
    :func:`funnel_features`) and the trivial baselines for every cut-off.

    Default cut-offs: :func:`make_cutoffs` with training cut-offs every ``step_s`` (default
    ``horizon_s / 4``: on Taobao the feature models score the same on validation with a 3, 6, 12 or
    24 h step, and the sequence classifiers get four times the training cases), as many as the
    history allows unless ``n_train_cutoffs`` caps them."""
    df = event_frame(events)
    if C.BEHAVIOR not in df.columns:
        raise ValueError("behaviour prediction needs a 'behavior' column")
    classes = sorted(pd.unique(df[C.BEHAVIOR]).tolist())
    if target not in classes:
        raise ValueError(f"target behaviour {target!r} not in the data (types: {classes})")
    cuts = cutoffs or make_cutoffs(
        df[C.TIME].to_numpy(),
        horizon_s=horizon_s,
        step_s=step_s or max(horizon_s // 4, 1),
        n_train=n_train_cutoffs,
        utc_offset_hours=utc_offset_hours,
    )
    all_cuts = sorted({t for v in cuts.values() for t in v})
    part_of = {t: p for p, v in cuts.items() for t in v}
    feats = feature_table(
        df, entity=C.USER, cutoffs=all_cuts, freq=freq, windows=windows, utc_offset_hours=utc_offset_hours
    )
    ts = df[C.TIME].to_numpy()
    users = df[C.USER].to_numpy()
    bcode = pd.Categorical(df[C.BEHAVIOR], categories=classes).codes.astype(np.int64)
    ti = classes.index(target)
    y_t, nxt, rate, funnel = [], [], [], []
    for t in all_cuts:
        rows = feats["cutoff"].to_numpy() == t
        u = feats.loc[rows, "entity_id"]
        funnel.append(
            funnel_features(df, u.to_numpy(), t, classes=classes, target=target, utc_offset_hours=utc_offset_hours)
        )
        win = (ts >= t) & (ts < t + horizon_s)
        wdf = pd.DataFrame({"u": users[win], "b": bcode[win], "t": ts[win]}).sort_values(["u", "t"], kind="stable")
        has_t = set(wdf.loc[wdf["b"] == ti, "u"])
        first = wdf.groupby("u", sort=False)["b"].first()
        y_t.append(u.isin(has_t).to_numpy().astype(np.int64))
        nxt.append(u.map(first).fillna(-1).to_numpy().astype(np.int64))
        # past rate: share of the user's past H-windows (back from t) holding a target event
        past = ts < t
        pdf = pd.DataFrame({"u": users[past], "t": ts[past], "b": bcode[past]})
        first_t = pdf.groupby("u")["t"].min()
        n_win = np.ceil((t - u.map(first_t).to_numpy()) / horizon_s)
        tgt = pdf[pdf["b"] == ti]
        j = np.ceil((t - tgt["t"].to_numpy()) / horizon_s)
        hits = pd.DataFrame({"u": tgt["u"].to_numpy(), "j": j}).drop_duplicates().groupby("u").size()
        rate.append(u.map(hits).fillna(0).to_numpy() / np.maximum(n_win, 1))
    cases = pd.DataFrame(
        {
            C.USER: feats["entity_id"].to_numpy(),
            "cutoff": feats["cutoff"].to_numpy(),
            "part": feats["cutoff"].map(part_of).to_numpy(),
            "y_target": np.concatenate(y_t),
            "next_type": np.concatenate(nxt),
        }
    )
    shares = feats[[f"n_{b}" for b in classes]].to_numpy(np.float64)
    x = pd.concat(
        [feats.drop(columns=["entity_id", "cutoff", "cutoff_time"]), pd.concat(funnel, ignore_index=True)], axis=1
    )
    return BehaviorData(
        cases=cases,
        features=x,
        classes=classes,
        target=target,
        horizon_s=horizon_s,
        cutoffs=cuts,
        events=df,
        past_rate=np.concatenate(rate),
        past_shares=shares,
    )


# ----------------------------------------------------------------------------- feature models
def _signed_log(x: np.ndarray) -> np.ndarray:
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
            FunctionTransformer(_signed_log),
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=params.get("C", 0.3), max_iter=2000),
        )
    elif kind == "gbm":
        gp = {"learning_rate": 0.03, "max_iter": 200, "max_leaf_nodes": 15, "min_samples_leaf": 40}
        gp.update({"l2_regularization": 1.0, **params})
        model = HistGradientBoostingClassifier(**gp, random_state=seed)
    else:
        raise ValueError(f"unknown feature model {kind!r}: use logistic or gbm")
    return model.fit(x, y)


# ----------------------------------------------------------------------------- sequence classifier
@dataclass
class SequenceClassifierConfig:
    arch: str = "gru"  # gru | lstm | transformer
    max_len: int = 50
    dim: int = 32
    layers: int = 1
    heads: int = 2
    dropout: float = 0.2
    epochs: int = 30
    batch_size: int = 128
    lr: float = 5e-4  # Taobao GRU, validation ROC-AUC: 0.633 (best epoch 10) vs 0.627 at 2e-3 (best epoch 5)
    weight_decay: float = 1e-4
    patience: int = 5
    min_item_count: int = 2
    # item-id embeddings over-fit the training cases on Taobao (validation ROC-AUC of the GRU, 6 h
    # training cut-off step: 0.58 with, 0.63 without)
    use_items: bool = False
    # also feed the temporal feature vector (the feature models' input, standardised on the
    # training cases) to the classification head, next to the sequence encoding
    use_features: bool = False
    seed: int = 0
    threads: int | None = None
    progress: bool = False


N_GAP = 20  # log2 buckets of seconds


def _bucket(seconds: np.ndarray) -> np.ndarray:
    return 2 + np.clip(np.floor(np.log2(np.maximum(seconds, 1))), 0, N_GAP - 3).astype(np.int64)


class _Tokens:
    """Token vocabularies fitted on the training window; encodes the last events before each cut-off."""

    def __init__(self, events: pd.DataFrame, classes: list[str], train_end: int, min_count: int):
        tr = events[events[C.TIME] < train_end]
        ic = tr[C.ITEM].value_counts()
        self.items = pd.Index(ic.index[ic >= min_count])
        self.cats = (
            pd.Index(tr[CATEGORY].value_counts().pipe(lambda s: s.index[s >= min_count]))
            if CATEGORY in tr.columns
            else pd.Index([])
        )
        self.classes = classes
        ev = events.sort_values([C.USER, C.TIME], kind="stable")
        self.users = ev[C.USER].to_numpy()
        self.ts = ev[C.TIME].to_numpy()
        self.item = self.items.get_indexer(ev[C.ITEM]) + 2  # 0 pad, 1 unknown
        self.cat = self.cats.get_indexer(ev[CATEGORY]) + 2 if CATEGORY in ev.columns else np.ones(len(ev), np.int64)
        self.beh = pd.Categorical(ev[C.BEHAVIOR], categories=classes).codes.astype(np.int64) + 1
        gap = np.r_[0, np.diff(self.ts)]
        first = np.r_[True, self.users[1:] != self.users[:-1]]
        self.gap = np.where(first, 1, _bucket(gap))
        self.ustart = pd.Series(np.flatnonzero(first), index=self.users[first])
        self.uend = pd.Series(np.r_[np.flatnonzero(first)[1:], len(ev)], index=self.users[first])

    @property
    def sizes(self) -> tuple[int, int, int]:
        return len(self.items) + 2, len(self.cats) + 2, len(self.classes) + 1

    def encode(self, users: np.ndarray, cutoffs: np.ndarray, max_len: int) -> np.ndarray:
        """(n, max_len, 5) int64 tokens of the last ``max_len`` events strictly before each cut-off."""
        out = np.zeros((len(users), max_len, 5), np.int64)
        a = self.ustart.reindex(users).to_numpy()
        b = self.uend.reindex(users).to_numpy()
        for r in range(len(users)):
            lo, hi = int(a[r]), int(b[r])
            hi = lo + int(np.searchsorted(self.ts[lo:hi], cutoffs[r], side="left"))
            lo = max(lo, hi - max_len)
            n = hi - lo
            if n <= 0:
                continue
            s = slice(max_len - n, max_len)
            out[r, s, 0] = self.item[lo:hi]
            out[r, s, 1] = self.cat[lo:hi]
            out[r, s, 2] = self.beh[lo:hi]
            out[r, s, 3] = self.gap[lo:hi]
            out[r, s, 4] = _bucket(cutoffs[r] - self.ts[lo:hi])
        return out


def _feature_matrix(data: BehaviorData, train_rows: np.ndarray) -> np.ndarray:
    """The feature models' input for the sequence head: signed log, standardised with training
    statistics, missing values set to 0 (the training mean) with one indicator per column that has any."""
    x = _signed_log(data.model_input())
    tr = x[train_rows]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu, sd = np.nanmean(tr, 0), np.nanstd(tr, 0)
    keep = np.isfinite(mu) & (sd > 0)
    miss = np.isnan(x[:, keep])
    z = np.nan_to_num((x[:, keep] - mu[keep]) / sd[keep], nan=0.0, posinf=0.0, neginf=0.0)
    has = np.isnan(tr[:, keep]).any(0)
    return np.column_stack([z, miss[:, has]]).astype(np.float32)


def _build_module(cfg: SequenceClassifierConfig, sizes: tuple[int, int, int], n_out: int, n_feats: int = 0):
    import torch
    from torch import nn

    from chronorec.models.sequential.blocks import FastDropout, TransformerBlock, causal_padding_mask

    class SequenceClassifier(nn.Module):
        """Summed token embeddings -> GRU / LSTM / causal Transformer -> last position -> logits."""

        def __init__(self):
            super().__init__()
            n_items, n_cats, n_beh = sizes
            d = cfg.dim
            self.item = nn.Embedding(n_items, d, padding_idx=0)
            self.cat = nn.Embedding(n_cats, d, padding_idx=0)
            self.beh = nn.Embedding(n_beh, d, padding_idx=0)
            self.gap = nn.Embedding(N_GAP, d, padding_idx=0)
            self.age = nn.Embedding(N_GAP, d, padding_idx=0)
            self.drop = FastDropout(cfg.dropout)
            if cfg.arch == "transformer":
                self.pos = nn.Embedding(cfg.max_len, d)
                self.blocks = nn.ModuleList(TransformerBlock(d, cfg.heads, cfg.dropout) for _ in range(cfg.layers))
                self.ln = nn.LayerNorm(d)
            else:
                rnn = nn.GRU if cfg.arch == "gru" else nn.LSTM
                self.rnn = rnn(d, d, num_layers=cfg.layers, batch_first=True)
            self.feats = nn.Sequential(nn.Linear(n_feats, d), nn.GELU(), nn.Dropout(cfg.dropout)) if n_feats else None
            self.head = nn.Sequential(nn.Linear(2 * d if n_feats else d, d), nn.GELU(), nn.Linear(d, n_out))

        def forward(self, x: torch.Tensor, f: torch.Tensor | None = None) -> torch.Tensor:
            h = self.cat(x[..., 1]) + self.beh(x[..., 2]) + self.gap(x[..., 3])
            if cfg.use_items:
                h = h + self.item(x[..., 0])
            h = self.drop(h + self.age(x[..., 4]))
            if cfg.arch == "transformer":
                L = x.shape[1]
                real = x[..., 2]
                h = h + self.pos(torch.arange(L - 1, -1, -1, device=x.device))[None]
                keep = (real > 0).unsqueeze(-1)
                mask = causal_padding_mask(real)
                for blk in self.blocks:
                    h = blk(h * keep, mask)
                h = self.ln(h)
            else:
                h, _ = self.rnn(h)
            h = h[:, -1]
            if self.feats is not None:
                h = torch.cat([h, self.feats(f)], -1)
            return self.head(h)

    return SequenceClassifier()


def fit_sequence_classifier(
    data: BehaviorData, task: str, cfg: SequenceClassifierConfig
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train on the training cases (early stopping on the validation cases) with the shared loop
    :func:`chronorec.training.trainer.train`; returns probabilities per part and fit information."""
    import torch
    import torch.nn.functional as F

    from chronorec.training.trainer import TrainSettings, set_threads, train

    set_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train_end = min(data.cutoffs["validation"])  # every training label window ends here
    tok = _Tokens(data.events, data.classes, train_end, cfg.min_item_count)
    binary = task == "target"
    k = len(data.classes)
    y_all = data.cases["y_target"].to_numpy() if binary else data.cases["next_type"].to_numpy()
    parts = {}
    for p in ("train", "validation", "test"):
        idx = data.part(p)
        if not binary:
            idx = idx[y_all[idx] >= 0]
        x = tok.encode(data.cases[C.USER].to_numpy()[idx], data.cases["cutoff"].to_numpy()[idx], cfg.max_len)
        parts[p] = (idx, torch.from_numpy(x), torch.from_numpy(y_all[idx]))
    fx = _feature_matrix(data, parts["train"][0]) if cfg.use_features else np.zeros((len(data.cases), 0), np.float32)
    feats = {p: torch.from_numpy(fx[parts[p][0]]) for p in parts}
    module = _build_module(cfg, tok.sizes, 1 if binary else k, fx.shape[1])

    def predict(p: str) -> np.ndarray:
        x, f = parts[p][1], feats[p]
        module.eval()
        outs = []
        with torch.inference_mode():
            for b in range(0, len(x), 1024):
                z = module(x[b : b + 1024], f[b : b + 1024])
                outs.append(torch.sigmoid(z[:, 0]) if binary else torch.softmax(z, -1))
        return torch.cat(outs).numpy().astype(np.float64) if outs else np.zeros((0,) if binary else (0, k))

    xtr, ftr, ytr = parts["train"][1], feats["train"], parts["train"][2]

    def batches(epoch: int, rng: np.random.Generator):
        order = rng.permutation(len(xtr))
        for b in range(0, len(order), cfg.batch_size):
            i = torch.from_numpy(order[b : b + cfg.batch_size])
            yield xtr[i], ftr[i], ytr[i]

    def loss_fn(m, batch):
        x, f, y = batch
        z = m(x, f)
        return F.binary_cross_entropy_with_logits(z[:, 0], y.float()) if binary else F.cross_entropy(z, y)

    yv = parts["validation"][2].numpy()

    def validate() -> float:
        pv = predict("validation")
        if binary:
            return binary_metrics(yv, pv)["pr_auc"]
        return -multiclass_metrics(yv, pv)["log_loss"]

    settings = TrainSettings(
        epochs=cfg.epochs,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        patience=cfg.patience,
        seed=cfg.seed,
        threads=cfg.threads,
        progress=cfg.progress,
        label=f"{cfg.arch}-{task}",
    )
    res = train(
        module,
        batches=batches,
        loss_fn=loss_fn,
        validate=validate,
        settings=settings,
        n_batches=lambda: (len(xtr) + cfg.batch_size - 1) // cfg.batch_size,
    )
    probs = {p: predict(p) for p in ("validation", "test")}
    info = {
        "best_epoch": res.best_epoch,
        "epochs_run": len(res.history),
        "best_validation": res.best_metric,
        "train_seconds": res.train_seconds,
        "stopped": res.stopped,
        "vocab_items": tok.sizes[0],
        "parameters": int(sum(p.numel() for p in module.parameters())),
    }
    return {p: (parts[p][0], probs[p]) for p in probs}, info


# ----------------------------------------------------------------------------- experiment
def _proba(model: Any, x: np.ndarray, k: int, binary: bool) -> np.ndarray:
    pr = model.predict_proba(x)
    if binary:
        return pr[:, 1]
    full = np.zeros((len(x), k))  # classes absent from training get probability 0
    full[:, model.classes_] = pr
    return full


def _selection_metric(y: np.ndarray, p: np.ndarray, binary: bool) -> float:
    """What the validation search maximises: ROC-AUC (binary) or minus the log loss (multi-class)."""
    if binary:
        return float(binary_metrics(y, p)["roc_auc"])
    return -float(multiclass_metrics(y, p)["log_loss"])


class _Scorer:
    """Scores one model's validation and test probabilities into ``res`` (and prints the test line)."""

    def __init__(self, res, probs_test, ys, classes, task, progress):
        self.res, self.probs_test, self.ys, self.classes = res, probs_test, ys, classes
        self.task, self.progress = task, progress

    def __call__(self, name: str, pv: np.ndarray, pt: np.ndarray, info: dict[str, Any] | None = None) -> None:
        binary = self.classes is None
        fn = binary_metrics if binary else (lambda y, p: multiclass_metrics(y, p, classes=self.classes))
        self.res[name] = {"validation": fn(self.ys[0], pv), "test": fn(self.ys[1], pt), **(info or {})}
        self.probs_test[name] = pt
        if self.progress:
            m = self.res[name]["test"]
            msg = (
                f"ROC-AUC {m['roc_auc']:.4f} PR-AUC {m['pr_auc']:.4f} Brier {m['brier']:.4f}"
                if binary
                else f"acc {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f} macro PR-AUC {m['macro_pr_auc']:.4f}"
            )
            print(f"[{self.task}] {name}: test {msg}", flush=True)


def _baselines(data: BehaviorData, task: str, idx: np.ndarray, train_idx: np.ndarray) -> dict[str, np.ndarray]:
    if task == "target":
        prev = data.cases["y_target"].to_numpy()[train_idx].mean()
        return {"past_rate": data.past_rate[idx], "base_rate": np.full(len(idx), prev)}
    k = len(data.classes)
    y = data.cases["next_type"].to_numpy()
    prior = np.bincount(y[train_idx], minlength=k) / max(len(train_idx), 1)
    cnt = data.past_shares[idx]
    alpha = 5.0
    shares = (cnt + alpha * prior) / (cnt.sum(1, keepdims=True) + alpha)
    return {"past_shares": shares, "prior": np.tile(prior, (len(idx), 1))}


def rolling_folds(cutoffs: dict[str, list[int]], horizon_s: int, n_test: int) -> list[dict[str, list[int]]]:
    """``n_test`` rolling evaluation folds, oldest first: fold ``k`` tests at ``test - k * H`` with its
    validation cut-off one horizon earlier and, for training, every cut-off of ``cutoffs`` whose label
    window ends by that validation cut-off. The last fold is ``cutoffs`` itself; each fold is refitted."""
    if n_test < 1:
        raise ValueError("test_cutoffs must be at least 1")
    t = cutoffs["test"][0]
    known = set(cutoffs["train"]) | set(cutoffs["validation"]) | {t}
    folds = []
    for k in range(n_test - 1, -1, -1):
        tk, vk = t - k * horizon_s, t - (k + 1) * horizon_s
        train = [c for c in cutoffs["train"] if c + horizon_s <= vk]
        if tk not in known or vk not in known or not train:
            raise ValueError(
                f"not enough history for {n_test} rolling test cut-offs: use fewer test cut-offs or a shorter horizon"
            )
        folds.append({"train": train, "validation": [vk], "test": [tk]})
    return folds


def _fold_view(data: BehaviorData, cuts: dict[str, list[int]]) -> BehaviorData:
    """The same cases and features with parts reassigned for one fold (other cut-offs: ``unused``)."""
    part_of = {t: p for p, v in cuts.items() for t in v}
    cases = data.cases.copy()
    cases["part"] = cases["cutoff"].map(part_of).fillna("unused")
    return replace(data, cases=cases, cutoffs=cuts)


def _training_sets(data: BehaviorData, rows: np.ndarray, tune: bool) -> dict[str, np.ndarray]:
    """Training cases of the feature models: ``all`` cut-offs, and (searched on validation when
    ``tune``) only those at the test cut-off's time of day (``aligned``), whose recency features are
    distributed as the test cases' are. On Taobao (3 rolling folds) validation picks ``aligned`` for
    the GBM (ROC-AUC 0.665 against 0.654), while the sequence classifiers gain from the 4x cases of
    ``all`` (GRU 0.626 against 0.617), so they always train on every cut-off."""
    sets = {"all": rows}
    if tune:
        t = data.cutoffs["test"][0]
        aligned = rows[(t - data.cases["cutoff"].to_numpy()[rows]) % data.horizon_s == 0]
        if 0 < len(aligned) < len(rows):
            sets["aligned"] = aligned
    return sets


def _fit_fold(
    data: BehaviorData,
    task: str,
    x_all: np.ndarray,
    models: Sequence[str],
    seq_cfg: SequenceClassifierConfig,
    tune: bool,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]]]:
    """Fit every model on one fold's training cases; validation and test probabilities per model."""
    binary = task == "target"
    y_all = data.cases["y_target"].to_numpy() if binary else data.cases["next_type"].to_numpy()
    sel = {p: data.part(p) for p in ("train", "validation", "test")}
    if not binary:
        sel = {p: i[y_all[i] >= 0] for p, i in sel.items()}
    ys = (y_all[sel["validation"]], y_all[sel["test"]])
    out: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] = {}
    nv = len(sel["validation"])
    for name, p in _baselines(data, task, np.r_[sel["validation"], sel["test"]], sel["train"]).items():
        out[name] = (p[:nv], p[nv:], {})
    for kind in models:
        t1 = time.perf_counter()
        if kind in FEATURE_MODELS:
            search = []
            for cut_set, rows in _training_sets(data, sel["train"], tune).items():
                xtr = x_all[rows]
                with np.errstate(invalid="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    cols = np.flatnonzero(np.isfinite(xtr).any(0) & (np.nanstd(xtr, 0) > 0))  # drop empty / constant
                xva = x_all[sel["validation"]][:, cols]
                for params in FEATURE_GRIDS[kind] if tune else [{}]:
                    m = fit_feature_model(kind, xtr[:, cols], y_all[rows], seed=seed, params=params)
                    pv = _proba(m, xva, len(data.classes), binary)
                    crit = _selection_metric(ys[0], pv, binary)
                    search.append({"params": params, "train_cutoffs": cut_set, "validation": crit})
                    if crit >= max(r["validation"] for r in search):
                        best = (m, pv, params, cols, cut_set)
            m, pv, params, cols, cut_set = best
            pt = _proba(m, x_all[sel["test"]][:, cols], len(data.classes), binary)
            info = {"fit_seconds": time.perf_counter() - t1, "n_features_used": len(cols), "params": params}
            out[kind] = (pv, pt, {**info, "train_cutoffs": cut_set, "search": search})
        elif kind.removesuffix(HYBRID) in SEQUENCE_MODELS:
            hybrid = kind.endswith(HYBRID)
            cfg = SequenceClassifierConfig(
                **{
                    **seq_cfg.__dict__,
                    "arch": kind.removesuffix(HYBRID),
                    "use_features": hybrid or seq_cfg.use_features,
                }
            )
            pr, info = fit_sequence_classifier(data, task, cfg)
            info["fit_seconds"] = time.perf_counter() - t1
            out[kind] = (pr["validation"][1], pr["test"][1], info)
        else:
            raise ValueError(
                f"unknown model {kind!r}: use {', '.join(FEATURE_MODELS + SEQUENCE_MODELS)} (a sequence model with {HYBRID})"
            )
    return {"validation": sel["validation"], "test": sel["test"]}, out


FOLD_INFO = ("params", "train_cutoffs", "best_epoch", "epochs_run", "fit_seconds", "n_features_used")


def predict_behavior(
    events: pd.DataFrame,
    *,
    tasks: Sequence[str] = ("target", "next_type"),
    target: str = "buy",
    horizon_s: int = 86400,
    n_train_cutoffs: int | None = None,
    step_s: int | None = None,
    test_cutoffs: int = 1,
    freq: str = "day",
    windows: Sequence[int] = (1, 7, 28),
    utc_offset_hours: float = 0.0,
    models: Sequence[str] = ("logistic", "gbm", "gru", "transformer"),
    seq_config: SequenceClassifierConfig | None = None,
    tune: bool = True,
    out_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the cases, fit every model on the training cut-offs and evaluate on the test cut-off.

    With ``test_cutoffs = n > 1`` the evaluation rolls over the last ``n`` horizons
    (:func:`rolling_folds`): every model is refitted per fold on the cut-offs before it and the test
    (and validation) predictions of all folds are pooled for the metrics; per-fold test figures are
    kept under ``folds`` and their mean under ``test_mean_over_folds``. For the binary task each
    model is compared with the past-rate baseline by a user-clustered paired bootstrap
    (:func:`paired_bootstrap`) of the fold-mean ROC-AUC and PR-AUC.

    With ``tune`` the feature models' regularisation is chosen from :data:`FEATURE_GRIDS` on each
    fold's validation cut-off (ROC-AUC, or log loss for ``next_type``); test cut-offs are scored once.

    Returns ``{"data": ..., "tasks": {task: {model: {"test": metrics, "validation": metrics, ...}}}}``;
    with ``out_dir`` writes ``behavior.json`` and one calibration plot per task.
    """
    t0 = time.perf_counter()
    data = make_behavior_data(
        events,
        target=target,
        horizon_s=horizon_s,
        n_train_cutoffs=n_train_cutoffs,
        step_s=step_s,
        freq=freq,
        windows=windows,
        utc_offset_hours=utc_offset_hours,
    )
    prep = time.perf_counter() - t0
    folds = rolling_folds(data.cutoffs, horizon_s, test_cutoffs)
    views = [_fold_view(data, f) for f in folds]
    x_all = data.model_input()
    y_target = data.cases["y_target"].to_numpy()

    def stamp(v: list[int]) -> list[str]:
        return [str(pd.Timestamp(t, unit="s")) + " UTC" for t in v]

    out: dict[str, Any] = {
        "data": {
            "cases": {p: int(sum(len(v.part(p)) for v in views)) for p in ("train", "validation", "test")},
            "cutoffs": {p: stamp(v) for p, v in folds[-1].items()},
            "folds": [{p: stamp(v) for p, v in f.items()} for f in folds],
            "classes": data.classes,
            "target": target,
            "horizon_hours": horizon_s / 3600,
            "n_features": x_all.shape[1],
            "positive_rate": {
                p: float(np.concatenate([y_target[v.part(p)] for v in views]).mean())
                for p in ("train", "validation", "test")
            },
            "feature_seconds": prep,
        },
        "tasks": {},
    }
    seq_cfg = seq_config or SequenceClassifierConfig(seed=seed, progress=progress)
    for task in tasks:
        binary = task == "target"
        if task not in ("target", "next_type"):
            raise ValueError(f"unknown task {task!r}: use target or next_type")
        y_all = y_target if binary else data.cases["next_type"].to_numpy()
        fold_res = [_fit_fold(v, task, x_all, models, seq_cfg, tune, seed) for v in views]
        idx_v = np.concatenate([s["validation"] for s, _ in fold_res])
        idx_t = np.concatenate([s["test"] for s, _ in fold_res])
        res: dict[str, Any] = {}
        probs_test: dict[str, np.ndarray] = {}
        ys = (y_all[idx_v], y_all[idx_t])
        score = _Scorer(res, probs_test, ys, data.classes if not binary else None, task, progress)
        fn = binary_metrics if binary else (lambda y, p: multiclass_metrics(y, p, classes=data.classes))
        for name in fold_res[0][1]:
            parts = [r[name] for _, r in fold_res]
            info = dict(parts[-1][2]) if len(folds) == 1 else {}
            if len(folds) > 1:
                info["fit_seconds"] = float(sum(p[2].get("fit_seconds", 0.0) for p in parts))
                info["folds"] = []
                for (s, _), f, (_, pt, fi) in zip(fold_res, folds, parts, strict=True):
                    m = fn(y_all[s["test"]], pt)
                    keep = ("roc_auc", "pr_auc", "brier") if binary else ("accuracy", "macro_f1", "log_loss")
                    info["folds"].append(
                        {"test_cutoff": stamp(f["test"])[0], **{k: m[k] for k in keep}}
                        | {k: fi[k] for k in FOLD_INFO if k in fi}
                    )
            score(name, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), info)
        if len(folds) > 1:
            for name in res:
                keep = ("roc_auc", "pr_auc") if binary else ("accuracy", "macro_f1")
                res[name]["test_mean_over_folds"] = {
                    k: float(np.mean([f[k] for f in res[name]["folds"]])) for k in keep
                }
        if binary and "past_rate" in probs_test:
            users = data.cases[C.USER].to_numpy()[idx_t]
            fold_of = data.cases["cutoff"].to_numpy()[idx_t]
            for name, pt in probs_test.items():
                if name in ("past_rate", "base_rate"):
                    continue
                res[name]["vs_past_rate"] = {
                    m: paired_bootstrap(ys[1], pt, probs_test["past_rate"], users, strata=fold_of, metric=m, seed=seed)
                    for m in ("roc_auc", "pr_auc")
                }
        out["tasks"][task] = res
        if out_dir is not None:
            d = Path(out_dir)
            yt = ys[1]
            if binary:
                curves = {n: (yt, p) for n, p in probs_test.items()}
            else:  # calibration of the predicted probability of the rarest class of interest: the target
                ti = data.classes.index(target)
                curves = {n: (yt == ti, p[:, ti]) for n, p in probs_test.items()}
            what = f"P({target} within {horizon_s / 3600:g} h)" if binary else f"P(next event = {target})"
            where = "the test cut-off" if len(folds) == 1 else f"{len(folds)} rolling test cut-offs"
            calibration_plot(curves, d / f"calibration_{task}.png", title=f"Calibration on {where}: {what}")
    out["seconds"] = time.perf_counter() - t0
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "behavior.json").write_text(json.dumps(out, indent=2, default=float))
    return out
