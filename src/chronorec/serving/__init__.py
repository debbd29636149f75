"""The HTTP service (FastAPI + uvicorn): ``chronorec serve --model DIR``.

Names are imported lazily: ``import chronorec.serving`` imports neither FastAPI nor torch.
Modules: :mod:`~chronorec.serving.app` (factory and routes), :mod:`~chronorec.serving.service`
(model, pipeline and live state of one service), :mod:`~chronorec.serving.schemas` (request and
response bodies), the settings (:class:`~chronorec.settings.ServeSettings`, shared with the CLI and config files),
:mod:`~chronorec.serving.auth` (API key), :mod:`~chronorec.serving.metrics` (Prometheus),
:mod:`~chronorec.serving.middleware` (body limit, metrics, 500s),
:mod:`~chronorec.serving.store` (:class:`LiveEventStore`, the durable live-event store) and
:mod:`~chronorec.serving.microbatch` (micro-batching of ``/recommend``).
"""

from __future__ import annotations

from chronorec.lazy import lazy_getattr

_EXPORTS = {
    "create_app": "chronorec.serving.app",
    "check_model_dir": "chronorec.serving.service",
    "Service": "chronorec.serving.service",
    "ServeSettings": "chronorec.settings",
    "LiveEventStore": "chronorec.serving.store",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
