"""One plain PyTorch training loop shared by every neural model.

AdamW, early stopping on validation NDCG@10 (never on test), deterministic for a seed,
a checkpoint after every epoch (safetensors + JSON, never pickle) and ``resume`` after an
interruption, a tqdm progress bar with the loss and the validation metric.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chronorec.artifacts import load_tensors, save_tensors


@dataclass
class TrainSettings:
    epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    seed: int = 0
    threads: int | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    progress: bool = True
    grad_clip: float | None = 5.0
    time_budget_s: float | None = None  # stop after this much training time (the best epoch is kept)
    eval_every: int = 1
    label: str = "train"
    plateau_factor: float | None = None  # multiply the learning rate by this after `plateau_patience` bad epochs
    plateau_patience: int = 3
    # "cosine": the learning rate follows a half cosine from ``lr`` down to ``lr * min_lr_ratio``
    # over the run, whose length is the larger share used of ``epochs`` and ``time_budget_s``
    lr_schedule: str = "constant"
    min_lr_ratio: float = 0.01
    grad_scaler: bool = False  # loss scaling for float16 autocast on a GPU
    # a fixed learning rate per epoch, e.g. the schedule a validated run followed up to its best
    # epoch: the run lasts ``len(lr_plan)`` epochs, keeps its last weights, and neither stops early
    # nor decays on a plateau (a refit on training + validation data has nothing to validate on)
    lr_plan: list[float] | None = None


def cosine_lr(settings: TrainSettings, progress: float) -> float:
    """Learning rate of the cosine schedule after ``progress`` (0..1) of the run."""
    p = min(max(progress, 0.0), 1.0)
    low = settings.lr * settings.min_lr_ratio
    return low + (settings.lr - low) * 0.5 * (1.0 + math.cos(math.pi * p))


def refit_plan(history: list[dict[str, Any]], best_epoch: int) -> list[float]:
    """The learning rate of each epoch of a validated run up to its best epoch: the schedule a
    refit on training + validation data follows (``TrainSettings.lr_plan``), so the epoch count
    and the decays are the ones validation chose."""
    plan = [float(h["lr"]) for h in sorted(history, key=lambda h: h["epoch"]) if h["epoch"] <= best_epoch]
    if len(plan) != best_epoch or best_epoch < 1:
        raise ValueError(f"the history has {len(plan)} epochs up to best epoch {best_epoch}; cannot rebuild its plan")
    return plan


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_metric: float = -math.inf
    train_seconds: float = 0.0
    stopped: str = ""


def steady_allocator() -> None:
    """Keep glibc from hoarding freed tensor memory.

    By default glibc raises its mmap threshold after large frees, so the ever-changing batch
    shapes of sequence training are served from heap arenas that fragment and never shrink:
    an ML-1M SASRec run grew past 5 GB of RSS that way, against about 1 GB with a fixed
    threshold. The price is page faults on every large allocation (ML-1M SASRec epochs took about
    27 s instead of 22 s); set ``CHRONOREC_STEADY_MALLOC=0`` to trade memory for that speed.
    A no-op where glibc's ``mallopt`` is not available.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("CHRONOREC_STEADY_MALLOC", "1") == "0":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 4 * 1024 * 1024)  # M_MMAP_THRESHOLD = 4 MiB, which also stops the dynamic raise
    except (OSError, AttributeError):
        pass


def resolve_device(name: str | None = "auto") -> torch.device:
    """``"auto"`` (or None): the first CUDA GPU when one is present, else the CPU; otherwise ``name``."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU; use 'cpu' or 'auto'")
    return device


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (tensors, possibly in dicts, lists and tuples) with every tensor moved to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(int(threads))


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = opt.state_dict()
    tensors, meta = {}, {"param_groups": state["param_groups"], "scalars": {}}
    for pid, st in state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v
            else:
                meta["scalars"][f"{pid}.{k}"] = v
    return tensors, meta


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = torch.from_numpy(v.copy())
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _module_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def train(
    module: torch.nn.Module,
    *,
    batches: Callable[[int, np.random.Generator], Iterable[Any]],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    validate: Callable[[], float] | None,
    settings: TrainSettings,
    n_batches: Callable[[], int] | None = None,
) -> TrainResult:
    """Train ``module`` and leave it holding the weights of the best validation epoch.

    ``batches(epoch, rng)`` yields the batches of one epoch; ``loss_fn(module, batch)`` gives
    the mean loss; ``validate()`` gives validation NDCG@10 (higher is better).
    """
    from tqdm.auto import tqdm

    steady_allocator()
    set_threads(settings.threads)
    rng = seed_everything(settings.seed)
    opt = torch.optim.AdamW(module.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    device = next(module.parameters()).device
    scaler = torch.amp.GradScaler(device.type, enabled=settings.grad_scaler)
    result = TrainResult()
    start_epoch = 1
    best_state = _module_tensors(module)
    bad_epochs = 0
    ckpt = Path(settings.checkpoint_dir) if settings.checkpoint_dir else None
    if ckpt and settings.resume and (ckpt / "trainer.json").exists():
        meta = json.loads((ckpt / "trainer.json").read_text())
        module.load_state_dict(
            {k: torch.from_numpy(v.copy()) for k, v in load_tensors(ckpt / "last.safetensors").items()}
        )
        best_state = {k: torch.from_numpy(v.copy()) for k, v in load_tensors(ckpt / "best.safetensors").items()}
        _load_optimizer(opt, load_tensors(ckpt / "optimizer.safetensors"), meta["optimizer"])
        rng.bit_generator.state = meta["numpy_rng"]
        torch.set_rng_state(torch.from_numpy(load_tensors(ckpt / "torch_rng.safetensors")["state"].copy()))
        result.history = meta["history"]
        result.best_epoch, result.best_metric = meta["best_epoch"], meta["best_metric"]
        result.train_seconds = meta["train_seconds"]
        bad_epochs = meta["bad_epochs"]
        start_epoch = meta["epoch"] + 1
        if meta.get("finished"):
            module.load_state_dict(best_state)
            result.stopped = "already finished (resumed checkpoint)"
            return result
    show = settings.progress and not os.environ.get("CHRONOREC_NO_PROGRESS")
    plan = settings.lr_plan
    if plan is not None:
        if not plan or min(plan) <= 0:
            raise ValueError("lr_plan must be a non-empty list of positive learning rates")
        settings = dataclasses.replace(settings, epochs=len(plan), time_budget_s=None, lr_schedule="plan")
        validate = None
    epoch = start_epoch - 1
    epoch_seconds: list[float] = []  # this call's epochs, to foresee whether another fits the budget
    for epoch in range(start_epoch, settings.epochs + 1):
        t0 = time.perf_counter()
        module.train()
        if plan is not None:
            for group in opt.param_groups:
                group["lr"] = plan[epoch - 1]
        total, count = 0.0, 0
        bar = tqdm(
            batches(epoch, rng),
            total=n_batches() if n_batches else None,
            desc=f"{settings.label} epoch {epoch}",
            disable=not show,
            leave=False,
            mininterval=1.0,
        )
        n_steps = n_batches() if (n_batches and settings.lr_schedule == "cosine") else None
        for step, batch in enumerate(bar):
            if settings.lr_schedule == "cosine":
                done = epoch - 1 + (step / n_steps if n_steps else 0.0)
                progress = done / settings.epochs
                if settings.time_budget_s:
                    spent = result.train_seconds + time.perf_counter() - t0
                    progress = max(progress, spent / settings.time_budget_s)
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(settings, progress)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(module, batch)
            scaler.scale(loss).backward()
            if settings.grad_clip:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(module.parameters(), settings.grad_clip)
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach())
            count += 1
            if count % 10 == 0:
                bar.set_postfix(loss=f"{total / count:.4f}")
        bar.close()
        train_time = time.perf_counter() - t0
        entry: dict[str, Any] = {
            "epoch": epoch,
            "loss": total / max(count, 1),
            "seconds": train_time,
            "lr": opt.param_groups[0]["lr"],
        }
        metric = None
        if validate is not None and (epoch % settings.eval_every == 0 or epoch == settings.epochs):
            module.eval()
            t1 = time.perf_counter()
            metric = float(validate())
            entry["val_ndcg10"] = metric
            entry["val_seconds"] = time.perf_counter() - t1
        result.train_seconds += train_time
        result.history.append(entry)
        if metric is not None:
            if metric > result.best_metric:
                result.best_metric, result.best_epoch = metric, epoch
                best_state = _module_tensors(module)
                bad_epochs = 0
            else:
                bad_epochs += 1
                plateau = settings.plateau_factor and settings.lr_schedule == "constant"
                if plateau and bad_epochs % settings.plateau_patience == 0:
                    for group in opt.param_groups:
                        group["lr"] *= settings.plateau_factor
        else:
            best_state, result.best_epoch = _module_tensors(module), epoch
        if show:
            tqdm.write(
                f"[{settings.label}] epoch {epoch}: loss {entry['loss']:.4f}"
                + (
                    f", val NDCG@10 {metric:.4f} (best {result.best_metric:.4f} @ {result.best_epoch})"
                    if metric is not None
                    else ""
                )
                + f", {train_time:.1f}s"
            )
        # stop once the budget is spent, or when one more epoch (at the mean epoch time so far)
        # would end past it: the budget is a ceiling on training time, not a starting deadline
        over_budget = False
        if settings.time_budget_s is not None:
            epoch_seconds.append(train_time)
            mean_epoch = sum(epoch_seconds) / len(epoch_seconds)
            over_budget = result.train_seconds + mean_epoch > settings.time_budget_s
        patience_out = validate is not None and bad_epochs >= settings.patience
        finished = patience_out or over_budget  # reaching `epochs` is not final: resume may ask for more
        if ckpt:
            _checkpoint(ckpt, module, best_state, opt, rng, result, epoch, bad_epochs, finished)
        if patience_out:
            result.stopped = f"early stop: no improvement for {settings.patience} epochs"
            break
        if over_budget:
            result.stopped = f"time budget of {settings.time_budget_s:.0f}s reached (another epoch would pass it)"
            break
    else:
        result.stopped = f"ran all {settings.epochs} epochs"
    module.load_state_dict(best_state)
    module.eval()
    return result


def _checkpoint(ckpt, module, best_state, opt, rng, result, epoch, bad_epochs, finished) -> None:
    ckpt.mkdir(parents=True, exist_ok=True)
    save_tensors(ckpt / "last.safetensors", _module_tensors(module))
    save_tensors(ckpt / "best.safetensors", best_state)
    opt_tensors, opt_meta = _optimizer_tensors(opt)
    save_tensors(ckpt / "optimizer.safetensors", opt_tensors)
    save_tensors(ckpt / "torch_rng.safetensors", {"state": torch.get_rng_state()})
    meta = {
        "epoch": epoch,
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "bad_epochs": bad_epochs,
        "train_seconds": result.train_seconds,
        "history": result.history,
        "numpy_rng": rng.bit_generator.state,
        "optimizer": opt_meta,
        "finished": finished,
    }
    tmp = ckpt / "trainer.json.tmp"
    tmp.write_text(json.dumps(meta))
    tmp.replace(ckpt / "trainer.json")
