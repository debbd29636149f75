"""Settings of the training loop, one pydantic model per concern.

Hyper-parameters (what is learnt: optimiser, schedule, stopping) are kept apart from run settings
(where and how a run happens: seed, threads, progress, checkpoints, time budget, tracking). Each
field is declared once, here; a model's configuration inherits the groups it uses (see
``chronorec.models.sequential.model_config``) and :meth:`TrainSettings.of` picks the trainer's fields
out of it, so nothing is copied by hand.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from chronorec.settings import Strict


class OptimizerParams(Strict):
    """AdamW's hyper-parameters."""

    lr: float = Field(1e-3, gt=0, le=10, description="peak learning rate of AdamW")
    weight_decay: float = Field(0.0, ge=0, le=10, description="AdamW's decoupled weight decay")


class ScheduleParams(Strict):
    """How the learning rate moves during a run (see ``chronorec.training.schedules``)."""

    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="'constant', or 'cosine': a half cosine from lr down to lr * min_lr_ratio over the run, "
        "whose length is the larger share used of epochs and time_budget_s",
    )
    min_lr_ratio: float = Field(0.01, ge=0, le=1, description="the cosine schedule's floor as a share of lr")
    warmup_ratio: float = Field(
        0.0, ge=0, lt=1, description="cosine: share of the run spent warming up linearly from the floor to lr"
    )
    plateau_factor: float | None = Field(
        None,
        gt=0,
        le=1,
        description="constant schedule: multiply lr by this after plateau_patience epochs without a gain",
    )
    plateau_patience: int = Field(3, ge=1, le=10_000, description="epochs without a validation gain per plateau decay")
    lr_plan: list[Annotated[float, Field(gt=0, le=10)]] | None = Field(
        None,
        max_length=100_000,
        description="a fixed learning rate per epoch (e.g. a validated run's, from refit_plan): the run lasts "
        "len(lr_plan) epochs, keeps its last weights, and neither validates, stops early nor decays",
    )


class StoppingParams(Strict):
    """How long a run lasts and how often it is validated."""

    epochs: int = Field(200, ge=1, le=100_000, description="the most epochs to train")
    patience: int = Field(10, ge=0, le=100_000, description="stop after this many validations without a gain")
    eval_every: int = Field(1, ge=1, le=100_000, description="validate every this many epochs (and after the last)")


class RunSettings(Strict):
    """Where and how a run happens; none of these changes what a seeded run learns."""

    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the weights' initialisation, batching and sampling")
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads for torch (None: torch's default)")
    progress: bool = Field(True, description="progress bars on a terminal (per-epoch lines are logged either way)")
    checkpoint_dir: str | None = Field(None, description="write a checkpoint here after every epoch")
    resume: bool = Field(False, description="continue from the checkpoint in checkpoint_dir if there is one")
    time_budget_s: float | None = Field(
        None,
        gt=0,
        le=366 * 86400,
        description="stop before an epoch that would end past this much training time (seconds)",
    )
    tracking_uri: str | None = Field(
        None,
        exclude=True,
        description="MLflow tracking URI to log the run to (default: the MLFLOW_TRACKING_URI environment "
        "variable; neither: no tracking). Not saved with the model",
    )


class TrainSettings(OptimizerParams, ScheduleParams, StoppingParams, RunSettings):
    """Everything the trainer reads: the groups above and the loop's own knobs."""

    grad_clip: float | None = Field(
        5.0, gt=0, le=1e6, description="clip the gradients' global norm to this (None: no clip)"
    )
    grad_scaler: bool = Field(False, description="loss scaling for float16 autocast on a GPU")
    label: str = Field("train", description="name of the run in log lines and progress bars")

    @classmethod
    def of(cls, config: Strict, **overrides: Any) -> TrainSettings:
        """The trainer's settings held by ``config`` (any settings model with some of these fields)."""
        own = type(config).model_fields
        values = {name: getattr(config, name) for name in cls.model_fields if name in own}
        return cls(**{**values, **overrides})


__all__ = ["OptimizerParams", "RunSettings", "ScheduleParams", "StoppingParams", "TrainSettings"]
