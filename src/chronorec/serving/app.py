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
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from chronorec.recommend.options import MAX_HISTORY
from chronorec.serving.auth import DENIED, key_matches
from chronorec.serving.metrics import LATENCY_BUCKETS
from chronorec.serving.middleware import ROUTES, FastHandler, Guard
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
from chronorec.serving.settings import MAX_BODY_BYTES, STATE_DIR_NAME, ServiceSettings
from chronorec.serving.store import Replayed

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


def create_app(model_dir: str | Path | ServiceSettings, **options: Any) -> FastAPI:
    """Build the FastAPI application for a saved model (loads it, verifies the manifest, opens the state).

    ``model_dir`` is the model folder (``options`` are then the other :class:`ServiceSettings`
    fields, e.g. ``state_dir=``, ``api_key=``, ``items_path=``, ``settings_path=``,
    ``max_body_bytes=``) or a whole :class:`ServiceSettings` (``options`` override its fields).
    """
    if isinstance(model_dir, ServiceSettings):
        settings = ServiceSettings.model_validate({**model_dir.model_dump(), **options})
    else:
        settings = ServiceSettings(model_dir=model_dir, **options)
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
    _add_recommend(app, svc)
    _add_events(app, svc)
    _add_status(app, svc)
    app.add_middleware(
        Guard, metrics=svc.metrics, max_body=settings.max_body_bytes, fast={"/recommend": _fast_recommend(svc)}
    )
    return app


def _add_recommend(app: FastAPI, svc: Service) -> None:
    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(req: RecommendRequest):
        """Top-k items for a user id and/or an explicit history (see the module docstring for the rules)."""
        answer = await _recommend(svc, req)
        return answer if isinstance(answer, Response) else Response(answer, media_type="application/json")


async def _recommend(svc: Service, req: RecommendRequest) -> bytes | Response:
    """The answer to a valid request as JSON bytes (or a 503 response past ``max_queue``), without
    FastAPI's validation and encoding of what the service built to :class:`RecommendResponse` itself
    (``tests/test_microbatch.py`` validates real answers against it)."""
    if svc.ranker.batcher is None:  # unbatched: the pipeline in the request's thread
        answer = await svc.ranker.admit(svc.recommend, req)
    else:  # prepared and answered on the event loop, ranked with the requests that arrive with it
        answer = await svc.ranker.admit_async(svc.recommend_async, req)
    return answer if isinstance(answer, Response) else orjson.dumps(answer)  # ids are 64-bit at most (schemas)


def _fast_recommend(svc: Service) -> FastHandler:
    """``POST /recommend`` answered before FastAPI's routing when its body is well-formed JSON of a valid
    request: the same answer with less work per request. Anything else goes on to the route, whose
    400 and 422 answers stay the only ones."""

    async def handle(body: bytes, scope: dict[str, Any]) -> bytes | Response | None:
        kind = dict(scope.get("headers") or []).get(b"content-type", b"application/json").split(b";")[0].strip()
        if kind != b"application/json":
            return None
        try:
            req = RecommendRequest.model_validate(orjson.loads(body))  # as FastAPI validates a body: Python mode
        except (orjson.JSONDecodeError, ValidationError):
            return None
        return await _recommend(svc, req)

    return handle


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
    def health():
        """Liveness and what is served."""
        return svc.health()

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
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if first["field"] == "body" and kind != "application/json":  # e.g. curl -d without -H: a form, not JSON
        first = {**first, "message": f"{first['message']}; send JSON with Content-Type: application/json, not {kind}"}
    return JSONResponse(status_code=422, content={"error": f"{first['field']}: {first['message']}", "detail": detail})


def _is_union_tag(part: Any) -> bool:
    """Pydantic adds the member of a union to an error location ('int', 'constrained-str', 'HistoryItem')."""
    return isinstance(part, str) and (
        part in ("int", "str", "float", "bool", "none", "constrained-int", "constrained-str", "HistoryItem")
        or part.startswith("function-")
    )


__all__ = [
    "LATENCY_BUCKETS",
    "MAX_BODY_BYTES",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_HISTORY",
    "ROUTES",
    "STATE_DIR_NAME",
    "ServiceSettings",
    "check_model_dir",
    "create_app",
]
