"""chronorec: predicting user behaviour over time for recommender systems.

Public names are imported lazily so that ``import chronorec`` stays cheap
(no torch import until a neural model is used).
"""

from __future__ import annotations

from chronorec.lazy import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "EventLog": "chronorec.data.eventlog",
    "IdMap": "chronorec.data.idmap",
    "SequenceStore": "chronorec.data.sequences",
    "leave_one_out": "chronorec.evaluation.split",
    "temporal_split": "chronorec.evaluation.split",
    "evaluate_ranking": "chronorec.scoring.ranking_metrics",
    "MostPopular": "chronorec.models.baselines.popular",
    "BuyAgain": "chronorec.models.baselines.buyagain",
    "RepeatBlend": "chronorec.models.repeat",
    "ItemKNN": "chronorec.models.baselines.itemknn",
    "EASE": "chronorec.models.baselines.ease",
    "GRU4Rec": "chronorec.models.sequential.gru4rec",
    "SASRec": "chronorec.models.sequential.sasrec",
    "BERT4Rec": "chronorec.models.sequential.bert4rec",
    "HSTU": "chronorec.models.sequential.hstu",
    "ContentSASRec": "chronorec.models.sequential.content",
    "load": "chronorec.recommend.folder",  # the model with its folder's recommendation pipeline
    "read_events": "chronorec.data.eventlog",
    "ChronorecError": "chronorec.errors",
    "ConfigError": "chronorec.errors",
    "IngestError": "chronorec.errors",
    "NotFittedError": "chronorec.errors",
}

__all__ = [*_EXPORTS, "__version__"]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
