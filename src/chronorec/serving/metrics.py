"""Prometheus metrics of one service (prometheus_client, on a registry of its own).

Exposed at ``GET /metrics`` in the Prometheus text format:

* ``chronorec_model_info{kind, version, chronorec_version}`` -- the served model (value 1);
* ``chronorec_requests_total{method, route, status}`` -- HTTP requests;
* ``chronorec_request_duration_seconds{route}`` -- a latency histogram;
* ``chronorec_live_events_total`` -- live events accepted since start;
* ``chronorec_live_events_quarantined_total`` -- stored live events set aside because they could
  not be applied (see ``Service._replay``);
* ``chronorec_query_cache_hits`` / ``_misses`` -- histories whose query vector was cached / computed
  (sequence models with the query cache on).

Each application gets its own :class:`~prometheus_client.CollectorRegistry`, so several apps in
one process (tests, restarts) never share or double-register series.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper edges (seconds) of the latency histogram's buckets."""


class ServiceMetrics:
    """Request counts, latency histograms, live events and model info of one application."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model_info: dict[str, str]):
        self.registry = CollectorRegistry(auto_describe=True)
        Info("chronorec_model", "The served model (value 1).", registry=self.registry).info(model_info)
        self._requests = Counter(
            "chronorec_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "chronorec_request_duration_seconds",
            "Request latency by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._live_events = Counter(
            "chronorec_live_events", "Live events accepted since start.", registry=self.registry
        )

        self._quarantined = Counter(
            "chronorec_live_events_quarantined",
            "Stored live events set aside at start-up because they could not be applied.",
            registry=self.registry,
        )

    def set_quarantined(self, n: int) -> None:
        """Record how many stored events sit in quarantine (called once, at start-up)."""
        self._quarantined.inc(n)

    def watch_query_cache(self, cache) -> None:
        """Expose a :class:`~chronorec.models.sequential.query_cache.QueryCache`'s hits and misses."""
        for what in ("hits", "misses"):
            gauge = Gauge(f"chronorec_query_cache_{what}", f"Query-cache {what} since start.", registry=self.registry)
            gauge.set_function(lambda w=what: getattr(cache, w))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(route).observe(seconds)

    def add_live_events(self, n: int) -> None:
        self._live_events.inc(n)

    def render(self) -> bytes:
        """Every series in the Prometheus text format."""
        return generate_latest(self.registry)


__all__ = ["LATENCY_BUCKETS", "ServiceMetrics"]
