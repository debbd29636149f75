"""Training checkpoints: model, best weights, optimizer, random generators and the trainer's state.

A checkpoint folder holds ``last.safetensors`` (the weights after the latest epoch),
``best.safetensors`` (those of the best validation epoch), ``optimizer.safetensors`` (AdamW's
moments), ``torch_rng.safetensors`` (torch's global generator) and ``trainer.json`` (the numpy
generator, the optimizer's scalars and the trainer's progress). The files of one checkpoint are
written aside and renamed into ``<checkpoint_dir>/state`` together, so a kill at any moment leaves
the previous checkpoint whole, never a mix of two epochs. Never pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chronorec.artifacts import atomic_dir, load_tensors, save_tensors

STATE_FILE = "trainer.json"
STATE_DIR = "state"


def module_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the module's state (parameters and buffers)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _torch_state(path: Path) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v.copy()) for k, v in load_tensors(path).items()}


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer's state as flat tensors ``"<param id>.<name>"`` plus JSON metadata."""
    state = opt.state_dict()
    tensors, meta = {}, {"param_groups": state["param_groups"], "scalars": {}}
    for pid, st in state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v
            else:
                meta["scalars"][f"{pid}.{k}"] = v
    return tensors, meta


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Restore what :func:`optimizer_tensors` saved."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = torch.from_numpy(v.copy())
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


@dataclass
class Checkpoint:
    """What a resumed run needs beyond the tensors: the trainer's progress and the numpy generator."""

    epoch: int
    best_epoch: int
    best_metric: float
    bad_epochs: int
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    numpy_rng: dict[str, Any] = field(default_factory=dict)
    finished: bool = False


def _state_dir(directory: str | Path) -> Path:
    """Where the files of the current checkpoint are (``state/``; a folder written by an older
    version holds them directly)."""
    d = Path(directory)
    return d / STATE_DIR if (d / STATE_DIR / STATE_FILE).exists() or not (d / STATE_FILE).exists() else d


def exists(directory: str | Path) -> bool:
    return (_state_dir(directory) / STATE_FILE).exists()


def save(
    directory: str | Path,
    module: torch.nn.Module,
    best_state: dict[str, torch.Tensor],
    opt: torch.optim.Optimizer,
    state: Checkpoint,
) -> None:
    """Write a checkpoint of ``module`` (its current and best weights), ``opt`` and ``state``, atomically."""
    with atomic_dir(Path(directory) / STATE_DIR, marker=STATE_FILE) as d:
        _write(d, module, best_state, opt, state)


def _write(d: Path, module: torch.nn.Module, best_state, opt: torch.optim.Optimizer, state: Checkpoint) -> None:
    save_tensors(d / "last.safetensors", module_tensors(module))
    save_tensors(d / "best.safetensors", best_state)
    opt_tensors, opt_meta = optimizer_tensors(opt)
    save_tensors(d / "optimizer.safetensors", opt_tensors)
    save_tensors(d / "torch_rng.safetensors", {"state": torch.get_rng_state()})
    meta = {
        "epoch": state.epoch,
        "best_epoch": state.best_epoch,
        "best_metric": state.best_metric,
        "bad_epochs": state.bad_epochs,
        "train_seconds": state.train_seconds,
        "history": state.history,
        "numpy_rng": state.numpy_rng,
        "optimizer": opt_meta,
        "finished": state.finished,
    }
    (d / STATE_FILE).write_text(json.dumps(meta))


def load(
    directory: str | Path, module: torch.nn.Module, opt: torch.optim.Optimizer
) -> tuple[Checkpoint, dict[str, torch.Tensor]]:
    """Restore ``module`` (latest weights), ``opt`` and torch's generator; return the state and best weights."""
    d = _state_dir(directory)
    meta = json.loads((d / STATE_FILE).read_text())
    module.load_state_dict(_torch_state(d / "last.safetensors"))
    best_state = _torch_state(d / "best.safetensors")
    load_optimizer(opt, load_tensors(d / "optimizer.safetensors"), meta["optimizer"])
    torch.set_rng_state(torch.from_numpy(load_tensors(d / "torch_rng.safetensors")["state"].copy()))
    state = Checkpoint(**{k: meta[k] for k in Checkpoint.__dataclass_fields__})
    return state, best_state


__all__ = ["Checkpoint", "exists", "load", "load_optimizer", "module_tensors", "optimizer_tensors", "save"]
