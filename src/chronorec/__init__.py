"""chronorec: predicting user behaviour over time for recommender systems.

Public names are imported lazily so that ``import chronorec`` stays cheap
(no torch import until a neural model is used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "EventLog": "chronorec.eventlog",
    "IdMap": "chronorec.idmap",
    "SequenceStore": "chronorec.sequences",
    "leave_one_out": "chronorec.split",
    "temporal_split": "chronorec.split",
    "evaluate_ranking": "chronorec.evaluate",
    "MostPopular": "chronorec.models.popular",
    "ItemKNN": "chronorec.models.itemknn",
    "EASE": "chronorec.models.ease",
    "GRU4Rec": "chronorec.models.gru4rec",
    "SASRec": "chronorec.models.sasrec",
    "BERT4Rec": "chronorec.models.bert4rec",
    "HSTU": "chronorec.models.hstu",
    "ContentSASRec": "chronorec.models.content",
    "load": "chronorec.artifacts",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'chronorec' has no attribute {name!r}")
