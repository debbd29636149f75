"""The HTTP service (FastAPI + uvicorn): ``chronorec serve --model DIR``.

Names are imported lazily: ``import chronorec.serve`` imports neither FastAPI nor torch.
See :mod:`chronorec.serve.app` for the endpoints and :mod:`chronorec.serve.store` for the
durable live-event store.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "chronorec.serve.app",
    "check_model_dir": "chronorec.serve.app",
    "EventStore": "chronorec.serve.store",
    "serve": "chronorec.serve.command",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'chronorec.serve' has no attribute {name!r}")
