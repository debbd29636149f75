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
from collections.abc import Sequence
from typing import Any

import numpy as np

from chronorec.data import columns as C
from chronorec.data.eventlog import EventLog
from chronorec.errors import ConfigError, DataError
from chronorec.scoring.basket_metrics import (
    BASKET_KS,
    PROTOCOL,
    UNRANKED,
    basket_ids,
    basket_metrics,
    distinct,
    evaluate_baskets,
    summarize,
)
from chronorec.scoring.cases import EvalSet, Split

__all__ = [
    "BASKET_KS",
    "PROTOCOL",
    "UNRANKED",
    "basket_ids",
    "basket_metrics",
    "basket_table",
    "evaluate_baskets",
    "next_basket_split",
    "summarize",
]

logger = logging.getLogger(__name__)


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
            targets.append(distinct(items[a:b][fe == back]))
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


def basket_table(results: dict[str, dict[str, Any]], *, ks: Sequence[int] = BASKET_KS, part: str = "test") -> str:
    """A Markdown table, one row per model: Recall, NDCG, PHR at each K, and the repeat / explore split."""
    cols = [f"{m}@{k}" for k in ks for m in ("Recall", "NDCG", "PHR")]
    cols += [f"{m}@{k}" for k in ks for m in ("Recall-rep", "Recall-expl", "RepHitShare")]
    head = "| model | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols)
    rows = [f"| {name} | " + " | ".join(f"{r[part][c]:.4f}" for c in cols) + " |" for name, r in results.items()]
    return "\n".join([head, *rows])
