"""The HTTP service (FastAPI + uvicorn): ``chronorec serve --model DIR``.

Names are imported lazily: ``import chronorec.serving`` imports neither FastAPI nor torch.
See :mod:`chronorec.serving.app` for the endpoints and :mod:`chronorec.serving.store` for the
durable live-event store.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "chronorec.serving.app",
    "check_model_dir": "chronorec.serving.app",
    "EventStore": "chronorec.serving.store",
    "serve": "chronorec.cli.serve",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'chronorec.serving' has no attribute {name!r}")
