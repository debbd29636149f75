"""Settings of the time-to-event model and of the ``predict-when`` command.

:class:`WhenModelConfig` holds the network's and the training loop's hyper-parameters (declared once;
:meth:`chronorec.training.settings.TrainSettings.of` picks the loop's out of it). :class:`WhenConfig`
is the ``when:`` section of a ``--config`` file and the options of ``chronorec predict-when``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from chronorec.settings import Strict
from chronorec.training.settings import OptimizerParams, StoppingParams

__all__ = ["BASELINES", "WhenConfig", "WhenModelConfig"]

BASELINES = ("km", "cox", "rsf", "gbm")


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [x.strip() for x in value.split(",") if x.strip()]
    return value


class WhenModelConfig(OptimizerParams, StoppingParams):
    """A GRU over the user's steps before the cut-off, next to the temporal features, into a
    log-normal mixture per behaviour (:class:`chronorec.nn.time_heads.LogNormalMixtureHead`)."""

    dim: int = Field(32, ge=4, le=4096, description="width of the step embeddings, the GRU and the head's input")
    max_len: int = Field(
        32, ge=1, le=100_000, description="steps per input: the user's last max_len steps before the cut-off"
    )
    components: int = Field(8, ge=1, le=256, description="log-normal components per behaviour")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout of the step embeddings and the feature branch")
    use_sequence: bool = Field(True, description="encode the step sequence (a GRU)")
    use_features: bool = Field(True, description="feed the standardised temporal features to the head")
    item_bag: int = Field(
        0,
        ge=0,
        le=10_000,
        description="embed the bag of the user's last item_bag items (the category where the log has one) next to "
        "the steps; 0: off",
    )
    min_item_count: int = Field(
        5, ge=1, le=1_000_000, description="items seen fewer times in the training window share one token"
    )
    aux_weight: float = Field(
        0.5, ge=0, le=1000, description="weight of the other behaviours' likelihood next to the target's (multi-task)"
    )
    rank_weight: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="weight of a pairwise ranking term on the target (DeepHit's: for each pair of a batch where "
        "case i's event came first, exp(-(F_i(T_i) - F_j(T_i)) / rank_sigma)) next to the likelihood",
    )
    rank_sigma: float = Field(0.1, gt=0, le=1000, description="scale of the ranking term")
    epochs: int = Field(30, ge=1, le=100_000, description="the most epochs (early stopping on validation)")
    patience: int = Field(4, ge=0, le=100_000, description="stop after this many validations without a gain")
    batch_size: int = Field(256, ge=1, le=1_000_000, description="training cases per batch")
    lr: float = Field(2e-3, gt=0, le=10, description="learning rate of AdamW")
    weight_decay: float = Field(1e-4, ge=0, le=10, description="AdamW's decoupled weight decay")
    monitor: Literal["cindex", "nll"] = Field(
        "cindex",
        description="validation figure that chooses the epoch: the target's Harrell C-index (risk = P(T <= the "
        "validation follow-up)), or minus the censored negative log-likelihood",
    )
    ensemble: int = Field(
        1, ge=1, le=100, description="networks trained with seeds seed..seed+n-1; their mixtures averaged"
    )


class WhenConfig(Strict):
    """``chronorec predict-when``: when each user next performs each behaviour, split by time."""

    category_col: str | None = Field(None, description="Optional category column of --data.")
    target: str = Field("buy", description="Target behaviour: the C-index, calibration and bar are about it.")
    behaviors: list[str] = Field([], description="Behaviours modelled, comma-separated (default: every type).")
    test_cutoff: str | None = Field(
        None, description="Test cut-off (ISO or epoch s, UTC; default the last day boundary a window before the end)."
    )
    validation_hours: float = Field(
        24.0, gt=0, le=24 * 3650, description="Hours between the validation and test cut-offs."
    )
    test_window_hours: float | None = Field(
        None,
        gt=0,
        le=24 * 3650,
        description="Follow-up of the test cut-off in hours (default: to the end of the data).",
    )
    step_hours: float = Field(6.0, gt=0, le=24 * 3650, description="Hours between training cut-offs.")
    train_cutoffs: int | None = Field(None, ge=1, le=100_000, description="At most this many training cut-offs.")
    min_history_hours: float = Field(
        24.0, ge=0, le=24 * 3650, description="History required before the first training cut-off."
    )
    freq: Literal["hour", "day", "week"] = Field("day", description="Period of the series features.")
    windows: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(
        [1, 7, 28], min_length=1, max_length=64, description="Trailing feature windows in periods, comma-separated."
    )
    utc_offset: float | None = Field(
        None, ge=-14, le=14, description="Local time offset in hours (default: the dataset's own)."
    )
    horizons_hours: list[Annotated[float, Field(gt=0, le=24 * 3650)]] = Field(
        [24.0, 168.0], min_length=1, max_length=32, description="Horizons H of P(within H), comma-separated."
    )
    baselines: list[str] = Field(list(BASELINES), description="Comma-separated: km, cox, rsf, gbm.")
    epochs: int = Field(30, ge=1, le=100_000, description="Maximum epochs of the learned model.")
    max_len: int = Field(32, ge=1, le=100_000, description="Steps per input of the learned model.")
    ensemble: int = Field(1, ge=1, le=100, description="Networks averaged in the learned model.")
    bootstrap: int = Field(
        1000, ge=10, le=100_000, description="Bootstrap resamples of the users for the C-index interval."
    )
    out: str = Field("runs/when", description="Output folder: when.json, plots and predictions.")
    save: str | None = Field(None, description="Fit the learned model and save it here.")
    model: str | None = Field(None, description="A saved when-model: predict with it instead of evaluating.")
    at: str | None = Field(None, description="Prediction time for --model (ISO or epoch s, UTC; default the end).")
    predictions: str | None = Field(
        None, description="Per-user table (.csv or .parquet; default <out>/predictions.csv)."
    )

    @field_validator("behaviors", "windows", "horizons_hours", "baselines", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("baselines")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        bad = [b for b in value if b not in BASELINES]
        if bad:
            raise ValueError(f"unknown baseline(s) {bad}: use {', '.join(BASELINES)}")
        return value

    @field_validator("horizons_hours")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if not value or any(h <= 0 for h in value):
            raise ValueError("horizons are positive hours, e.g. 24,168")
        return value
