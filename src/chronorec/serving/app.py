"""The HTTP service: ``create_app(model_dir)`` returns a FastAPI application.

Endpoints (OpenAPI at ``/docs``):

* ``POST /recommend`` -- by ``user_id`` (training history + live events) and/or an explicit
  ``history``; ``k``, ``context``, ``filters``, ``rerank``, ``blend``, ``explain``. Unknown users
  take the cold-start path; unknown items are ignored and reported in ``warnings``.
* ``POST /events`` -- append live events (committed to SQLite before the answer); the next
  ``/recommend`` of that user includes them. Needs ``X-API-Key`` when the service has a key.
  With an ``Idempotency-Key`` header a retried request adds nothing and gets the first answer.
* ``GET /events/export?format=parquet|csv|jsonl`` -- the live events as a file (key as above).
* ``GET /health``, ``GET /metrics`` (Prometheus text format, :mod:`chronorec.serving.metrics`).

Timestamps (events, history items) are read as ``chronorec ingest`` reads them (ISO 8601 text, naive
= UTC; epochs in s / ms / us / ns by magnitude; :data:`~chronorec.serving.schemas.TIMESTAMP_HELP`);
a behaviour type the model was not trained on is kept and named in ``warnings``.

``POST /recommend`` has one entrance, :func:`recommend_endpoint`, called by the outer middleware
(:class:`~chronorec.serving.middleware.Guard`) with the request bytes, without FastAPI's routing:
it parses and validates the body (400 / 422 in the same shape as every other route), asks
:meth:`Service.recommend <chronorec.serving.service.Service.recommend>` (admission, preparation,
micro-batched ranking) and maps the service's :class:`~chronorec.serving.microbatch.Overloaded` to
503 with ``Retry-After``. The route is declared to the OpenAPI schema only (:func:`_recommend_doc`).

Documented answers: a body that is not JSON -> 400; a field of the wrong type or out of range
(``k <= 0``, unknown option, too long a list, a timestamp that is none) -> 422 whose ``error``
names the field; a body over ``max_body_bytes`` -> 413; a history over ``MAX_HISTORY`` (10,000)
items -> 422; ``k`` above the catalogue size -> clamped to it, with a warning; a missing or wrong
key -> 401; more than ``max_queue`` recommendations in flight -> 503 with ``Retry-After``; any
unexpected failure -> 500 with a generic message and a ``request_id`` (the traceback goes to the
log under that id; the process keeps serving).
"""

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from chronorec.recommend.options import MAX_HISTORY
from chronorec.serving.auth import DENIED, key_matches
from chronorec.serving.metrics import LATENCY_BUCKETS
from chronorec.serving.microbatch import Overloaded
from chronorec.serving.middleware import ROUTES, Endpoint, Guard
from chronorec.serving.schemas import (
    ERROR_RESPONSES,
    MAX_EVENTS_PER_REQUEST,
    TIMESTAMP_ERRORS,
    EventsRequest,
    EventsResponse,
    RecommendRequest,
    RecommendResponse,
)
from chronorec.serving.service import Service, check_model_dir
from chronorec.serving.store import Replayed
from chronorec.settings import MAX_BODY_BYTES, STATE_DIR_NAME, ServeSettings

logger = logging.getLogger(__name__)

ApiKey = Annotated[str | None, Header(description="The service's API key (when it has one).")]
IDEMPOTENCY_HEADER = "Idempotency-Key"
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="A client's unique id of this request (printable ASCII, at most 255 characters): a retry "
        "with the same key and body adds nothing and gets the first answer; kept 24 hours.",
    ),
]


def create_app(model_dir: str | Path | ServeSettings, **options: Any) -> FastAPI:
    """Build the FastAPI application for a saved model (loads it, verifies the manifest, opens the state).

    ``model_dir`` is the model folder (``options`` are then the other :class:`~chronorec.settings.ServeSettings`
    fields, e.g. ``state_dir=``, ``api_key=``, ``items=``, ``settings=``, ``max_body_bytes=``) or a whole
    :class:`~chronorec.settings.ServeSettings` (``options`` override its fields).
    """
    if isinstance(model_dir, ServeSettings):
        settings = ServeSettings.model_validate({**dict(model_dir), **options})
    else:
        settings = ServeSettings(model=model_dir, **options)
    svc = Service(settings)
    app = FastAPI(
        title="chronorec",
        version=svc.model_version,
        description="Next-item recommendations with live events. See docs/ for the serving guide.",
        responses=ERROR_RESPONSES,
    )
    app.state.service = svc
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    _document(app, [_recommend_doc()])
    _add_events(app, svc)
    _add_status(app, svc)
    endpoints = {"/recommend": recommend_endpoint(svc)}
    app.add_middleware(Guard, metrics=svc.metrics, max_body=settings.max_body_bytes, endpoints=endpoints)
    return app


_NO_HEADERS: tuple[tuple[bytes, bytes], ...] = ()


def recommend_endpoint(svc: Service) -> Endpoint:
    """``POST /recommend`` from its body bytes to its answer: the one path of every request (valid or not)."""

    async def recommend(body: bytes, content_type: bytes) -> tuple[int, bytes, Any]:
        kind = content_type.split(b";")[0].strip().lower().decode("latin-1")
        try:
            req = _request(body, kind)
        except _MalformedJson as err:
            return 400, orjson.dumps({"error": f"body: malformed JSON ({err})", "field": "body"}), _NO_HEADERS
        except ValidationError as err:
            return 422, orjson.dumps(_invalid(err.errors(), kind or "application/json")), _NO_HEADERS
        try:
            answer = await svc.recommend(req)
        except Overloaded as err:
            return 503, orjson.dumps({"error": str(err)}), [(b"retry-after", str(err.retry_after_s).encode())]
        return 200, orjson.dumps(answer), _NO_HEADERS  # ids are 64-bit at most (schemas)

    return recommend


class _MalformedJson(ValueError):
    """The body of a JSON request is not JSON (its text: the parser's reason)."""


def _request(body: bytes, kind: str) -> RecommendRequest:
    """The request in a body, read as FastAPI reads a JSON body (parsed when its type is JSON or not
    given, the bytes otherwise) and validated in Python mode; :class:`_MalformedJson` or pydantic's
    ``ValidationError`` when there is none."""
    if not body:
        raise ValidationError.from_exception_data("RecommendRequest", [{"type": "missing", "loc": (), "input": None}])
    if kind and kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
        return RecommendRequest.model_validate(body)  # not JSON: refused, with a hint to send JSON
    try:
        return RecommendRequest.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        pass  # orjson reads integers beyond 64 bits as floats: read the body again as JSON reads it
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        raise _MalformedJson(err.msg) from None
    except UnicodeDecodeError:
        raise _MalformedJson("not UTF-8 text") from None
    return RecommendRequest.model_validate(data)


def _recommend_doc() -> APIRoute:
    """``POST /recommend`` as the OpenAPI schema shows it; requests are answered by :func:`recommend_endpoint`."""

    async def recommend(req: RecommendRequest) -> RecommendResponse:  # pragma: no cover - documentation only
        """Top-k items for a user id and/or an explicit history (see the module docstring for the rules)."""
        raise NotImplementedError

    return APIRoute(
        "/recommend", recommend, methods=["POST"], response_model=RecommendResponse, responses=ERROR_RESPONSES
    )


def _document(app: FastAPI, routes: list[APIRoute]) -> None:
    """Add ``routes`` (answered before FastAPI's routing) to the application's OpenAPI schema."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=[*routes, *app.routes],
                separate_input_output_schemas=app.separate_input_output_schemas,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_events(app: FastAPI, svc: Service) -> None:
    def denied(given: str | None) -> JSONResponse | None:
        return None if key_matches(svc.api_key, given) else JSONResponse(status_code=401, content={"error": DENIED})

    @app.post("/events", response_model=EventsResponse)
    def events(req: EventsRequest, x_api_key: ApiKey = None, idempotency_key: IdempotencyKey = None):
        """Append live events; they are committed before the answer and used by the next /recommend.

        With an ``Idempotency-Key``, a retry of the same body adds nothing and gets the first answer
        (header ``Idempotent-Replayed: true``); the same key with another body is a 422.
        """
        refused = denied(x_api_key)
        if refused is not None:
            return refused
        if idempotency_key is None:
            return svc.add_events(req.events)
        digest = hashlib.sha256(json.dumps(req.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
        try:
            answer = svc.add_events(req.events, idempotency=(idempotency_key, digest))
        except Replayed as first:
            return _replay(first, digest)
        answer = jsonable_encoder(answer)
        svc.store.record_response(idempotency_key, answer)
        return answer

    @app.get("/events/export", response_class=Response, responses=EXPORT_RESPONSES)
    def export(format: Annotated[str, Query(pattern="^(parquet|csv|jsonl)$")] = "parquet", x_api_key: ApiKey = None):
        """All live events as a file for the next training run (columns user_id, item_id, timestamp, behavior, ...)."""
        refused = denied(x_api_key)
        if refused is not None:
            return refused
        df = svc.store.to_frame()
        if format == "parquet":
            buf = io.BytesIO()
            df.to_parquet(buf, index=False)
            return Response(buf.getvalue(), media_type="application/vnd.apache.parquet")
        if format == "csv":
            return Response(df.to_csv(index=False), media_type="text/csv")
        return Response(df.to_json(orient="records", lines=True), media_type="application/x-ndjson")


def _add_status(app: FastAPI, svc: Service) -> None:
    @app.get("/health")
    def health(x_api_key: ApiKey = None):
        """Liveness and what is served; the model folder's path only to a caller with the API key (a
        service with a key tells an anonymous caller nothing about its file system)."""
        out = svc.health()
        if svc.api_key is not None and not key_matches(svc.api_key, x_api_key):
            out.pop("model_dir", None)
        return out

    @app.get("/metrics", response_class=Response, responses=METRICS_RESPONSES)
    def metrics():
        """Prometheus text format: request counts, latency histograms, live events, model version."""
        return Response(svc.metrics.render(), media_type=svc.metrics.content_type)


_FILE = {"schema": {"type": "string", "format": "binary"}}
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The live events as a Parquet, CSV or JSON Lines file.",
        "content": {"application/vnd.apache.parquet": _FILE, "text/csv": _FILE, "application/x-ndjson": _FILE},
    }
}
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text format.", "content": {"text/plain": {"schema": {"type": "string"}}}}
}


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Errors raised by the framework (a body that cannot be decoded, an unknown path or method) in
    the service's own shape: ``{"error": ...}``."""
    field = "body" if exc.status_code == 400 else None
    text = f"body: {exc.detail}" if field else str(exc.detail)
    return JSONResponse(
        status_code=exc.status_code, content={"error": text, "field": field}, headers=getattr(exc, "headers", None)
    )


def _replay(first: Replayed, digest: str) -> JSONResponse:
    """The answer to a retried ``Idempotency-Key``: the first answer, or a 422 for another body."""
    if first.digest != digest:
        return JSONResponse(
            status_code=422,
            content={
                "error": f"{IDEMPOTENCY_HEADER}: this key was already used with another body; "
                "use a new key for a new request",
                "field": IDEMPOTENCY_HEADER,
            },
        )
    content = first.response if first.response is not None else {"accepted": first.accepted, "warnings": []}
    return JSONResponse(status_code=200, content=content, headers={"Idempotent-Replayed": "true"})


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON; 422 naming the first bad field (one message per field) otherwise."""
    errors = exc.errors()
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        ctx = bad_json.get("ctx") or {}
        return JSONResponse(
            status_code=400,
            content={"error": f"body: malformed JSON ({ctx.get('error', 'invalid')})", "field": "body"},
        )
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    return JSONResponse(status_code=422, content=_invalid(errors, kind))


def _invalid(errors: Any, kind: str) -> dict[str, Any]:
    """The body of a 422: the first bad field in ``error`` (one message per field), every one in ``detail``."""
    detail, fields = [], {}
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x != "body" and not _is_union_tag(x)]
        name = ".".join(loc) or "body"
        entry = {"field": name, "message": e.get("msg", ""), "type": e.get("type", "")}
        if name in fields:  # one message per field (a union reports each of its members) ...
            if entry["type"] in TIMESTAMP_ERRORS:  # ... a timestamp's own reason over its integer member's
                detail[fields[name]] = entry
            continue
        fields[name] = len(detail)
        detail.append(entry)
    first = detail[0] if detail else {"field": "body", "message": "invalid request"}
    if first["field"] == "body" and kind != "application/json":  # e.g. curl -d without -H: a form, not JSON
        first = {**first, "message": f"{first['message']}; send JSON with Content-Type: application/json, not {kind}"}
    return {"error": f"{first['field']}: {first['message']}", "detail": detail}


def _is_union_tag(part: Any) -> bool:
    """Pydantic adds the member of a union to an error location ('int', 'constrained-str', 'HistoryItem')."""
    return isinstance(part, str) and (
        part in ("int", "str", "float", "bool", "none", "constrained-int", "constrained-str", "HistoryItem")
        or part in ("history-event", "history-id")
        or part.startswith("function-")
    )


__all__ = [
    "LATENCY_BUCKETS",
    "MAX_BODY_BYTES",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_HISTORY",
    "ROUTES",
    "STATE_DIR_NAME",
    "ServeSettings",
    "check_model_dir",
    "create_app",
    "recommend_endpoint",
]
