"""External ids in, a DataFrame out: the batch side of :class:`~chronorec.recommend.pipeline.RecommendPipeline`.

The same warnings as the service: unknown users (cold-start path), unknown history items
(ignored), a history of only unknown items (popularity), ignored context. Every row says where
its score comes from (``source``: ``model``, ``blend`` or ``popularity``), so raw popularity
counts are never silently mixed with model scores in one column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.recommend.items import to_internal

SOURCE = "source"
"""Column of :meth:`RecommendPipeline.recommend` naming where a row's score comes from."""

__all__ = ["POPULARITY_FALLBACK", "SOURCE", "known_items", "recommend_lists", "summarise_warnings", "to_frame"]


def known_items(pipe: Any, values: Sequence[Any], warnings: list[str], what: str = "history") -> np.ndarray:
    """Internal ids of the known external item ids in ``values`` (order kept); the unknown ones are reported."""
    vals = list(values)
    idx = to_internal(pipe.model.items, vals)
    unknown = [v for v, i in zip(vals, idx, strict=True) if i == 0]
    if unknown:
        none = " (none of its items is known to the model)" if len(unknown) == len(vals) else ""
        warnings.append(f"{what}: {len(unknown)} unknown item ids ignored: {unknown[:10]}{none}")
    return idx[idx > 0]


POPULARITY_FALLBACK = "no known history: answered from popularity (source popularity)"
"""The warning of a list that asked with a history, none of it known, and got popular items."""


def recommend_lists(
    pipe: Any,
    users: Sequence[Any] | None,
    histories: Sequence[Sequence[Any]] | None,
    options: Any,
    user_ids: Sequence[Any] | None,
    contexts: Sequence[Mapping[str, Any] | None] | None,
    probabilities: bool = True,
    model_contexts: Sequence[dict[str, Any] | None] | None = None,
) -> tuple[list[Any], list[Any]]:
    """``(labels, ranked lists)`` for external users (their training histories) or external histories
    (``model_contexts``: their own context, already coded by the model)."""
    if (users is None) == (histories is None):
        raise ValueError("give either users or histories")
    notes: list[list[str]] = []
    if users is not None:
        labels = list(users)
        internal = to_internal(pipe.model.users, labels)
        hist: list[np.ndarray] = [pipe.user_history(u) for u in internal.tolist()]
        notes = [
            [] if u > 0 else [f"user_id {label!r} is unknown to the model; cold-start path (popularity)"]
            for u, label in zip(internal.tolist(), labels, strict=True)
        ]
    else:
        labels = list(user_ids) if user_ids is not None else list(range(len(histories)))
        internal = np.zeros(len(histories), np.int64)
        hist = []
        for h in histories:
            notes.append([])
            hist.append(known_items(pipe, list(h), notes[-1]) if len(h) else np.zeros(0, np.int64))
            if len(h) and not len(hist[-1]):
                notes[-1].append(POPULARITY_FALLBACK)
    if contexts is not None and len(contexts) != len(hist):
        raise ValueError(f"{len(contexts)} contexts for {len(hist)} lists")
    lists = pipe.rank(
        internal, hist, options, contexts=contexts, probabilities=probabilities, model_contexts=model_contexts
    )
    for x, n in zip(lists, notes, strict=True):
        x.warnings[:0] = n
    return labels, lists


def summarise_warnings(lists: Sequence[Any], limit: int = 10) -> list[str]:
    """The lists' warnings, each distinct message once with how many lists it concerns (most frequent first)."""
    counts = Counter(w for x in lists for w in dict.fromkeys(x.warnings))
    out = [w if c == 1 or len(lists) == 1 else f"{w} ({c} of {len(lists)} lists)" for w, c in counts.most_common()]
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more distinct warnings"]
    return out


def _ranks(lens: np.ndarray) -> np.ndarray:
    """1..n for each list of length n, concatenated."""
    starts = np.cumsum(lens) - lens
    return np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(starts, lens) + 1


def to_frame(
    pipe: Any,
    labels: Sequence[Any],
    lists: Sequence[Any],
    *,
    with_names: bool | None = None,
    score: Literal["probability", "raw"] = "probability",
) -> pd.DataFrame:
    """Ranked lists as a long DataFrame with external ids: ``user_id, item_id, score, rank, source``
    (+ ``item_name`` where the model or item table has names, ``explanation`` when explained)."""
    if score not in ("probability", "raw"):
        raise ValueError("score must be 'probability' or 'raw'")
    if score == "probability" and any(x.scores is None for x in lists):
        raise ValueError("score='probability' for lists ranked without probabilities (rank with probabilities=True)")
    lens = [len(x.items) for x in lists]
    flat = np.concatenate([x.items for x in lists]) if lists else np.zeros(0, np.int64)
    values = [x.scores if score == "probability" else x.keys for x in lists]
    user_col = pd.Series(list(labels))  # numeric labels keep their dtype, any other is object
    users = user_col.to_numpy() if pd.api.types.is_numeric_dtype(user_col) else np.asarray(list(labels), dtype=object)
    df = pd.DataFrame(
        {
            C.USER: np.repeat(users, lens),
            C.ITEM: pipe.external(flat) if len(flat) else np.zeros(0, dtype=object),
            C.SCORE: np.concatenate(values).astype(np.float64) if lists else np.zeros(0),
            C.RANK: _ranks(np.asarray(lens, np.int64)),
            SOURCE: np.repeat(np.asarray([x.strategy for x in lists], dtype=object), lens),
        }
    )
    has_names = pipe.model.item_names is not None or (pipe.item_table is not None and pipe.item_table.names is not None)
    if with_names if with_names is not None else has_names:
        df["item_name"] = pipe._names[flat] if len(flat) else []
    if lists and lists[0].explanations is not None:
        df["explanation"] = [r for x in lists for r in (x.reasons or [""] * len(x.items))]
    return df
