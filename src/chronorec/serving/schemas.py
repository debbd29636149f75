"""Request and response bodies of the HTTP service (strict pydantic: unknown keys are a 422)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StrictFloat,
    StrictInt,
    StringConstraints,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chronorec.data.timestamps import MAX_EPOCH_SECONDS, MAX_TIME_TEXT, SECONDS_BELOW, parse_time_values
from chronorec.recommend.options import (
    MAX_HISTORY,
    BlendOptions,
    FilterOptions,
    ItemId,
    RecommendOptions,
    RerankOptions,
)
from chronorec.settings import Strict

MAX_EVENTS_PER_REQUEST = 1000
"""Most events one ``POST /events`` may carry."""

STRICT = ConfigDict(extra="forbid", strict=True)
"""Request bodies take JSON types as the schema says: ``false`` is no integer, ``"3"`` no number."""

Short = Annotated[str, StringConstraints(max_length=256)]
CtxValue = StrictInt | StrictFloat | Short | None
Behavior = Annotated[str, StringConstraints(min_length=1, max_length=64)]

TIMESTAMP_HELP = (
    "When the event happened, read as `chronorec ingest` reads a time column: a number is epoch "
    "seconds below 1e11, milliseconds below 1e14, microseconds below 1e17, else nanoseconds "
    "(fractions are floored to the second); text is an ISO 8601 date-time (e.g. "
    "2024-06-10T09:30:00Z or 2024-06-10T11:30:00+02:00; without a zone it is UTC), numeric text, or "
    "another common date form. Between 1970-01-01 and 2262-04-11 UTC; anything else is a 422."
)

TIMESTAMP_ERRORS = frozenset({"timestamp_parsing", "timestamp_out_of_range", "timestamp_too_long"})
"""The error types of a bad timestamp: the 422 names one of these rather than the plain-integer
member's ``int_type`` that the same field reports beside it."""

_PARSE_LATER: ContextVar[bool] = ContextVar("chronorec_parse_later", default=False)


class _Read:
    """A request's timestamp already parsed together with the request's others (:func:`_read_timestamps`)."""

    __slots__ = ("reason", "seconds", "value")

    def __init__(self, value: Any, seconds: int | None, reason: str):
        self.value, self.seconds, self.reason = value, seconds, reason


def _timestamp(value: Any) -> int:
    """Any timestamp but plain epoch seconds (which the field's first, compiled member takes) as epoch
    seconds, or the 422 that says why it is none."""
    if type(value) is not _Read:
        if _PARSE_LATER.get():
            raise PydanticCustomError("timestamp_later", "parsed with the request's others")
        value = _Read(value, *parse_time_values([value])[0])  # a model built in Python: one value alone
    if value.seconds is not None and 0 <= value.seconds <= MAX_EPOCH_SECONDS:
        return value.seconds
    shown = repr(value.value) if len(repr(value.value)) <= 40 else repr(value.value)[:37] + "..."
    if value.reason == "timestamp too long":
        raise PydanticCustomError("timestamp_too_long", f"timestamp text over {MAX_TIME_TEXT} characters")
    if value.seconds is not None or value.reason == "timestamp out of range":
        raise PydanticCustomError(
            "timestamp_out_of_range",
            f"{shown} is out of range: times lie between 1970-01-01 and 2262-04-11 UTC (a number is seconds "
            "below 1e11, milliseconds below 1e14, microseconds below 1e17, else nanoseconds)",
        )
    raise PydanticCustomError(
        "timestamp_parsing",
        f"{shown} is not a timestamp: send epoch seconds, milliseconds or microseconds (a number) or an "
        "ISO 8601 date-time such as 2024-06-10T09:30:00Z",
    )


def _read_timestamps(rows: Any) -> Any:
    """``rows`` (events or history items, as the body holds them) with every timestamp that is not
    plain epoch seconds parsed in one call (pandas' fixed cost once per request, not per value)."""
    if type(rows) is not list:
        return rows
    todo = [
        i
        for i, row in enumerate(rows)
        if type(row) is dict
        and (t := row.get("timestamp")) is not None
        and not (type(t) is int and 0 <= t < SECONDS_BELOW)
    ]
    if not todo:
        return rows
    read = parse_time_values([rows[i]["timestamp"] for i in todo])
    out = list(rows)
    for i, (seconds, reason) in zip(todo, read, strict=True):
        out[i] = {**rows[i], "timestamp": _Read(rows[i]["timestamp"], seconds, reason)}
    return out


def _with_times(data: Any, handler: Any, key: str) -> Any:
    """Validate a request whose ``key`` list holds timestamps: first as it is, where plain epoch
    seconds cost only the compiled check (the usual request: no Python per event); if that fails,
    every other timestamp of the list is parsed in one call and the request validated again, so a
    bad value is reported with its reason and a thousand ISO times cost one parse, not a thousand."""
    token = _PARSE_LATER.set(True)
    try:
        return handler(data)
    except ValidationError:
        pass
    finally:
        _PARSE_LATER.reset(token)
    rows = data.get(key) if type(data) is dict else None
    read = _read_timestamps(rows)
    return handler(data if read is rows else {**data, key: read})


Timestamp = Annotated[
    Annotated[StrictInt, Field(ge=0, lt=SECONDS_BELOW)]
    | Annotated[int, Field(ge=0, le=MAX_EPOCH_SECONDS), PlainValidator(_timestamp)],
    Field(union_mode="left_to_right"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "number", "minimum": 0},
                {"type": "string", "maxLength": MAX_TIME_TEXT},
            ],
            "examples": [1718011800, 1718011800000, "2024-06-10T09:30:00Z"],
        },
        mode="validation",
    ),
]
"""Epoch seconds after validation; epochs in s / ms / us / ns or date-time text in a request
(:data:`TIMESTAMP_HELP`, the rules of :mod:`chronorec.data.timestamps`). Plain epoch seconds are
taken by the first, compiled member; anything else by :func:`_timestamp`."""

BEHAVIOR_HELP = (
    "Behaviour type (e.g. view, cart, buy). A name the model was not trained on is kept as given "
    "(stored, and matched by exclude_behaviors filters) and the answer's warnings name it."
)


class HistoryItem(Strict):
    """One event of an explicit history."""

    model_config = STRICT

    item_id: ItemId = Field(description="External item id.")
    behavior: Behavior | None = Field(None, description=BEHAVIOR_HELP)
    timestamp: Timestamp | None = Field(
        None, description=TIMESTAMP_HELP + " Orders the history when every item has one."
    )


def _history_kind(value: Any) -> str:
    return "history-event" if isinstance(value, dict | HistoryItem) else "history-id"


HistoryEntry = Annotated[
    Annotated[HistoryItem, Tag("history-event")] | Annotated[ItemId, Tag("history-id")], Discriminator(_history_kind)
]
"""An event object or a bare id, told apart by the JSON type, so that a bad id is answered as an id
(e.g. one beyond 64 bits: "less than or equal to ...") rather than as "not a valid dictionary"."""


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
    history: list[HistoryEntry] | None = Field(
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

    @model_validator(mode="wrap")
    @classmethod
    def _history_times(cls, data: Any, handler: Any) -> Any:
        return _with_times(data, handler, "history")


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
        [],
        description="What was ignored or clamped: unknown ids, behaviour types the model was not trained on, "
        "a context the model does not use, fallbacks.",
    )
    model_version: str = Field(description="<kind>-<first 12 hex of the weights' SHA-256>.")


class Event(Strict):
    """One live event."""

    model_config = STRICT

    user_id: ItemId = Field(description="External user id (new users are welcome).")
    item_id: ItemId = Field(description="External item id (unknown items are stored, not used).")
    behavior: Behavior | None = Field(None, description=BEHAVIOR_HELP)
    timestamp: Timestamp | None = Field(None, description=TIMESTAMP_HELP + " Default: the time it is received.")
    context: dict[Short, CtxValue] | None = Field(None, max_length=32, description="e.g. {'device': 'mobile'}.")


class EventsRequest(Strict):
    """``POST /events``."""

    model_config = STRICT

    events: list[Event] = Field(..., min_length=1, max_length=MAX_EVENTS_PER_REQUEST, description="The events.")

    @model_validator(mode="wrap")
    @classmethod
    def _event_times(cls, data: Any, handler: Any) -> Any:
        return _with_times(data, handler, "events")


class EventsResponse(BaseModel):
    """The answer of ``POST /events``."""

    accepted: int = Field(description="Events committed to the store.")
    warnings: list[str] = Field(
        [],
        description="Events naming items unknown to the model (stored for retraining only) or behaviour "
        "types it was not trained on (stored as given and used like any event).",
    )


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
    "MAX_EPOCH_SECONDS",
    "Reason",
    "RecItem",
    "RecommendRequest",
    "RecommendResponse",
    "TIMESTAMP_ERRORS",
    "TIMESTAMP_HELP",
    "Timestamp",
]
