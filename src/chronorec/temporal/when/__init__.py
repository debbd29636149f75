"""When will each user next act: one censored time-to-event model per behaviour, its baselines and metrics.

At a cut-off ``t`` every user with an event before ``t`` is a case; for each behaviour ``b`` its time is
the time from ``t`` to the user's next ``b`` event, right-censored at the end of the case's follow-up
(training cut-offs at the validation cut-off, validation at the test cut-off, test at the end of the
data). The modules: :mod:`~chronorec.temporal.when.data` (cut-offs, censored times, features, step
sequences), :mod:`~chronorec.temporal.when.model` (a GRU over the steps beside the temporal features
into a log-normal mixture per behaviour, trained with the censored likelihood; save / load),
:mod:`~chronorec.temporal.when.baselines` (Kaplan-Meier by recency x frequency segment, Cox PH and a
random survival forest with the ``survival`` extra, the per-horizon classifiers),
:mod:`~chronorec.temporal.when.metrics` (C-index, IPCW Brier, calibration, the paired bootstrap),
:mod:`~chronorec.temporal.when.evaluate` (the protocol) and :mod:`~chronorec.temporal.when.protocol`
(the use cases of ``chronorec predict-when``).
"""

from chronorec.temporal.when.baselines import (
    KaplanMeierSegments,
    fit_cox,
    fit_horizon_classifiers,
    fit_rsf,
)
from chronorec.temporal.when.config import BASELINES, WhenConfig, WhenModelConfig
from chronorec.temporal.when.data import WhenData, make_when_cutoffs, make_when_data
from chronorec.temporal.when.evaluate import evaluate_when, write_plots
from chronorec.temporal.when.metrics import (
    brier_scores,
    calibration,
    concordance,
    integrated_brier,
    kaplan_meier,
    paired_cindex_bootstrap,
)
from chronorec.temporal.when.model import WhenModel, fit_when_model, horizon_column, load_when_model
from chronorec.temporal.when.protocol import build_when_data, fit_and_save, run_when

__all__ = [
    "BASELINES",
    "KaplanMeierSegments",
    "WhenConfig",
    "WhenData",
    "WhenModel",
    "WhenModelConfig",
    "brier_scores",
    "build_when_data",
    "calibration",
    "concordance",
    "evaluate_when",
    "fit_and_save",
    "fit_cox",
    "fit_horizon_classifiers",
    "fit_rsf",
    "fit_when_model",
    "horizon_column",
    "integrated_brier",
    "kaplan_meier",
    "load_when_model",
    "make_when_cutoffs",
    "make_when_data",
    "paired_cindex_bootstrap",
    "run_when",
    "write_plots",
]
