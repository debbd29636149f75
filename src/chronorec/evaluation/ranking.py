"""Full-catalogue ranking evaluation (no sampled negatives): :func:`evaluate_ranking` and its metrics.

The kernels live in :mod:`chronorec.scoring.ranking_metrics`, below the models, which choose their epochs on
them; this is their documented public path.
"""

from __future__ import annotations

from chronorec.scoring.ranking_metrics import (
    DEFAULT_KS,
    SCORE_BATCH,
    ScoreFn,
    ScoringModel,
    evaluate_ranking,
    exclude_items,
    ranking_metrics_from_ranks,
)

__all__ = [
    "DEFAULT_KS",
    "SCORE_BATCH",
    "ScoreFn",
    "ScoringModel",
    "evaluate_ranking",
    "exclude_items",
    "ranking_metrics_from_ranks",
]
