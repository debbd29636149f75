"""A request's context (``{"device": "mobile", "time": 1718000000, "behavior": "buy"}``) for the model.

The context of a request describes the event to predict. A sequence model trained with
``use_context=True`` and ``request_context=True`` conditions its prediction on it: this module
asks the model to code it against its training vocabulary (the model owns the one encoder:
:meth:`~chronorec.models.base.Recommender.encode_request_context`; :func:`request_contexts` for a batch), so the pipeline
passes it to ``model.score``. A model that cannot use it (trained without context, or with the
context of past events only) is not silently handed it: the answer carries a warning, as it does
for keys the model does not know and values it never saw in training (they count as unknown).

Keys: ``time`` (or ``timestamp``, epoch seconds: the gap since the last event, the hour and the
weekday), ``behavior`` (the behaviour type of the next event) and the log's context columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chronorec.models.base import Recommender
from chronorec.models.sequential.context import TIME_KEYS

__all__ = ["TIME_KEYS", "conditioned_features", "context_notes", "request_context", "request_contexts"]


def conditioned_features(model: Recommender) -> list[str]:
    """The context features of the next event that ``model`` conditions its scores on (empty: none)."""
    return model.request_features


def request_context(model: Recommender, context: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """``({"next": codes} or None, warnings)`` for one request's context: the model's own encoder
    (:meth:`~chronorec.models.base.Recommender.encode_request_context`).

    None where the context is empty or the model does not use it (then a warning says so).
    """
    return model.encode_request_context(context)


def request_contexts(
    model: Recommender, contexts: Sequence[Mapping[str, Any] | None] | None, n_rows: int
) -> tuple[list[dict[str, Any] | None] | None, list[list[str]]]:
    """:func:`request_context` for each row: the model's contexts (None when no row has one) and warnings."""
    if contexts is None:
        return None, [[] for _ in range(n_rows)]
    coded = [request_context(model, c) for c in contexts]
    model_ctx = [c for c, _ in coded]
    return (model_ctx if any(c is not None for c in model_ctx) else None), [w for _, w in coded]


def context_notes(warnings: list[str], strategy: str, popularity_source: str) -> list[str]:
    """A row's context warnings, saying where its popularity part still used a context the model ignored."""
    if strategy != "model" and popularity_source == "context":
        note = " (the popularity part of the answer uses it)"
        return [w + note if "ignored by the model" in w else w for w in warnings]
    return list(warnings)
