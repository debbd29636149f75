"""The learning-rate schedule of a training run, as one object the trainer asks at three moments.

- ``constant``: ``lr`` throughout, optionally halved (``plateau_factor``) after every
  ``plateau_patience`` validations without a gain;
- ``cosine``: after an optional linear warm-up from the floor, a half cosine from ``lr`` down to
  ``lr * min_lr_ratio`` (nanoGPT's ``get_lr``), over the run's progress: the larger share used
  of the epochs and of the time budget, updated every step;
- ``plan``: a fixed learning rate per epoch (``lr_plan``, see :func:`refit_plan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chronorec.errors import ConfigError
from chronorec.training.settings import TrainSettings


@dataclass(frozen=True)
class LRSchedule:
    lr: float
    kind: str = "constant"  # "constant", "cosine" or "plan"
    min_lr_ratio: float = 0.01
    warmup_ratio: float = 0.0
    epochs: int = 1
    time_budget_s: float | None = None
    plateau_factor: float | None = None
    plateau_patience: int = 3
    plan: tuple[float, ...] = ()

    @classmethod
    def from_settings(cls, s: TrainSettings) -> LRSchedule:
        if s.lr_plan is not None:
            if not s.lr_plan or min(s.lr_plan) <= 0:
                raise ConfigError("lr_plan must be a non-empty list of positive learning rates")
            return cls(lr=s.lr, kind="plan", epochs=len(s.lr_plan), plan=tuple(s.lr_plan))
        return cls(
            lr=s.lr,
            kind=s.lr_schedule,
            min_lr_ratio=s.min_lr_ratio,
            warmup_ratio=s.warmup_ratio,
            epochs=s.epochs,
            time_budget_s=s.time_budget_s,
            plateau_factor=s.plateau_factor,
            plateau_patience=s.plateau_patience,
        )

    @property
    def per_step(self) -> bool:
        """Whether the rate changes within an epoch (the trainer then asks :meth:`step_lr` every step)."""
        return self.kind == "cosine"

    def cosine(self, progress: float) -> float:
        """The cosine schedule's rate after ``progress`` (0..1, clipped) of the run."""
        p = min(max(progress, 0.0), 1.0)
        low = self.lr * self.min_lr_ratio
        w = self.warmup_ratio
        if w > 0:
            if p < w:
                return low + (self.lr - low) * p / w
            p = (p - w) / (1.0 - w)
        return low + (self.lr - low) * 0.5 * (1.0 + math.cos(math.pi * p))

    def epoch_lr(self, epoch: int) -> float | None:
        """The rate to set when ``epoch`` (1-based) starts, or None to keep the current one."""
        return self.plan[epoch - 1] if self.kind == "plan" else None

    def step_lr(self, epoch: int, step: int, n_steps: int | None, spent_s: float) -> float | None:
        """The rate for ``step`` of ``epoch`` after ``spent_s`` seconds of training, or None to keep it."""
        if not self.per_step:
            return None
        done = epoch - 1 + (step / n_steps if n_steps else 0.0)
        progress = done / self.epochs
        if self.time_budget_s:
            progress = max(progress, spent_s / self.time_budget_s)
        return self.cosine(progress)

    def plateau_decay(self, bad_epochs: int) -> float | None:
        """The factor to multiply the rate by after a validation without a gain (the ``bad_epochs``-th
        in a row), or None to keep it."""
        if self.plateau_factor and self.kind == "constant" and bad_epochs % self.plateau_patience == 0:
            return self.plateau_factor
        return None


def cosine_lr(settings: TrainSettings, progress: float) -> float:
    """Learning rate of the cosine schedule of ``settings`` after ``progress`` (0..1) of the run."""
    return LRSchedule.from_settings(settings).cosine(progress)


def refit_plan(history: list[dict[str, Any]], best_epoch: int) -> list[float]:
    """The learning rate of each epoch of a validated run up to its best epoch: the schedule a
    refit on training + validation data follows (``TrainSettings.lr_plan``), so the epoch count
    and the decays are the ones validation chose."""
    plan = [float(h["lr"]) for h in sorted(history, key=lambda h: h["epoch"]) if h["epoch"] <= best_epoch]
    if len(plan) != best_epoch or best_epoch < 1:
        raise ValueError(f"the history has {len(plan)} epochs up to best epoch {best_epoch}; cannot rebuild its plan")
    return plan


__all__ = ["LRSchedule", "cosine_lr", "refit_plan"]
