"""chronorec: predicting user behaviour over time for recommender systems.

Public names are imported lazily so that ``import chronorec`` stays cheap
(no torch import until a neural model is used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily (_EXPORTS)
    from chronorec.data.eventlog import EventLog as EventLog
    from chronorec.data.eventlog import read_events as read_events
    from chronorec.data.idmap import IdMap as IdMap
    from chronorec.data.sequences import SequenceStore as SequenceStore
    from chronorec.errors import ChronorecError as ChronorecError
    from chronorec.errors import ConfigError as ConfigError
    from chronorec.errors import IngestError as IngestError
    from chronorec.errors import NotFittedError as NotFittedError
    from chronorec.evaluation.split import leave_one_out as leave_one_out
    from chronorec.evaluation.split import temporal_split as temporal_split
    from chronorec.models.baselines.buyagain import BuyAgain as BuyAgain
    from chronorec.models.baselines.ease import EASE as EASE
    from chronorec.models.baselines.itemknn import ItemKNN as ItemKNN
    from chronorec.models.baselines.popular import MostPopular as MostPopular
    from chronorec.models.repeat import RepeatBlend as RepeatBlend
    from chronorec.models.sequential.bert4rec import BERT4Rec as BERT4Rec
    from chronorec.models.sequential.content import ContentSASRec as ContentSASRec
    from chronorec.models.sequential.gru4rec import GRU4Rec as GRU4Rec
    from chronorec.models.sequential.hstu import HSTU as HSTU
    from chronorec.models.sequential.sasrec import SASRec as SASRec
    from chronorec.recommend.folder import load as load
    from chronorec.scoring.ranking_metrics import evaluate_ranking as evaluate_ranking


__getattr__ = lazy_getattr(__name__, _EXPORTS)
