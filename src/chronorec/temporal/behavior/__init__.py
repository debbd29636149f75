"""Next-behaviour prediction, split by time.

Two tasks, both posed at a cut-off time ``t`` for every user with at least one event before ``t``:

* ``target`` (binary): does the user perform the target behaviour (default ``buy``) in ``[t, t + H)``?
* ``next_type`` (multi-class): the behaviour type of the user's first event in ``[t, t + H)``
  (users without an event in the window are not cases of this task).

The modules: :mod:`~chronorec.temporal.behavior.data` (cut-offs, labels, funnel features, the
trivial baselines' statistics), :mod:`~chronorec.temporal.behavior.feature_models` (logistic
regression and gradient boosting on the temporal features),
:mod:`~chronorec.temporal.behavior.classifier_config` and :mod:`~chronorec.temporal.behavior.sequence` (GRU /
LSTM / Transformer classifiers over event tokens, trained with the shared trainer) and
:mod:`~chronorec.temporal.behavior.protocol` (rolling folds, validation search, scoring, the
paired bootstrap against the past rate: :func:`predict_behavior`). Encoders, scalers and token
vocabularies are fitted on the training window only.
"""

from chronorec.evaluation.stats import paired_bootstrap
from chronorec.temporal.behavior.classifier_config import SequenceClassifierConfig
from chronorec.temporal.behavior.data import (
    RECENT_HOURS,
    BehaviorData,
    funnel_features,
    make_behavior_data,
    make_cutoffs,
)
from chronorec.temporal.behavior.feature_models import FEATURE_GRIDS, FEATURE_MODELS, fit_feature_model
from chronorec.temporal.behavior.protocol import HYBRID, predict_behavior, rolling_folds
from chronorec.temporal.behavior.sequence import SEQUENCE_MODELS, fit_sequence_classifier

__all__ = [
    "FEATURE_GRIDS",
    "FEATURE_MODELS",
    "HYBRID",
    "RECENT_HOURS",
    "SEQUENCE_MODELS",
    "BehaviorData",
    "SequenceClassifierConfig",
    "fit_feature_model",
    "fit_sequence_classifier",
    "funnel_features",
    "make_behavior_data",
    "make_cutoffs",
    "paired_bootstrap",
    "predict_behavior",
    "rolling_folds",
]
