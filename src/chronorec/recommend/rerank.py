"""Re-ranking a candidate pool: interest (category affinity) and diversity (maximal marginal relevance)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from chronorec.recommend.items import ItemTable
from chronorec.recommend.options import RerankOptions

SimilarityFn = Callable[[str, np.ndarray], "np.ndarray | None"]


def mmr_order(rel: np.ndarray, sim: np.ndarray, lam: float) -> np.ndarray:
    """Maximal marginal relevance: the order picking ``(1 - lam) * rel - lam * max similarity to the picked``."""
    chosen: list[int] = []
    left = np.ones(len(rel), bool)
    max_sim = np.zeros(len(rel))
    for _ in range(len(rel)):
        mmr = np.where(left, (1 - lam) * rel - lam * max_sim, -np.inf)
        j = int(np.argmax(mmr))  # first maximum: ties keep the current order
        chosen.append(j)
        left[j] = False
        max_sim = np.maximum(max_sim, sim[j])
    return np.asarray(chosen)


def similarity(table: ItemTable | None, emb: np.ndarray | None, by: str, pool: np.ndarray) -> np.ndarray | None:
    """Pairwise item similarity of ``pool``: embedding cosine, or same category (1/0); None if neither."""
    if by in ("auto", "embedding") and emb is not None:
        e = emb[pool]
        return e @ e.T
    if by in ("auto", "category") and table is not None and table.has_categories:
        c = table.category[pool]
        return ((c[:, None] == c[None, :]) & (c[:, None] > 0)).astype(np.float64)
    return None


def rerank_order(
    table: ItemTable | None,
    similarity_of: SimilarityFn,
    history: np.ndarray,
    pool: np.ndarray,
    p: np.ndarray,
    rerank: RerankOptions,
    warnings: list[str],
) -> np.ndarray:
    """Interest, then diversity (MMR) re-ranking of a candidate pool ordered by relevance.

    ``p``: the pool's probabilities (aligned with ``pool``); ``similarity_of(by, items)`` the pairwise
    similarity (asked only when diversity is on). Returns the new order as indices into ``pool``.
    """
    rel = p.astype(np.float64)
    rel = rel / rel.max() if rel.max() > 0 else rel
    order = np.arange(len(pool))
    w = rerank.interest_weight
    aff = table.affinity(history) if w > 0 and table is not None else None
    if aff is not None:
        rel = (1 - w) * rel + w * aff[table.category[pool]]
        order = np.lexsort((order, -rel))  # stable: ties keep relevance order
        rel = rel[order]
    lam = rerank.diversity_weight
    if lam > 0:
        sim = similarity_of(rerank.diversity_by, pool[order])
        if sim is None:
            warnings.append(
                f"rerank.diversity_weight ignored: no item embeddings or categories ({rerank.diversity_by})"
            )
        else:
            order = order[mmr_order(rel, sim, lam)]
    return order


__all__ = ["mmr_order", "rerank_order", "similarity"]
