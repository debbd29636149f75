"""One plain PyTorch training loop shared by every neural model.

:class:`Trainer` runs AdamW with a learning-rate schedule (``schedules``), early stopping on a
validation metric that the caller names (never on test), gradient clipping, optional float16 loss
scaling, a time budget, a checkpoint after every epoch and ``resume`` after an interruption
(``checkpoint``), and optional MLflow tracking (``tracking``). A run is deterministic for its seed.

Every epoch logs one line (epoch, loss, learning rate, the validation metric under its own name,
seconds) through ``logging``; a tqdm bar shows progress within an epoch when progress is on and
stderr is a terminal. :func:`train` is the keyword-argument entry point that builds a Trainer.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from chronorec.errors import CheckpointError, DivergedError
from chronorec.training import checkpoint as ckpt
from chronorec.training import distributed as dist
from chronorec.training.runtime import (
    release_allocator,
    resolve_device,
    roomy_allocator,
    seed_everything,
    set_threads,
    steady_allocator,
    to_device,
)
from chronorec.training.schedules import LRSchedule, cosine_lr, refit_plan
from chronorec.training.settings import TrainSettings
from chronorec.training.tracking import MlflowRun

logger = logging.getLogger(__name__)

Batches = Callable[[int, Any], Iterable[Any]]
LossFn = Callable[[torch.nn.Module, Any], torch.Tensor]
Validate = Callable[[], float]


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_metric: float = -math.inf
    train_seconds: float = 0.0
    stopped: str = ""
    tracking: dict[str, str] = field(default_factory=dict)  # the MLflow run, when tracked


@dataclass
class EarlyStopping:
    """Best validation value so far (higher is better) and the validations since it."""

    patience: int
    bad_epochs: int = 0

    def update(self, metric: float, result: TrainResult, epoch: int) -> bool:
        """Record ``metric`` of ``epoch``; True when it is the best so far."""
        if metric > result.best_metric:
            result.best_metric, result.best_epoch = metric, epoch
            self.bad_epochs = 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def exhausted(self) -> bool:
        return self.bad_epochs >= self.patience


def show_progress(enabled: bool) -> bool:
    """Progress bars only when asked for, not vetoed by ``CHRONOREC_NO_PROGRESS`` and on a terminal."""
    if not enabled or os.environ.get("CHRONOREC_NO_PROGRESS"):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def fused_adamw(module: torch.nn.Module) -> bool | None:
    """AdamW's fused kernel (one kernel per step instead of about ten per parameter: a 4x faster
    optimiser step on a CPU) when every parameter is floating point on a CPU or CUDA device."""
    params = list(module.parameters())
    ok = params and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return True if ok else None


def _no_phase(name: str) -> None:
    pass


class Trainer:
    """Trains ``module`` and leaves it holding the weights of its best validation epoch.

    ``monitor`` names the validation metric (higher is better): the history stores it as
    ``val_<monitor>`` and the epoch lines and tracking use that name. ``params`` are extra
    parameters to track (e.g. the model's configuration).
    """

    def __init__(
        self,
        module: torch.nn.Module,
        settings: TrainSettings,
        *,
        monitor: str,
        params: dict[str, Any] | None = None,
    ):
        self.module, self.settings, self.monitor = module, settings, monitor
        self.params = params or {}
        self.schedule = LRSchedule.from_settings(settings)
        planned = self.schedule.kind == "plan"
        self.epochs = self.schedule.epochs if planned else settings.epochs
        self.time_budget_s = None if planned else settings.time_budget_s
        steady_allocator()
        set_threads(settings.threads)
        self.rng = seed_everything(settings.seed)
        self.opt = torch.optim.AdamW(
            module.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, fused=fused_adamw(module)
        )
        device = next(module.parameters()).device
        self.scaler = torch.amp.GradScaler(device.type, enabled=settings.grad_scaler)
        self.result = TrainResult()
        self.stopping = EarlyStopping(settings.patience)
        self.best_state = ckpt.module_tensors(module)
        self.start_epoch = 1
        self.show = show_progress(settings.progress)
        self.run: MlflowRun | None = None
        self.on_phase: Callable[[str], None] | None = None  # called as each phase of a step ends (``step``)

    # ------------------------------------------------------------------ state
    @property
    def metric_key(self) -> str:
        return f"val_{self.monitor}"

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def resume(self) -> bool:
        """Continue from the checkpoint folder if it holds one; True when that run had finished."""
        d = self.settings.checkpoint_dir
        if not (d and self.settings.resume):
            return False
        if not ckpt.exists(d):  # resuming nothing is a mistake (a wrong folder), not a fresh start
            raise CheckpointError(f"--resume: no checkpoint in {d}; run without --resume to start a new run there")
        state, self.best_state = ckpt.load(d, self.module, self.opt, ckpt.fingerprint(self.params, self.module))
        self.rng.bit_generator.state = state.numpy_rng
        r = self.result
        r.history, r.best_epoch, r.best_metric = state.history, state.best_epoch, state.best_metric
        r.train_seconds = state.train_seconds
        self.stopping.bad_epochs = state.bad_epochs
        self.start_epoch = state.epoch + 1
        return state.finished

    def checkpoint(self, epoch: int, finished: bool) -> None:
        """Write the checkpoint of ``epoch`` (when a checkpoint folder is set)."""
        if not self.settings.checkpoint_dir or not dist.is_main():  # rank 0 writes for every rank
            return
        r = self.result
        state = ckpt.Checkpoint(
            epoch=epoch,
            best_epoch=r.best_epoch,
            best_metric=r.best_metric,
            bad_epochs=self.stopping.bad_epochs,
            train_seconds=r.train_seconds,
            history=r.history,
            numpy_rng=self.rng.bit_generator.state,
            finished=finished,
        )
        run = ckpt.fingerprint(self.params, self.module)
        ckpt.save(self.settings.checkpoint_dir, self.module, self.best_state, self.opt, state, run)

    # ------------------------------------------------------------------ one epoch
    def step(self, batch: Any, loss_fn: LossFn) -> float:
        """One optimiser step on ``batch``; returns its loss. When :attr:`on_phase` is set it is
        called with the name of each phase of the step as that phase ends: ``"forward"`` (gradients
        zeroed and the loss computed), ``"backward"``, ``"clip"`` (gradient clipping, also when off)
        and ``"optimiser"``; reading the loss follows (e.g. to time the phases of a step)."""
        mark = self.on_phase or _no_phase
        self.opt.zero_grad(set_to_none=True)
        loss = loss_fn(self.module, batch)
        mark("forward")
        self.scaler.scale(loss).backward()
        dist.all_reduce_gradients(self.module)  # no-op unless under torchrun
        mark("backward")
        if self.settings.grad_clip:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.settings.grad_clip)
        mark("clip")
        self.scaler.step(self.opt)
        self.scaler.update()
        mark("optimiser")
        return float(loss.detach())

    def train_epoch(self, epoch: int, batches: Batches, loss_fn: LossFn, n_batches: Callable[[], int] | None) -> dict:
        """One pass over ``batches(epoch, rng)``; returns the epoch's history entry."""
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        self.module.train()
        lr = self.schedule.epoch_lr(epoch)
        if lr is not None:
            self.set_lr(lr)
        total, count = 0.0, 0
        bar = tqdm(
            dist.shard_batches(batches(epoch, self.rng)),  # this rank's rows of each global batch
            total=n_batches() if n_batches else None,
            desc=f"{self.settings.label} epoch {epoch}",
            disable=not self.show,
            leave=False,
            mininterval=1.0,
        )
        n_steps = n_batches() if (n_batches and self.schedule.per_step) else None
        for step, batch in enumerate(bar):
            lr = self.schedule.step_lr(epoch, step, n_steps, self.result.train_seconds + time.perf_counter() - t0)
            if lr is not None:
                self.set_lr(lr)
            total += self.step(batch, loss_fn)
            count += 1
            if count % 10 == 0:
                bar.set_postfix(loss=f"{total / count:.4f}")
        bar.close()
        seconds = time.perf_counter() - t0
        return {"epoch": epoch, "loss": total / max(count, 1), "seconds": seconds, "lr": self.opt.param_groups[0]["lr"]}

    def validate(self, epoch: int, validate: Validate | None, entry: dict[str, Any]) -> float | None:
        """The monitored metric after ``epoch`` (stored in ``entry``), or None when not due."""
        if validate is None or not (epoch % self.settings.eval_every == 0 or epoch == self.epochs):
            return None
        self.module.eval()
        t1 = time.perf_counter()
        with roomy_allocator():  # scoring's large blocks from the heap, not a fresh mapping each
            metric = dist.on_main(validate)  # rank 0 validates; every rank gets the value
        entry[self.metric_key] = metric
        entry["val_seconds"] = time.perf_counter() - t1
        return metric

    def _keep_best(self, epoch: int, metric: float | None) -> None:
        """Keep the best weights (the latest without validation); decay the rate on a plateau."""
        if metric is None:
            self.best_state, self.result.best_epoch = ckpt.module_tensors(self.module), epoch
        elif self.stopping.update(metric, self.result, epoch):
            self.best_state = ckpt.module_tensors(self.module)
        else:
            factor = self.schedule.plateau_decay(self.stopping.bad_epochs)
            if factor is not None:
                for group in self.opt.param_groups:
                    group["lr"] *= factor

    def _log_epoch(self, entry: dict[str, Any], metric: float | None) -> None:
        r = self.result
        val = (
            f", val {self.monitor} {metric:.4f} (best {r.best_metric:.4f} @ {r.best_epoch})"
            + (f", {self.params['history_protocol']}" if self.params.get("history_protocol") else "")
            if metric is not None
            else ""
        )
        logger.info(
            "[%s] epoch %d: loss %.4f, lr %.3g%s, %.1fs",
            self.settings.label, entry["epoch"], entry["loss"], entry["lr"], val, entry["seconds"],
        )  # fmt: skip
        if self.run is not None:
            self.run.log_epoch(entry["epoch"], {k: v for k, v in entry.items() if k != "epoch"})

    # ------------------------------------------------------------------ the run
    def fit(
        self,
        batches: Batches,
        loss_fn: LossFn,
        validate: Validate | None = None,
        n_batches: Callable[[], int] | None = None,
    ) -> TrainResult:
        """Train until the epochs, the patience or the time budget run out; return the result.

        ``batches(epoch, rng)`` yields the batches of one epoch; ``loss_fn(module, batch)`` gives
        the mean loss; ``validate()`` gives the monitored metric (higher is better).
        """
        if self.resume():
            self.module.load_state_dict(self.best_state)
            self.result.stopped = "already finished (resumed checkpoint)"
            return self.result
        if self.schedule.kind == "plan":
            validate = None  # a planned run (a refit) has nothing to validate on
        self.run = (
            MlflowRun.start(self.settings.tracking_uri, self.settings.label, self._tracked_params())
            if dist.is_main()
            else None
        )
        try:
            self._epochs(batches, loss_fn, validate, n_batches)
            dist.barrier()  # rank 0 has written its last checkpoint before any rank goes on (e.g. to resume it)
        except BaseException:
            if self.run is not None:
                self.run.end("FAILED")
            raise
        if self.run is not None:
            self.run.end()
            self.result.tracking = self.run.info
        self.module.load_state_dict(self.best_state)
        self.module.eval()
        release_allocator()  # what comes next (evaluation, scoring) allocates without a fault per block
        return self.result

    def _check_finite(self, entry: dict) -> None:
        """Stop with one line when the epoch's loss (float32 training) or any weight is not finite:
        a diverged model is never validated, checkpointed or saved."""
        loss_bad = not math.isfinite(entry["loss"]) and not self.scaler.is_enabled()
        weights_bad = any(not bool(torch.isfinite(p).all()) for p in self.module.parameters())
        if loss_bad or weights_bad:
            what = "weights" if weights_bad else "loss"
            raise DivergedError(
                f"{self.settings.label}: training diverged at epoch {entry['epoch']} (non-finite {what}, "
                f"loss {entry['loss']:.4g} at lr {entry['lr']:.3g}); lower the learning rate (-p lr=...) "
                "or check the input values; nothing was saved"
            )

    def _tracked_params(self) -> dict[str, Any]:
        own = self.settings.model_dump(exclude={"progress", "checkpoint_dir", "resume", "label"})
        return {**own, **self.params, "monitor": self.monitor}

    def _epochs(self, batches: Batches, loss_fn: LossFn, validate: Validate | None, n_batches) -> None:
        s, r = self.settings, self.result
        epoch_seconds: list[float] = []  # this call's epochs, to foresee whether another fits the budget
        for epoch in range(self.start_epoch, self.epochs + 1):
            entry = self.train_epoch(epoch, batches, loss_fn, n_batches)
            self._check_finite(entry)
            metric = self.validate(epoch, validate, entry)
            r.train_seconds += entry["seconds"]
            r.history.append(entry)
            self._keep_best(epoch, metric)
            self._log_epoch(entry, metric)
            # stop once the budget is spent, or when one more epoch (at the mean epoch time so far)
            # would end past it: the budget is a ceiling on training time, not a starting deadline
            over_budget = False
            if self.time_budget_s is not None:
                epoch_seconds.append(entry["seconds"])
                mean_epoch = sum(epoch_seconds) / len(epoch_seconds)
                over_budget = dist.agree(r.train_seconds + mean_epoch > self.time_budget_s)
            patience_out = validate is not None and self.stopping.exhausted
            self.checkpoint(epoch, finished=patience_out or over_budget)  # reaching `epochs` is not final
            if patience_out:
                r.stopped = f"early stop: no improvement for {s.patience} epochs"
                return
            if over_budget:
                r.stopped = f"time budget of {self.time_budget_s:.0f}s reached (another epoch would pass it)"
                return
        r.stopped = f"ran all {self.epochs} epochs"


def train(
    module: torch.nn.Module,
    *,
    batches: Batches,
    loss_fn: LossFn,
    validate: Validate | None,
    settings: TrainSettings,
    n_batches: Callable[[], int] | None = None,
    monitor: str = "ndcg10",
    params: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``module`` with a :class:`Trainer` and leave it holding the weights of the best epoch.

    ``monitor`` names what ``validate()`` returns (higher is better), e.g. ``"ndcg10"``,
    ``"pr_auc"`` or ``"neg_mae"``; the history stores it as ``val_<monitor>``.
    """
    trainer = Trainer(module, settings, monitor=monitor, params=params)
    return trainer.fit(batches, loss_fn, validate, n_batches)


__all__ = [
    "EarlyStopping",
    "TrainResult",
    "TrainSettings",
    "Trainer",
    "cosine_lr",
    "refit_plan",
    "resolve_device",
    "seed_everything",
    "set_threads",
    "steady_allocator",
    "to_device",
    "train",
]
