"""The validation metric that chooses epochs and hyper-parameters: the one ``evaluate`` reports.

Every model that chooses something on validation (a sequence model's best epoch, buy-again's decay,
a repeat blend's weight) calls :func:`validation_ndcg10`, so the number it records is the number
``evaluate --part validation`` prints for the same split:

* next-item cases (leave-one-out, time, session splits): NDCG@10 of
  :func:`~chronorec.scoring.ranking_metrics.evaluate_ranking` under the model's history protocol (ideal DCG
  cut at ``min(10, |targets|)``);
* next-basket cases (:func:`~chronorec.evaluation.basket.next_basket_split`): NDCG@10 of
  :func:`~chronorec.scoring.basket_metrics.evaluate_baskets`, the history always included and the ideal DCG
  of the whole basket, as the Reality Check defines it.
"""

from __future__ import annotations

from typing import Any

from chronorec.scoring.basket_metrics import PROTOCOL as NEXT_BASKET
from chronorec.scoring.basket_metrics import evaluate_baskets
from chronorec.scoring.cases import EvalSet
from chronorec.scoring.ranking_metrics import evaluate_ranking

__all__ = ["validation_metric_name", "validation_metrics", "validation_ndcg10"]


def validation_metrics(score_fn: Any, cases: EvalSet, *, n_items: int, exclude_history: bool) -> dict[str, float]:
    """``NDCG@10`` and ``HR@10`` (for baskets: the share of users with a hit, PHR@10) of
    ``score_fn(users, histories)`` on ``cases``, by the cases' protocol (module docstring)."""
    if cases.protocol == NEXT_BASKET:
        m = evaluate_baskets(score_fn, cases, n_items=n_items, ks=(10,))
        return {"NDCG@10": float(m["NDCG@10"]), "HR@10": float(m["PHR@10"])}
    m = evaluate_ranking(score_fn, cases, n_items=n_items, ks=(10,), exclude_history=exclude_history)
    return {"NDCG@10": float(m["NDCG@10"]), "HR@10": float(m["HR@10"])}


def validation_ndcg10(score_fn: Any, cases: EvalSet, *, n_items: int, exclude_history: bool) -> float:
    """NDCG@10 of :func:`validation_metrics`: the number that chooses epochs and settings."""
    return validation_metrics(score_fn, cases, n_items=n_items, exclude_history=exclude_history)["NDCG@10"]


def validation_metric_name(cases: EvalSet | None) -> str:
    """How :func:`validation_ndcg10` scored ``cases``, for printed and saved lines."""
    if cases is not None and cases.protocol == NEXT_BASKET:
        return "next-basket NDCG@10 (ideal DCG of the whole basket)"
    return "NDCG@10"
