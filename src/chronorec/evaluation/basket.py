"""Next-basket recommendation: the whole next basket is the target, earlier baskets the input.

The protocol and metrics follow Li et al., "A Next Basket Recommendation Reality Check" (TOIS
2023; github.com/liming-7/A-Next-Basket-Recommendation-Reality-Check, ``evaluation/metrics.py`` and
``evaluation/model_performance.py``):

* **Baskets.** A basket is a user's events with one ``basket`` id (a basket file, ``--basket-col``),
  or, without that column, with one timestamp. Baskets are ordered by their first event. Items of
  one basket are never input to each other: a basket is held out whole or kept whole.
* **Split** (:func:`next_basket_split`). For every user with at least ``min_baskets`` baskets (3:
  Ta Feng's NBR file keeps users with 3 to 50 baskets) the **test** target is the last basket and
  its input every earlier basket; the **validation** target is the second-to-last basket, its input
  the baskets before it. Training = every event except the last two baskets of evaluated users
  (users with fewer baskets are kept whole); the test input is the training events plus the
  validation basket (``Split.full``), which is what a model scoring test is fitted on.
  *Difference from the Reality Check:* its ``keyset_fold.py`` shuffles the users without a seed and
  tests on a random 20% of them (72% train, 8% validation), and no keyset file is published, so its
  split cannot be reproduced; here **every** user is tested on their last basket, the neighbours of a
  kNN model are all other users (their training baskets), and validation is every user's
  second-to-last basket instead of a held-out 8% of users' last baskets. The targets (last baskets) and
  inputs (all earlier baskets) are the same as theirs.
* **Scoring.** Every item of the catalogue is scored, the user's own history **included** (repeat
  purchases are the point); items a model scores at or below :data:`UNRANKED` (or ``-inf``) are not
  recommended (P-TopFreq recommends only the user's own items): their slots stay empty. Ties are broken by ``torch.topk``.
* **Metrics per user, averaged over users** (basket ``T``, top-K list ``P``, history items ``H``):
  ``Recall@K = |P ∩ T| / |T|``; ``NDCG@K = sum_{i <= K, P_i in T} 1/log2(i+1) / IDCG`` with the ideal DCG
  of the whole basket (``sum_{i=1}^{|T|} 1/log2(i+1)``, not cut at K, as in the Reality Check's
  ``get_NDCG``); ``PHR@K`` = share of users with at least one hit. Repeat / explore split:
  ``Recall-rep@K`` and ``PHR-rep@K`` over the repeat targets ``T ∩ H`` (averaged over the users that
  have some), ``Recall-expl@K`` and ``PHR-expl@K`` over the new items ``T \\ H``; ``RepRatio@K`` =
  share of the K recommendation slots holding a repeat item (their "repeat ratio"), and
  ``RepHitShare@K`` = share of all hits that are repeat items (pooled over users).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from chronorec.data import columns as C
from chronorec.data.eventlog import EventLog
from chronorec.errors import ConfigError, DataError
from chronorec.evaluation.ranking import SCORE_BATCH
from chronorec.evaluation.split import EvalSet, Split

__all__ = [
    "BASKET_KS",
    "UNRANKED",
    "basket_ids",
    "basket_metrics",
    "basket_table",
    "evaluate_baskets",
    "next_basket_split",
]

logger = logging.getLogger(__name__)

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


def next_basket_split(log: EventLog, *, min_baskets: int = 3) -> Split:
    """Test = each user's last basket, validation = the second-to-last, training = the rest.

    Users with fewer than ``min_baskets`` baskets (at least 3: one input basket for validation)
    keep every event in training and are not evaluated. Inputs are the user's items of the earlier
    baskets in the log's order (so the validation input is exactly the user's training sequence,
    and the test input the user's sequence in ``Split.full``); targets are the distinct items of the
    held-out basket. See the module docstring for the differences from the Reality Check's split.
    """
    if min_baskets < 3:
        raise ConfigError(f"min_baskets must be at least 3 (one input basket for validation), not {min_baskets}")
    ev = log.events
    users = ev[C.USER_IDX].to_numpy()
    items = ev[C.ITEM_IDX].to_numpy()
    code, key = basket_ids(log)
    n_users = log.n_users
    # basket rank from the end within the user: 0 = last basket
    first_code = np.full(n_users + 1, np.iinfo(np.int64).max)
    last_code = np.full(n_users + 1, -1)
    np.minimum.at(first_code, users, code)
    np.maximum.at(last_code, users, code)
    n_baskets = np.where(last_code >= 0, last_code - first_code + 1, 0)
    from_end = last_code[users] - code
    evaluated_u = n_baskets >= min_baskets
    evaluated = evaluated_u[users]
    train_mask = ~evaluated | (from_end >= 2)
    full_mask = ~evaluated | (from_end >= 1)
    eval_users = np.flatnonzero(evaluated_u)
    eval_users = eval_users[eval_users > 0]
    bounds = np.searchsorted(users, np.arange(n_users + 2))  # events of user u: bounds[u]:bounds[u+1]

    def cases(back: int, name: str) -> EvalSet:
        inputs, targets = [], []
        for u in eval_users:
            a, b = bounds[u], bounds[u + 1]
            fe = from_end[a:b]
            inputs.append(items[a:b][fe > back])
            targets.append(_distinct(items[a:b][fe == back]))
        return EvalSet.build(eval_users, inputs, targets, name, protocol=PROTOCOL)

    if len(eval_users) == 0:
        raise DataError(
            f"{log.source}: no user has {min_baskets} baskets (grouped by {key}); the next-basket split needs "
            "baskets: a basket file, --basket-col, or timestamps shared by the items of one basket"
        )
    return Split(
        train=log.with_events(ev[train_mask]),
        validation=cases(1, "validation"),
        test=cases(0, "test"),
        protocol=PROTOCOL,
        full=log.with_events(ev[full_mask]),
        settings={"min_baskets": int(min_baskets), "basket": key},
    )


def _distinct(a: np.ndarray) -> np.ndarray:
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


def basket_table(results: dict[str, dict[str, Any]], *, ks: Sequence[int] = BASKET_KS, part: str = "test") -> str:
    """A Markdown table, one row per model: Recall, NDCG, PHR at each K, and the repeat / explore split."""
    cols = [f"{m}@{k}" for k in ks for m in ("Recall", "NDCG", "PHR")]
    cols += [f"{m}@{k}" for k in ks for m in ("Recall-rep", "Recall-expl", "RepHitShare")]
    head = "| model | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols)
    rows = [f"| {name} | " + " | ".join(f"{r[part][c]:.4f}" for c in cols) + " |" for name, r in results.items()]
    return "\n".join([head, *rows])
