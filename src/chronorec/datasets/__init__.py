"""Benchmark datasets: loaders for common file formats and the shared data folder.

Names are imported lazily (nothing is read or imported at ``import chronorec.datasets``).
See :mod:`chronorec.datasets.formats`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DATASETS": "chronorec.datasets.formats",
    "data_dir": "chronorec.datasets.formats",
    "dataset_path": "chronorec.datasets.formats",
    "load_dataset": "chronorec.datasets.formats",
    "load_movielens": "chronorec.datasets.formats",
    "load_movielens_items": "chronorec.datasets.formats",
    "load_ml1m_item_names": "chronorec.datasets.formats",
    "load_sequence_file": "chronorec.datasets.formats",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'chronorec.datasets' has no attribute {name!r}")
