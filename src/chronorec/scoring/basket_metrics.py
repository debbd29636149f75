"""Next-basket scoring: a basket per event, the metrics of ranked lists against whole baskets, and
:func:`evaluate_baskets`, the evaluation pass that the validation monitor and ``evaluate`` share.

The protocol, the split and the metric definitions (after Li et al., "A Next Basket Recommendation
Reality Check", TOIS 2023) are described in :mod:`chronorec.evaluation.basket`, which holds the split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from chronorec.data import columns as C
from chronorec.data.eventlog import EventLog
from chronorec.errors import DataError
from chronorec.scoring.cases import EvalSet
from chronorec.scoring.ranking_metrics import SCORE_BATCH

__all__ = [
    "BASKET_KS",
    "PROTOCOL",
    "UNRANKED",
    "basket_ids",
    "basket_metrics",
    "distinct",
    "evaluate_baskets",
    "summarize",
]

BASKET_KS = (10, 20)
PROTOCOL = "next-basket"
UNRANKED = -1e30
"""A score at or below this means "not recommended" (P-TopFreq's items outside the history): an empty slot."""
ScoreFn = Callable[[np.ndarray, list[np.ndarray]], torch.Tensor]


def basket_ids(log: EventLog) -> tuple[np.ndarray, str]:
    """Per event of ``log.events`` (sorted by user, time, row), a basket number 0, 1, ... that grows with
    the basket's first event, and what defines a basket (``"basket"`` column or ``"timestamp"``)."""
    ev = log.events
    key_col = C.BASKET if C.BASKET in ev.columns else C.TIME
    keys = pd.DataFrame({"u": ev[C.USER_IDX].to_numpy(), "k": ev[key_col].to_numpy()})
    codes = pd.MultiIndex.from_frame(keys).factorize()[0] if len(keys) else np.zeros(0, np.int64)
    return np.asarray(codes, dtype=np.int64), key_col


def distinct(a: np.ndarray) -> np.ndarray:
    _, first = np.unique(a, return_index=True)
    return a[np.sort(first)]


def _top_lists(scores: torch.Tensor, k: int) -> np.ndarray:
    """Top-k item ids per row; 0 where fewer than k items score above :data:`UNRANKED` (empty slots)."""
    scores[:, 0] = -torch.inf
    val, idx = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    top = idx.numpy().copy()
    top[~(val > UNRANKED).numpy()] = 0
    return top


def basket_metrics(
    top: np.ndarray, targets: list[np.ndarray], histories: list[np.ndarray], ks: Sequence[int] = BASKET_KS
) -> dict[str, np.ndarray]:
    """Per-user next-basket metrics from ranked lists ``top`` (rows of item ids, 0 = empty slot).

    Returns arrays of one value per user: ``Recall@K``, ``NDCG@K``, ``PHR@K``, ``RepRatio@K``, the
    number of repeat and explore hits ``RepHits@K`` / ``ExplHits@K``, and ``Recall-rep@K``,
    ``PHR-rep@K``, ``Recall-expl@K``, ``PHR-expl@K`` (NaN for users without repeat / new target items).
    """
    n = len(targets)
    top = np.asarray(top, dtype=np.int64)
    width = int(max(top.max(initial=0), *(int(np.max(t, initial=0)) for t in targets), 0)) + 1
    n_t = np.array([len(t) for t in targets], dtype=np.int64)
    t_row = np.repeat(np.arange(n), n_t)
    t_key = t_row * width + (np.concatenate(targets) if n else np.zeros(0, np.int64))
    h_key = np.repeat(np.arange(n), [len(h) for h in histories]) * width
    h_key = h_key + (np.concatenate(histories) if n else np.zeros(0, np.int64))
    t_rep = np.isin(t_key, h_key)  # target item bought before
    n_rep = np.bincount(t_row[t_rep], minlength=n)
    n_expl = n_t - n_rep
    p_key = np.arange(n)[:, None] * width + top
    filled = top > 0
    hit_all = np.isin(p_key, t_key) & filled
    rep_all = np.isin(p_key, h_key) & filled
    discount = 1.0 / np.log2(np.arange(2, top.shape[1] + 2, dtype=np.float64))
    idcg = np.concatenate([[1.0], np.cumsum(1.0 / np.log2(np.arange(2, n_t.max(initial=0) + 2)))])
    idcg = idcg[np.maximum(n_t, 1)]  # ideal DCG of the whole basket (not cut at K), as the Reality Check
    safe = np.maximum(n_t, 1)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit, rep = hit_all[:, :k], rep_all[:, :k]
        n_hit = hit.sum(1)
        rep_hits, expl_hits = (hit & rep).sum(1), (hit & ~rep).sum(1)
        out[f"Recall@{k}"] = np.where(n_t > 0, n_hit / safe, 0.0)
        out[f"NDCG@{k}"] = np.where(n_t > 0, (hit * discount[: hit.shape[1]]).sum(1) / idcg, 0.0)
        out[f"PHR@{k}"] = (n_hit > 0).astype(float)
        out[f"RepRatio@{k}"] = rep.sum(1) / k
        out[f"RepHits@{k}"] = rep_hits.astype(float)
        out[f"ExplHits@{k}"] = expl_hits.astype(float)
        for name, hits, size in (("rep", rep_hits, n_rep), ("expl", expl_hits, n_expl)):
            out[f"Recall-{name}@{k}"] = np.where(size > 0, hits / np.maximum(size, 1), np.nan)
            out[f"PHR-{name}@{k}"] = np.where(size > 0, (hits > 0).astype(float), np.nan)
    return out


def summarize(per_user: dict[str, np.ndarray], ks: Sequence[int]) -> dict[str, float]:
    """Means over users (over the users that have repeat / new targets for the split metrics), and
    ``RepHitShare@K`` = repeat hits / all hits."""
    out: dict[str, float] = {}
    for k in ks:
        for name in ("Recall", "NDCG", "PHR", "Recall-rep", "Recall-expl", "PHR-rep", "PHR-expl", "RepRatio"):
            v = per_user[f"{name}@{k}"]
            v = v[~np.isnan(v)]
            out[f"{name}@{k}"] = float(v.mean()) if len(v) else 0.0
        rep, expl = per_user[f"RepHits@{k}"].sum(), per_user[f"ExplHits@{k}"].sum()
        out[f"RepHitShare@{k}"] = float(rep / (rep + expl)) if rep + expl else 0.0
    return out


def evaluate_baskets(
    score_fn: ScoreFn,
    evalset: EvalSet,
    *,
    n_items: int,
    ks: Sequence[int] = BASKET_KS,
    batch_size: int = SCORE_BATCH,
    return_per_user: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """Next-basket metrics of ``score_fn(users, histories)`` over the full catalogue, history included
    (see the module docstring). Also reports ``n_users``, the share of target items that repeat a
    history item (``repeat_target_share``) and the users with repeat / new targets."""
    kmax = max(ks)
    n = len(evalset)
    top = np.zeros((n, kmax), dtype=np.int64)
    order = np.argsort(np.diff(evalset.input_offsets), kind="stable")
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            scores = score_fn(evalset.users[rows], evalset.inputs(rows)).float().clone()
            if scores.shape[1] != n_items + 1:
                raise DataError(f"scores have {scores.shape[1]} columns, expected n_items + 1 = {n_items + 1}")
            t = _top_lists(scores, kmax)
            top[rows, : t.shape[1]] = t
    targets, histories = evalset.targets(slice(None)), evalset.inputs(slice(None))
    per_user = basket_metrics(top, targets, histories, ks)
    metrics = summarize(per_user, ks)
    seen = [np.isin(t, h) for t, h in zip(targets, histories, strict=True)]
    n_t = sum(len(s) for s in seen)
    metrics["repeat_target_share"] = float(sum(s.sum() for s in seen) / n_t) if n_t else 0.0
    metrics["users_with_repeat_targets"] = float(sum(bool(s.any()) for s in seen))
    metrics["users_with_new_targets"] = float(sum(bool((~s).any()) for s in seen))
    metrics["mean_basket_size"] = float(n_t / n) if n else 0.0
    metrics["n_users"] = float(n)
    return (metrics, per_user) if return_per_user else metrics
