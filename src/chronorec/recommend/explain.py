"""Why an item is recommended, for every kind of model.

* a model that scores by summing what each history item contributes explains with those
  contributions (``model.explain_items``: ItemKNN's similarity votes, EASE's item weights), so
  the reasons add up to the score;
* a model that scores by counts says what the item is popular in (``model.describe_items``:
  the most-popular baseline, overall or in its recent window);
* a model that ranks the user's own items says how (``model.history_reasons``: buy-again's
  "bought 3 times, last 2 events ago", repeat-blend's buy-again vs learned-model shares);
* a neural model names the history items whose embeddings are most similar to the item;
* otherwise, with an item table, history items of the same category;
* a popularity answer (an empty history) says what the item is popular in: overall, or in the
  request's context (``device=mobile``).

Each list comes as ``(internal history item, weight)`` pairs with a ``basis`` naming what the
weight is, and as one sentence per item with item names (:func:`reason_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Pairs = list[list[tuple[int, float]]]

BASES = {
    "contribution": "from your history",
    "similarity": "similar to",
    "category": "same category as",
}
"""What the weight of an explanation pair is, and the words that introduce it."""

__all__ = ["BASES", "distinct_recent", "explain_items", "fill_explanations", "popularity_reasons", "reason_text"]


def distinct_recent(history: np.ndarray, limit: int = 200) -> np.ndarray:
    """The distinct items of the last ``limit`` history events, most recent first."""
    recent = np.asarray(history)[-limit:]
    _, first = np.unique(recent[::-1], return_index=True)
    return recent[::-1][np.sort(first)]


def explain_items(
    model: Any, history: np.ndarray, items: np.ndarray, n: int, embeddings: np.ndarray | None, table: Any
) -> tuple[Pairs, str]:
    """``(pairs per item, basis)``: up to ``n`` history items behind each of ``items`` (see the module)."""
    empty: Pairs = [[] for _ in items]
    if n <= 0 or not len(history):
        return empty, "none"
    own = model.explain_items(np.asarray(history, np.int64), np.asarray(items, np.int64), n)
    if own is not None:
        return own, "contribution"
    uniq = distinct_recent(history)
    if embeddings is not None:
        sims = embeddings[items] @ embeddings[uniq].T  # (k, h)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :n]  # most similar first, ties most recent
        best = np.take_along_axis(sims, order, axis=1)
        ids = uniq[order]
        return [
            [(int(j), float(w)) for j, w in zip(ids[r].tolist(), best[r].tolist(), strict=True) if w > 0]
            for r in range(len(items))
        ], "similarity"
    if table is None or not table.has_categories:
        return empty, "none"
    pairs = [
        [(int(j), 1.0) for j in uniq[table.category[uniq] == table.category[it]][:n]] if table.category[it] > 0 else []
        for it in items
    ]
    return pairs, "category"


def popularity_reasons(counts: np.ndarray, items: np.ndarray, where: str = "training events") -> list[str]:
    """``"popular: 57 training events (rank 3 of 1,200)"`` for each item, from counts over internal ids."""
    c = np.asarray(counts, dtype=np.float64)
    body = c[1:]
    n = int((body > 0).sum())
    out = []
    for it in np.asarray(items, np.int64):
        value = float(c[it])
        rank = int((body > value).sum()) + 1
        out.append(f"popular: {value:,.0f} {where} (rank {rank:,} of {n:,})" if value > 0 else f"no {where}")
    return out


def reason_text(pairs: Sequence[tuple[int, float]], basis: str, name: Any) -> str:
    """One sentence for one item: its explaining history items by ``name(internal id)``, with weights."""
    if not pairs or basis not in BASES:
        return ""
    if basis == "category":
        parts = [str(name(j)) for j, _ in pairs]
    elif basis == "contribution":
        parts = [f"{name(j)} ({w:+.3g})" for j, w in pairs]
    else:
        parts = [f"{name(j)} ({w:.2f})" for j, w in pairs]
    return f"{BASES[basis]}: " + ", ".join(parts)


def fill_explanations(
    pipe: Any, ranked: Any, history: np.ndarray, n: int, popularity_source: str, context: Any = None
) -> None:
    """Set a ranked list's explanations (history items and weights), basis and reasons (sentences).

    ``pipe`` is the :class:`~chronorec.recommend.pipeline.RecommendPipeline` that ranked it.
    """
    from chronorec.recommend.items import context_keys

    items = ranked.items
    if ranked.strategy == "popularity":
        keys = context_keys(context) if popularity_source == "context" else []
        known = [k for k in keys if k in pipe.popularity.context_counts]
        counts = pipe.popularity.context_counts[known[0]] if known else pipe.popularity.global_counts
        ranked.explanations, ranked.basis = [[] for _ in items], "none"
        ranked.reasons = popularity_reasons(counts, items, f"events with {known[0]}" if known else "events")
        return
    pairs, basis = explain_items(pipe.model, history, items, n, pipe.embeddings, pipe.item_table)
    ranked.explanations, ranked.basis = pairs, basis
    ranked.reasons = [reason_text(x, basis, pipe.item_name) for x in pairs]
    model = pipe.model
    told = model.history_reasons(np.asarray(history, np.int64), np.asarray(items, np.int64))
    if told is not None:  # repeat models: how the user's own items and the rest are ranked
        if model.others_by_popularity:  # its other items follow by popularity
            pop = popularity_reasons(pipe.popularity.global_counts, items, "events")
            told = [t or p for t, p in zip(told, pop, strict=True)]
        ranked.reasons = ["; ".join(t for t in (d, r) if t) for d, r in zip(told, ranked.reasons, strict=True)]
    described = model.describe_items(items)
    if described is not None:  # a model that ranks by counts says what the item is popular in
        ranked.reasons = ["; ".join(t for t in (d, r) if t) for d, r in zip(described, ranked.reasons, strict=True)]
