"""Sequence classifiers of behaviour prediction: GRU / LSTM / Transformer over event tokens.

Tokens per event: item, category, behaviour, the bucketed gap to the previous event and the bucketed
age at the cut-off; vocabularies are fitted on the training window only. The network sums the token
embeddings, encodes the sequence and classifies its last position (optionally with the temporal
feature vector at its head); it is trained with the shared :class:`chronorec.training.trainer.Trainer`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.datasets.temporal import CATEGORY
from chronorec.evaluation.classification import binary_metrics, multiclass_metrics
from chronorec.temporal.behavior.classifier_config import SequenceClassifierConfig
from chronorec.temporal.behavior.data import BehaviorData
from chronorec.temporal.behavior.feature_models import signed_log
from chronorec.training.settings import RunSettings

__all__ = ["SEQUENCE_MODELS", "fit_sequence_classifier"]

SEQUENCE_MODELS = ("gru", "lstm", "transformer")


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
    x = signed_log(data.model_input())
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

    from chronorec.nn.blocks import FastDropout, TransformerBlock, causal_padding_mask

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


def _encode_parts(data: BehaviorData, task: str, cfg: SequenceClassifierConfig, tok: _Tokens) -> dict[str, tuple]:
    """``{part: (case rows, tokens, labels, feature rows)}`` for train, validation and test (cases of
    ``next_type`` without an event in the label window left out)."""
    import torch

    binary = task == "target"
    y_all = data.cases["y_target"].to_numpy() if binary else data.cases["next_type"].to_numpy()
    rows = {}
    for p in ("train", "validation", "test"):
        idx = data.part(p)
        rows[p] = idx if binary else idx[y_all[idx] >= 0]
    fx = _feature_matrix(data, rows["train"]) if cfg.use_features else np.zeros((len(data.cases), 0), np.float32)
    parts = {}
    for p, idx in rows.items():
        x = tok.encode(data.cases[C.USER].to_numpy()[idx], data.cases["cutoff"].to_numpy()[idx], cfg.max_len)
        parts[p] = (idx, torch.from_numpy(x), torch.from_numpy(y_all[idx]), torch.from_numpy(fx[idx]))
    return parts


def _predict(module: Any, x: Any, f: Any, n_out: int) -> np.ndarray:
    """Probabilities of the cases ``x`` (tokens) and ``f`` (features), 1024 at a time: (n,) for a
    binary task (``n_out == 1``), else (n, n_out)."""
    import torch

    binary = n_out == 1
    module.eval()
    outs = []
    with torch.inference_mode():
        for b in range(0, len(x), 1024):
            z = module(x[b : b + 1024], f[b : b + 1024])
            outs.append(torch.sigmoid(z[:, 0]) if binary else torch.softmax(z, -1))
    return torch.cat(outs).numpy().astype(np.float64) if outs else np.zeros((0,) if binary else (0, n_out))


def fit_sequence_classifier(
    data: BehaviorData, task: str, cfg: SequenceClassifierConfig, run: RunSettings | None = None
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Train on the training cases (early stopping on the validation cases: PR-AUC for the binary
    task, minus the log loss for ``next_type``) with the shared :func:`chronorec.training.trainer.train`.

    ``run`` holds the seed, threads and progress (default: seed 0, no progress bars). Returns
    ``{part: (case rows, probabilities)}`` for validation and test, and fit information.
    """
    import torch
    import torch.nn.functional as F

    from chronorec.training.runtime import set_threads
    from chronorec.training.settings import TrainSettings
    from chronorec.training.trainer import train

    run = run or RunSettings(progress=False)
    set_threads(run.threads)
    torch.manual_seed(run.seed)
    train_end = min(data.cutoffs["validation"])  # every training label window ends here
    tok = _Tokens(data.events, data.classes, train_end, cfg.min_item_count)
    binary = task == "target"
    n_out = 1 if binary else len(data.classes)
    parts = _encode_parts(data, task, cfg, tok)
    module = _build_module(cfg, tok.sizes, n_out, parts["train"][3].shape[1])
    _, xtr, ytr, ftr = parts["train"]

    def batches(epoch: int, rng: np.random.Generator):
        order = rng.permutation(len(xtr))
        for b in range(0, len(order), cfg.batch_size):
            i = torch.from_numpy(order[b : b + cfg.batch_size])
            yield xtr[i], ftr[i], ytr[i]

    def loss_fn(m, batch):
        x, f, y = batch
        z = m(x, f)
        return F.binary_cross_entropy_with_logits(z[:, 0], y.float()) if binary else F.cross_entropy(z, y)

    _, xva, yva, fva = parts["validation"]
    yv = yva.numpy()

    def validate() -> float:
        pv = _predict(module, xva, fva, n_out)
        return binary_metrics(yv, pv)["pr_auc"] if binary else -multiclass_metrics(yv, pv)["log_loss"]

    res = train(
        module,
        batches=batches,
        loss_fn=loss_fn,
        validate=validate,
        settings=TrainSettings.of(cfg, **_run_fields(run), label=f"{cfg.arch}-{task}"),
        n_batches=lambda: (len(xtr) + cfg.batch_size - 1) // cfg.batch_size,
        monitor="pr_auc" if binary else "neg_log_loss",
        params=cfg.model_dump(),
    )
    probs = {p: (parts[p][0], _predict(module, parts[p][1], parts[p][3], n_out)) for p in ("validation", "test")}
    info = {
        "best_epoch": res.best_epoch,
        "epochs_run": len(res.history),
        "best_validation": res.best_metric,
        "train_seconds": res.train_seconds,
        "stopped": res.stopped,
        "vocab_items": tok.sizes[0],
        "parameters": int(sum(p.numel() for p in module.parameters())),
    }
    return probs, info


def _run_fields(run: RunSettings) -> dict[str, Any]:
    """The run settings as keyword arguments of the trainer's settings (the tracking URI included)."""
    return {name: getattr(run, name) for name in RunSettings.model_fields}
