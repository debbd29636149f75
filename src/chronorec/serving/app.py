"""The HTTP service: ``create_app(model_dir)`` returns a FastAPI application.

Endpoints (OpenAPI at ``/docs``):

* ``POST /recommend`` -- by ``user_id`` (training history + live events) and/or an explicit
  ``history``; ``k``, ``context``, ``filters``, ``rerank``, ``blend``, ``explain``. Unknown users
  take the cold-start path; unknown items are ignored and reported in ``warnings``.
* ``POST /events`` -- append live events (committed to SQLite before the answer); the next
  ``/recommend`` of that user includes them. Needs ``X-API-Key`` when the service has a key.
* ``GET /events/export?format=parquet|csv|jsonl`` -- the live events as a file (key as above).
* ``GET /health``, ``GET /metrics`` (Prometheus text format).

Documented answers: a body that is not JSON -> 400; a field of the wrong type or out of range
(``k <= 0``, unknown option, too long a list) -> 422 whose ``error`` names the field; a body over
``max_body_bytes`` -> 413; a history over ``MAX_HISTORY`` (10,000) items -> 422; ``k`` above the
catalogue size -> clamped to it, with a warning; any unexpected failure -> 500 with a message
(the process keeps serving).
"""

import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from chronorec.artifacts import ALLOWED_SUFFIXES, MANIFEST, read_manifest
from chronorec.recommend.pipeline import (
    MAX_HISTORY,
    BlendOptions,
    FilterOptions,
    HistoryEvents,
    ItemId,
    ItemTable,
    PopularityIndex,
    RecommendOptions,
    RecommendPipeline,
    RecommendSettings,
    RerankOptions,
    context_keys,
    to_internal,
)

STATE_DIR_NAME = "live"
MAX_BODY_BYTES = 2_000_000
MAX_EVENTS_PER_REQUEST = 1000
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ROUTES = ("/recommend", "/events", "/events/export", "/health", "/metrics", "/docs", "/openapi.json")


# ============================================================================ model directory
def check_model_dir(model_dir: str | Path, *, ignore: tuple[str, ...] = (STATE_DIR_NAME,)) -> dict[str, Any]:
    """Refuse a directory holding anything but JSON, safetensors and Parquet; return its verified manifest.

    ``ignore`` names sub-folders that are not part of the model (the live-event state folder).
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such model directory")
    bad = []
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d)
        if rel.parts[0] in ignore:
            continue
        if p.is_dir():
            continue
        if not p.is_file() or p.suffix.lower() not in ALLOWED_SUFFIXES:
            bad.append(str(rel))
    if bad:
        raise ValueError(
            f"{d}: refusing to serve a model directory holding files other than JSON, safetensors and Parquet: "
            f"{bad[:10]} (remove them; models are never loaded from pickle / .pt / .bin files)"
        )
    if not (d / MANIFEST).exists():
        raise FileNotFoundError(f"{d}: no {MANIFEST}; not a chronorec model directory")
    return read_manifest(d)


# ============================================================================ request schemas
def _schemas():
    """Pydantic request/response models (built lazily, so importing this module stays cheap)."""
    from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StringConstraints

    Short = Annotated[str, StringConstraints(max_length=256)]
    CtxValue = StrictInt | StrictFloat | Short | None

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class HistoryItem(_Strict):
        item_id: ItemId
        behavior: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
        timestamp: StrictInt | None = Field(None, ge=0, description="Epoch seconds.")

    class RecommendRequest(_Strict):
        user_id: ItemId | None = Field(None, description="Known users: training history + live events.")
        history: list[HistoryItem | ItemId] | None = Field(
            None,
            max_length=MAX_HISTORY,
            description=f"Recent events, oldest first (at most {MAX_HISTORY}); appended to the user's history.",
        )
        context: dict[Short, CtxValue] | None = Field(
            None, max_length=32, description="e.g. {'device': 'mobile', 'time': 1718000000}."
        )
        k: int = Field(10, gt=0, description="Number of items; above the catalogue size it is clamped.")
        filters: FilterOptions | None = None
        rerank: RerankOptions | None = None
        blend: BlendOptions | None = None
        explain: bool = True
        n_explain: int = Field(3, ge=0, le=20)

    class Reason(BaseModel):
        item_id: Any
        name: str
        similarity: float

    class RecItem(BaseModel):
        item_id: Any
        name: str
        score: float
        rank: int
        because: list[Reason] = []

    class RecommendResponse(BaseModel):
        user_id: Any = None
        items: list[RecItem]
        strategy: str
        history_length: int
        warnings: list[str] = []
        model_version: str

    class Event(_Strict):
        user_id: ItemId
        item_id: ItemId
        behavior: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
        timestamp: StrictInt | None = Field(None, ge=0, description="Epoch seconds (default: now).")
        context: dict[Short, CtxValue] | None = Field(None, max_length=32)

    class EventsRequest(_Strict):
        events: list[Event] = Field(..., min_length=1, max_length=MAX_EVENTS_PER_REQUEST)

    class EventsResponse(BaseModel):
        accepted: int
        warnings: list[str] = []

    return {
        "HistoryItem": HistoryItem,
        "RecommendRequest": RecommendRequest,
        "RecommendResponse": RecommendResponse,
        "Event": Event,
        "EventsRequest": EventsRequest,
        "EventsResponse": EventsResponse,
    }


# ============================================================================ metrics
class Metrics:
    """Request counts and latency histograms in the Prometheus text format (no extra dependency)."""

    def __init__(self, model_info: dict[str, str]):
        self.model_info = model_info
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.live_events = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.counts[(method, route, status)] += 1
            b = self.buckets[route]
            for i, edge in enumerate(LATENCY_BUCKETS):
                if seconds <= edge:
                    b[i] += 1
            b[-1] += 1
            self.sums[route] += seconds

    def render(self) -> str:
        lines = [
            "# HELP chronorec_model_info The served model (value 1).",
            "# TYPE chronorec_model_info gauge",
            "chronorec_model_info{" + ",".join(f'{k}="{v}"' for k, v in self.model_info.items()) + "} 1",
            "# HELP chronorec_requests_total HTTP requests by method, route and status.",
            "# TYPE chronorec_requests_total counter",
        ]
        with self._lock:
            for (m, r, s), n in sorted(self.counts.items()):
                lines.append(f'chronorec_requests_total{{method="{m}",route="{r}",status="{s}"}} {n}')
            lines += [
                "# HELP chronorec_request_duration_seconds Request latency by route.",
                "# TYPE chronorec_request_duration_seconds histogram",
            ]
            for r in sorted(self.buckets):
                b = self.buckets[r]
                for edge, n in zip(LATENCY_BUCKETS, b, strict=False):
                    lines.append(f'chronorec_request_duration_seconds_bucket{{route="{r}",le="{edge}"}} {n}')
                lines.append(f'chronorec_request_duration_seconds_bucket{{route="{r}",le="+Inf"}} {b[-1]}')
                lines.append(f'chronorec_request_duration_seconds_sum{{route="{r}"}} {self.sums[r]:.6f}')
                lines.append(f'chronorec_request_duration_seconds_count{{route="{r}"}} {b[-1]}')
            lines += [
                "# HELP chronorec_live_events_total Live events accepted since start.",
                "# TYPE chronorec_live_events_total counter",
                f"chronorec_live_events_total {self.live_events}",
            ]
        return "\n".join(lines) + "\n"


class _Guard:
    """Pure ASGI middleware: body-size limit (413), latency and status metrics."""

    def __init__(self, app: Any, metrics: Metrics, max_body: int):
        self.app, self.metrics, self.max_body = app, metrics, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        path = scope.get("path", "")
        route = path if path in ROUTES else "other"
        status = {"code": 500}

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if scope.get("method") in ("POST", "PUT", "PATCH"):
                declared = dict(scope.get("headers") or []).get(b"content-length")
                too_big = False
                if declared is not None:
                    try:
                        too_big = int(declared) > self.max_body
                    except ValueError:
                        too_big = False
                body = b""
                more = True
                while more and not too_big:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        return
                    body += msg.get("body", b"")
                    more = msg.get("more_body", False)
                    too_big = len(body) > self.max_body
                if too_big:
                    await _send_json(send_wrapped, 413, {"error": f"body: request body over {self.max_body} bytes"})
                    return
                done = {"sent": False}

                async def replay():
                    if not done["sent"]:
                        done["sent"] = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                await self.app(scope, replay, send_wrapped)
            else:
                await self.app(scope, receive, send_wrapped)
        finally:
            self.metrics.observe(scope.get("method", "?"), route, status["code"], time.perf_counter() - t0)


async def _send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ============================================================================ live state
class LiveHistories:
    """In-memory live events per user (internal item ids + behaviours), rebuilt from the store at start."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: dict[str, list[int]] = defaultdict(list)
        self._behaviors: dict[str, list[str | None]] = defaultdict(list)

    def add(self, key: str, item: int, behavior: str | None) -> None:
        with self._lock:
            self._items[key].append(item)
            self._behaviors[key].append(behavior)

    def get(self, key: str) -> tuple[np.ndarray, list[str | None]]:
        with self._lock:
            return np.asarray(self._items.get(key, []), np.int64), list(self._behaviors.get(key, []))


# ============================================================================ the application
class Service:
    """Model, pipeline, live events and metrics of one running service."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        state_dir: str | Path | None = None,
        api_key: str | None = None,
        items_path: str | Path | None = None,
        settings_path: str | Path | None = None,
    ):
        from chronorec.models.registry import load
        from chronorec.serving.store import EventStore

        self.model_dir = Path(model_dir)
        manifest = check_model_dir(self.model_dir)
        self.model = load(self.model_dir)
        self.api_key = api_key
        digest = manifest["files"].get("model.safetensors", "")[:12]
        self.model_version = f"{manifest['kind']}-{digest}"
        settings = None
        if settings_path is not None:
            settings = RecommendSettings.load(settings_path)
        elif (self.model_dir / "recommend.json").exists():
            settings = RecommendSettings.load(self.model_dir / "recommend.json")
        items = ItemTable.read(items_path, self.model.items) if items_path is not None else None
        self.popularity = PopularityIndex(self.model.popularity)
        self.pipeline = RecommendPipeline(self.model, items=items, settings=settings, popularity=self.popularity)
        self.user_int_ids = np.issubdtype(np.asarray(self.model.users.external_ids).dtype, np.integer)
        self.store = EventStore(Path(state_dir) if state_dir is not None else self.model_dir / STATE_DIR_NAME)
        self.live = LiveHistories()
        for e in self.store:
            self._apply(e)
        self.metrics = Metrics(
            {
                "kind": manifest["kind"],
                "version": self.model_version,
                "chronorec_version": str(manifest.get("chronorec_version", "")),
            }
        )
        self.started = time.time()
        self.pipeline.rank(np.zeros(1, np.int64), [np.ones(1, np.int64)], RecommendOptions(k=1))  # warm-up

    def user_key(self, user: Any) -> tuple[Any, str]:
        """The user id in the model's id type (``"12"`` -> 12 for integer ids) and its live-state key."""
        if self.user_int_ids and isinstance(user, str):
            try:
                user = int(user)
            except ValueError:
                pass
        if not self.user_int_ids and not isinstance(user, str):
            user = str(user)
        return user, json.dumps(user)

    def _apply(self, e: dict[str, Any]) -> int:
        _, key = self.user_key(e["user_id"])
        item = int(to_internal(self.model.items, [e["item_id"]])[0])
        if item > 0:
            self.live.add(key, item, e.get("behavior"))
            ctx = dict(e.get("context") or {})
            ctx.setdefault("time", e["timestamp"])
            self.popularity.add(item, context_keys(ctx))
        return item


def create_app(
    model_dir: str | Path,
    *,
    state_dir: str | Path | None = None,
    api_key: str | None = None,
    items_path: str | Path | None = None,
    settings_path: str | Path | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
):
    """Build the FastAPI application for a saved model (loads it, verifies the manifest, opens the state)."""
    from fastapi import FastAPI, Header, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse, Response

    S = _schemas()
    RecommendRequest, RecommendResponse = S["RecommendRequest"], S["RecommendResponse"]
    EventsRequest, EventsResponse = S["EventsRequest"], S["EventsResponse"]
    svc = Service(model_dir, state_dir=state_dir, api_key=api_key, items_path=items_path, settings_path=settings_path)
    app = FastAPI(
        title="chronorec",
        version=svc.model_version,
        description="Next-item recommendations with live events. See the README section 'Serving recommendations'.",
    )
    app.state.service = svc

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            e = next(e for e in errors if e.get("type") == "json_invalid")
            ctx = e.get("ctx") or {}
            return JSONResponse(
                status_code=400,
                content={"error": f"body: malformed JSON ({ctx.get('error', 'invalid')})", "field": "body"},
            )
        detail, fields = [], set()
        for e in errors:
            loc = [str(x) for x in e.get("loc", ()) if x != "body" and not _is_union_tag(x)]
            name = ".".join(loc) or "body"
            if name in fields:
                continue  # one message per field (a union reports each of its members)
            fields.add(name)
            detail.append({"field": name, "message": e.get("msg", ""), "type": e.get("type", "")})
        first = detail[0] if detail else {"field": "body", "message": "invalid request"}
        return JSONResponse(
            status_code=422, content={"error": f"{first['field']}: {first['message']}", "detail": detail}
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        return JSONResponse(status_code=500, content={"error": f"internal error: {type(exc).__name__}: {exc}"})

    def _auth(key: str | None) -> JSONResponse | None:
        if svc.api_key is not None and key != svc.api_key:
            return JSONResponse(status_code=401, content={"error": "X-API-Key: missing or wrong API key"})
        return None

    @app.post("/recommend", response_model=RecommendResponse)
    def recommend(req: RecommendRequest):  # type: ignore[valid-type]
        """Top-k items for a user id and/or an explicit history (see the module docstring for the rules)."""
        warnings: list[str] = []
        pipe = svc.pipeline
        user_int = 0
        items = np.zeros(0, np.int64)
        behaviors: list[str | None] = []
        user_out = None
        if req.user_id is not None:
            user_out, key = svc.user_key(req.user_id)
            user_int = int(to_internal(svc.model.users, [user_out])[0])
            base = pipe.user_history(user_int)
            live_items, live_beh = svc.live.get(key)
            items = np.concatenate([base, live_items])
            behaviors = [None] * len(base) + live_beh
            if user_int == 0:
                warnings.append(
                    f"user_id {user_out!r} is unknown to the model"
                    + (f"; using its {len(live_items)} live events" if len(live_items) else "; cold-start path")
                )
        if req.history:
            hist = [h if isinstance(h, S["HistoryItem"]) else S["HistoryItem"](item_id=h) for h in req.history]
            if all(h.timestamp is not None for h in hist):
                hist = sorted(hist, key=lambda h: h.timestamp)  # stable: ties keep the given order
            idx = to_internal(svc.model.items, [h.item_id for h in hist])
            unknown = [h.item_id for h, i in zip(hist, idx, strict=True) if i == 0]
            if unknown:
                warnings.append(f"history: {len(unknown)} unknown item ids ignored: {unknown[:10]}")
            items = np.concatenate([items, idx[idx > 0]])
            behaviors = behaviors + [h.behavior for h, i in zip(hist, idx, strict=True) if i > 0]
        opts = RecommendOptions(
            k=req.k,
            filters=req.filters,
            rerank=req.rerank,
            blend=req.blend,
            explain=req.explain,
            n_explain=req.n_explain,
        )
        has_beh = any(b is not None for b in behaviors)
        ranked = pipe.rank(
            np.array([user_int], np.int64),
            [HistoryEvents(items, behaviors if has_beh else None)],
            opts,
            contexts=[req.context],
        )[0]
        ext = pipe.external(ranked.items) if len(ranked.items) else []
        out_items = []
        for r, (i, e, s) in enumerate(zip(ranked.items, ext, ranked.scores, strict=True)):
            because = []
            if ranked.explanations is not None and ranked.explanations[r]:
                reasons = ranked.explanations[r]
                ext_r = pipe.external([j for j, _ in reasons])
                because = [
                    {"item_id": _py(x), "name": pipe.item_name(j), "similarity": round(sim, 6)}
                    for x, (j, sim) in zip(ext_r, reasons, strict=True)
                ]
            out_items.append(
                {
                    "item_id": _py(e),
                    "name": pipe.item_name(int(i)),
                    "score": float(s),
                    "rank": r + 1,
                    "because": because,
                }
            )
        return {
            "user_id": _py(user_out),
            "items": out_items,
            "strategy": ranked.strategy,
            "history_length": int(len(items)),
            "warnings": warnings + ranked.warnings,
            "model_version": svc.model_version,
        }

    @app.post("/events", response_model=EventsResponse)
    def events(req: EventsRequest, x_api_key: Annotated[str | None, Header()] = None):  # type: ignore[valid-type]
        """Append live events; they are committed before the answer and used by the next /recommend."""
        denied = _auth(x_api_key)
        if denied is not None:
            return denied
        now = int(time.time())
        rows = []
        for e in req.events:
            user, _ = svc.user_key(e.user_id)
            rows.append(
                {
                    "user_id": user,
                    "item_id": e.item_id,
                    "behavior": e.behavior,
                    "timestamp": e.timestamp if e.timestamp is not None else now,
                    "context": e.context or {},
                }
            )
        svc.store.append(rows)
        unknown = []
        for row in rows:
            if svc._apply(row) == 0:
                unknown.append(row["item_id"])
        svc.metrics.live_events += len(rows)
        warnings = []
        if unknown:
            warnings.append(
                f"{len(unknown)} events name items unknown to the model: stored for retraining, "
                f"not used for recommendations: {unknown[:10]}"
            )
        return {"accepted": len(rows), "warnings": warnings}

    @app.get("/events/export")
    def export(
        format: Annotated[str, Query(pattern="^(parquet|csv|jsonl)$")] = "parquet",
        x_api_key: Annotated[str | None, Header()] = None,
    ):
        """All live events as a file for the next training run (columns user_id, item_id, timestamp, behavior, ...)."""
        denied = _auth(x_api_key)
        if denied is not None:
            return denied
        import io

        df = svc.store.to_frame()
        if format == "parquet":
            buf = io.BytesIO()
            df.to_parquet(buf, index=False)
            return Response(buf.getvalue(), media_type="application/vnd.apache.parquet")
        if format == "csv":
            return Response(df.to_csv(index=False), media_type="text/csv")
        return Response(df.to_json(orient="records", lines=True), media_type="application/x-ndjson")

    @app.get("/health")
    def health():
        """Liveness and what is served."""
        return {
            "status": "ok",
            "model_version": svc.model_version,
            "model_dir": str(svc.model_dir),
            "n_items": svc.model.n_items,
            "n_users": svc.model.users.size,
            "live_events": len(svc.store),
            "uptime_s": round(time.time() - svc.started, 3),
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics():
        """Prometheus text format: request counts, latency histograms, model version."""
        return PlainTextResponse(svc.metrics.render(), media_type="text/plain; version=0.0.4")

    app.add_middleware(_Guard, metrics=svc.metrics, max_body=max_body_bytes)
    return app


def _is_union_tag(part: Any) -> bool:
    """Pydantic adds the member of a union to an error location ('int', 'constrained-str', 'HistoryItem')."""
    return isinstance(part, str) and (
        part in ("int", "str", "float", "bool", "none", "constrained-str", "HistoryItem")
        or part.startswith("function-")
    )


def _py(v: Any) -> Any:
    """numpy scalars -> Python scalars for JSON."""
    return v.item() if isinstance(v, np.generic) else v
