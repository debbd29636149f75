"""The service's outer layer (pure ASGI): body-size limit, metrics, and the 500 answer.

* a POST/PUT/PATCH body over ``max_body`` bytes gets 413 before it is parsed;
* every request is counted with its route, status and latency in :class:`ServiceMetrics`;
* an unexpected exception is logged with its traceback (``logger.exception``) and answered with
  a 500 whose JSON names only a request id (from ``X-Request-ID`` when the client sent a sane
  one), never the exception text; the process keeps serving;
* ``endpoints`` (path -> :data:`Endpoint`) are ``POST`` routes answered here from the request
  bytes, without the framework's routing: the endpoint answers every body, valid or not (another
  method on such a path is a 405); any other path goes on to the application.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from chronorec.serving.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

ROUTES = ("/recommend", "/events", "/events/export", "/health", "/metrics", "/docs", "/openapi.json")
"""Paths counted under their own name in the metrics (anything else is ``other``)."""
INTERNAL_ERROR = "internal error: the failure is logged by the service under this request id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(scope: dict[str, Any]) -> str:
    """The client's ``X-Request-ID`` if it is short and plain, else a fresh random id."""
    given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


async def send_json(send: Any, status: int, payload: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer with a JSON body."""
    await send_body(send, status, json.dumps(payload).encode(), headers)


async def send_body(send: Any, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer with JSON bytes."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Any, declared: bytes | None, max_body: int) -> tuple[bytes | None, bool]:
    """``(body, too_big)``: the whole request body (None if the client left) or ``too_big`` past ``max_body``."""
    try:
        if declared is not None and int(declared) > max_body:
            return b"", True
    except ValueError:
        pass
    body = b""
    more = True
    while more:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return None, False
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
        if len(body) > max_body:
            return body, True
    return body, False


Endpoint = Callable[[bytes, bytes], Awaitable[tuple[int, bytes, Sequence[tuple[bytes, bytes]]]]]
"""``endpoint(body, content_type)`` -> ``(status, JSON bytes, extra headers)``: the whole answer of a request."""


class Guard:
    """Pure ASGI middleware around the application (see the module docstring)."""

    def __init__(
        self, app: Any, metrics: ServiceMetrics, max_body: int, endpoints: Mapping[str, Endpoint] | None = None
    ):
        self.app, self.metrics, self.max_body = app, metrics, max_body
        self.endpoints = dict(endpoints or {})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        path = scope.get("path", "")
        state = {"status": 500, "started": False}

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        try:
            await self._call(scope, receive, send_wrapped)
        except Exception:
            rid = request_id(scope)
            logger.exception("unhandled error in %s %s (request id %s)", scope.get("method", "?"), path, rid)
            if state["started"]:
                raise
            payload = {"error": INTERNAL_ERROR, "request_id": rid}
            await send_json(send_wrapped, 500, payload, [(b"x-request-id", rid.encode())])
        finally:
            route = path if path in ROUTES else "other"
            self.metrics.observe(scope.get("method", "?"), route, state["status"], time.perf_counter() - t0)

    async def _call(self, scope, receive, send):
        method = scope.get("method")
        endpoint = self.endpoints.get(scope.get("path", ""))
        if endpoint is not None and method != "POST":
            error = {"error": "Method Not Allowed", "field": None}
            return await send_json(send, 405, error, [(b"allow", b"POST")])
        if method not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        body, too_big = await _read_body(receive, headers.get(b"content-length"), self.max_body)
        if too_big:
            return await send_json(send, 413, {"error": f"body: request body over {self.max_body} bytes"})
        if body is None:
            return None  # the client left
        if endpoint is not None:
            status, answer, extra = await endpoint(body, headers.get(b"content-type", b""))
            return await send_body(send, status, answer, extra)
        done = {"sent": False}

        async def replay():
            if not done["sent"]:
                done["sent"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


__all__ = ["INTERNAL_ERROR", "ROUTES", "Endpoint", "Guard", "request_id", "send_body", "send_json"]
