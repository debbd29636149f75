"""Request and response bodies of the HTTP service (strict pydantic: unknown keys are a 422)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StringConstraints

from chronorec.recommend.options import (
    MAX_HISTORY,
    BlendOptions,
    FilterOptions,
    ItemId,
    RecommendOptions,
    RerankOptions,
)
from chronorec.settings import Strict

MAX_EPOCH_SECONDS = 9_223_372_035
"""Latest timestamp accepted (2262-04-11, the end of nanosecond datetimes)."""
MAX_EVENTS_PER_REQUEST = 1000
"""Most events one ``POST /events`` may carry."""

STRICT = ConfigDict(extra="forbid", strict=True)
"""Request bodies take JSON types as the schema says: ``false`` is no integer, ``"3"`` no number."""

Short = Annotated[str, StringConstraints(max_length=256)]
CtxValue = StrictInt | StrictFloat | Short | None
Behavior = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class HistoryItem(Strict):
    """One event of an explicit history."""

    model_config = STRICT

    item_id: ItemId = Field(description="External item id.")
    behavior: Behavior | None = Field(None, description="Behaviour type (e.g. view, cart, buy).")
    timestamp: StrictInt | None = Field(None, ge=0, le=MAX_EPOCH_SECONDS, description="Epoch seconds.")


class StrictFilters(FilterOptions):
    model_config = STRICT


class StrictRerank(RerankOptions):
    model_config = STRICT


class StrictBlend(BlendOptions):
    model_config = STRICT


class RecommendRequest(RecommendOptions):
    """``POST /recommend``: a user id and/or an explicit history, and the list options."""

    model_config = STRICT

    user_id: ItemId | None = Field(None, description="Known users: training history + live events.")
    history: list[HistoryItem | ItemId] | None = Field(
        None,
        max_length=MAX_HISTORY,
        description=f"Recent events, oldest first (at most {MAX_HISTORY}); appended to the user's history.",
    )
    context: dict[Short, CtxValue] | None = Field(
        None, max_length=32, description="e.g. {'device': 'mobile', 'time': 1718000000}."
    )
    filters: StrictFilters | None = Field(None, description="Item filters (null = the deployment's).")
    rerank: StrictRerank | None = Field(None, description="Re-ranking (null = the deployment's).")
    blend: StrictBlend | None = Field(None, description="Sparse-history blending (null = the deployment's).")
    explain: bool = Field(True, description="Name the history items behind each recommendation.")


class Reason(BaseModel):
    """A history item that explains a recommendation."""

    item_id: Any = Field(description="External id of the history item.")
    name: str = Field(description="Its name (the id when the model has no names).")
    similarity: float = Field(
        description="Its weight: the part of the score it contributes (itemknn, ease), the cosine of the "
        "item embeddings (neural models), or 1.0 for the same category; `basis` says which."
    )
    basis: str = Field("similarity", description="contribution, similarity or category.")


class RecItem(BaseModel):
    """One recommended item."""

    item_id: Any = Field(description="External item id.")
    name: str = Field(description="Item name (the id when the model has no names).")
    score: float = Field(description="Calibrated probability (or blended score).")
    rank: int = Field(description="1 = first.")
    because: list[Reason] = Field([], description="History items behind it (with explain).")
    reason: str = Field(
        "", description="Why, in words with item names (with explain): its history items, or what it is popular in."
    )


class RecommendResponse(BaseModel):
    """The answer of ``POST /recommend``."""

    user_id: Any = Field(None, description="The user id exactly as the request gave it (a string stays a string).")
    items: list[RecItem] = Field(description="The list, best first.")
    strategy: str = Field(description="model, blend (sparse history) or popularity (empty history).")
    history_length: int = Field(description="Events used: training history + live events + explicit history.")
    warnings: list[str] = Field(
        [], description="What was ignored or clamped: unknown ids, a context the model does not use, fallbacks."
    )
    model_version: str = Field(description="<kind>-<first 12 hex of the weights' SHA-256>.")


class Event(Strict):
    """One live event."""

    model_config = STRICT

    user_id: ItemId = Field(description="External user id (new users are welcome).")
    item_id: ItemId = Field(description="External item id (unknown items are stored, not used).")
    behavior: Behavior | None = Field(None, description="Behaviour type (e.g. view, cart, buy).")
    timestamp: StrictInt | None = Field(None, ge=0, le=MAX_EPOCH_SECONDS, description="Epoch seconds (default: now).")
    context: dict[Short, CtxValue] | None = Field(None, max_length=32, description="e.g. {'device': 'mobile'}.")


class EventsRequest(Strict):
    """``POST /events``."""

    model_config = STRICT

    events: list[Event] = Field(..., min_length=1, max_length=MAX_EVENTS_PER_REQUEST, description="The events.")


class EventsResponse(BaseModel):
    """The answer of ``POST /events``."""

    accepted: int = Field(description="Events committed to the store.")
    warnings: list[str] = Field([], description="Events naming unknown items (stored for retraining only).")


class ErrorDetail(BaseModel):
    """One invalid field of a 422 answer."""

    field: str = Field(description="The field, dotted (e.g. events.0.item_id), or 'body'.")
    message: str = Field(description="What is wrong with it.")
    type: str = Field("", description="The kind of error (e.g. missing, int_type, less_than_equal).")


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer: one line saying what was wrong, naming the field."""

    error: str = Field(description="What was wrong, starting with the field it concerns.")
    field: str | None = Field(None, description="The field or header concerned (400, some 422).")
    detail: list[ErrorDetail] | None = Field(None, description="422: every invalid field.")
    request_id: str | None = Field(None, description="500: the id under which the service logged the failure.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not JSON."},
    401: {"model": ErrorResponse, "description": "A missing or wrong X-API-Key (write and export endpoints)."},
    413: {"model": ErrorResponse, "description": "The body is over the service's size limit."},
    422: {"model": ErrorResponse, "description": "A field of the wrong type or out of range, named in 'error'."},
    500: {"model": ErrorResponse, "description": "An unexpected failure, logged under 'request_id'."},
    503: {"model": ErrorResponse, "description": "Too many recommendations in flight; retry after Retry-After."},
}
"""The documented error answers of every endpoint (in the OpenAPI schema)."""


__all__ = [
    "ERROR_RESPONSES",
    "ErrorResponse",
    "MAX_EVENTS_PER_REQUEST",
    "Event",
    "EventsRequest",
    "EventsResponse",
    "HistoryItem",
    "Reason",
    "RecItem",
    "RecommendRequest",
    "RecommendResponse",
]
