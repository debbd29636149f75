"""What the layers above may ask of a model, declared once.

Every model kind is a :class:`~chronorec.models.base.Recommender`, which answers each capability
below with a default (no embeddings, no context, no explanations, no query cache, no members), so
the recommendation pipeline, the service, the batcher, the leak checks and the training curves ask
the model directly instead of probing it for attributes. The protocols name the parts one caller
needs, for type checking; ``tests/test_model_protocol.py`` checks that every registered kind
answers all of them once fitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

Pairs = list[list[tuple[int, float]]]
"""Per recommended item, the history items behind it: ``(internal id, weight)``."""


@runtime_checkable
class ItemEmbeddings(Protocol):
    def item_embeddings(self) -> np.ndarray | None:
        """Unit-norm item vectors (n_items + 1, d), row 0 zero; None for models without them."""


@runtime_checkable
class ContextEncoding(Protocol):
    context_vocab: dict[str, list[str]]

    @property
    def request_features(self) -> list[str]:
        """The context features of the next event the model conditions its scores on (empty: none)."""

    @property
    def history_context(self) -> bool:
        """Whether the model embeds the context of past events."""

    def encode_request_context(self, context: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
        """A request's context coded against the training vocabulary, and the warnings about it."""

    def encode_history_context(self, context: Mapping[str, Any], keep: np.ndarray) -> dict[str, Any]:
        """A live history's own context (one value per item) coded for ``score``, aligned to the kept items."""


@runtime_checkable
class SeenItemPolicy(Protocol):
    history_protocol: dict[str, Any] | None

    @property
    def exclude_history(self) -> bool: ...


@runtime_checkable
class Explanations(Protocol):
    others_by_popularity: bool

    def explain_items(self, history: np.ndarray, items: np.ndarray, n: int) -> Pairs | None: ...

    def history_reasons(self, history: np.ndarray, items: np.ndarray) -> list[str] | None: ...

    def describe_items(self, items: np.ndarray) -> list[str] | None: ...


@runtime_checkable
class QueryCaching(Protocol):
    query_cache: Any

    def enable_query_cache(self, size: int) -> bool: ...


@runtime_checkable
class HistoryWidth(Protocol):
    @property
    def max_history_width(self) -> int | None:
        """The most history items one forward pass reads (None: no fixed width)."""


@runtime_checkable
class Members(Protocol):
    @property
    def members(self) -> list[Any]:
        """The fitted models an ensemble combines (empty for a single model)."""


@runtime_checkable
class Provenance(Protocol):
    kind: str
    fit_info: dict[str, Any]
    training_data: dict[str, Any]


@runtime_checkable
class ListPath(Protocol):
    """What makes a model's lists: the recommendation pipeline (``chronorec.recommend``), which
    :func:`chronorec.load` attaches with the model folder's ``recommend.json``
    (:class:`chronorec.recommend.folder.ModelLists`)."""

    def model_lists(
        self,
        users: Sequence[Any] | None,
        histories: Sequence[Sequence[Any]] | None,
        k: int,
        *,
        exclude_seen: bool | None,
        user_ids: Sequence[Any] | None = None,
        context: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> pd.DataFrame:
        """``user_id, item_id, score, rank`` with the model's raw scores, as ``Recommender.recommend``."""


PROTOCOLS: tuple[type, ...] = (
    ItemEmbeddings,
    ContextEncoding,
    SeenItemPolicy,
    Explanations,
    QueryCaching,
    HistoryWidth,
    Members,
    Provenance,
)
"""Every capability a fitted model answers."""

__all__ = [
    "PROTOCOLS",
    "ContextEncoding",
    "Explanations",
    "HistoryWidth",
    "ItemEmbeddings",
    "ListPath",
    "Members",
    "Pairs",
    "Provenance",
    "QueryCaching",
    "SeenItemPolicy",
]
