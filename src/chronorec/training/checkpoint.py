"""Training checkpoints: model, best weights, optimizer, random generators and the trainer's state.

A checkpoint folder holds ``last.safetensors`` (the weights after the latest epoch),
``best.safetensors`` (those of the best validation epoch), ``optimizer.safetensors`` (AdamW's
moments), ``torch_rng.safetensors`` (torch's global generator) and ``trainer.json`` (the numpy
generator, the optimizer's scalars and the trainer's progress). The files of one checkpoint are
written aside and renamed into ``<checkpoint_dir>/state`` together, so a kill at any moment leaves
the previous checkpoint whole, never a mix of two epochs. Never pickle.

``trainer.json`` also carries the run's fingerprint (:func:`fingerprint`: what is learnt -- the
model's configuration without its run settings, the shapes of its weights -- and the training data,
by the :func:`~chronorec.data.fingerprint.data_fingerprint` its model records too); :func:`load`
refuses a checkpoint whose fingerprint differs from the resuming run's, and one whose files are
truncated or corrupt, with a :class:`CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chronorec.artifacts import atomic_dir, load_tensors, save_tensors
from chronorec.errors import CheckpointError
from chronorec.training.settings import RunSettings, StoppingParams

logger = logging.getLogger(__name__)

STATE_FILE = "trainer.json"
STATE_DIR = "state"


RUN_ONLY = (
    (set(RunSettings.model_fields) - {"seed"})
    | set(StoppingParams.model_fields)
    | {
        "progress",
        "label",
        "device",
        "amp",
        "amp_dtype",
        "compile",
        "compile_mode",
        "eval_users",
    }
)
"""Settings that may change between a run and its resumption (where and how long it runs)."""


def _digest(*arrays: Any) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        if a.dtype == object:
            h.update("\x1f".join(map(str, a.tolist())).encode())
        else:
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def data_record(fingerprint: str, offsets: Any, items: Any, item_ids: Any) -> dict[str, Any]:
    """The training data a checkpoint records: the log's
    :func:`~chronorec.data.fingerprint.data_fingerprint` (the one a model's ``training_data`` records)
    and its sizes, which a refusal names and which are all a checkpoint of an older chronorec (whose
    record hashed the sequences on its own) shares with this one."""
    return {
        "fingerprint": fingerprint,
        "n_sequences": int(len(offsets) - 1),
        "n_events": int(len(items)),
        "n_items": int(len(item_ids)),
    }


def fingerprint(params: dict[str, Any], module: torch.nn.Module) -> dict[str, Any]:
    """What a resumed run must share with the run that wrote the checkpoint: the configuration of
    what is learnt (``params`` without :data:`RUN_ONLY`; a ``data`` entry from
    :func:`data_record`), and the names and shapes of the module's weights."""
    config = {k: v for k, v in params.items() if k not in RUN_ONLY and k != "data"}
    shapes = {k: list(v.shape) for k, v in module.state_dict().items()}
    out = {"config": json.loads(json.dumps(config, default=str)), "weights": _digest(json.dumps(shapes))}
    if "data" in params:
        out["data"] = params["data"]
    return out


def _show(value: Any) -> str:
    return repr(value[:12] + "...") if isinstance(value, str) and len(value) > 16 else repr(value)


def _data_parts(saved: dict[str, Any], current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data records to compare: whole, or, for a checkpoint written before the one data
    fingerprint (its record has ``sequences`` and ``catalogue`` hashes instead), the sizes both have."""
    if not saved or "fingerprint" in saved:
        return saved, current
    shared = set(saved) & set(current)
    logger.warning(
        "the checkpoint was written by an older chronorec: only the sizes of its training data (%s) are checked",
        ", ".join(sorted(shared)) or "none",
    )
    return {k: saved[k] for k in shared}, {k: current[k] for k in shared}


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    out = []
    data = _data_parts(saved.get("data") or {}, current.get("data") or {})
    for part, (a, b) in (("config", (saved.get("config") or {}, current.get("config") or {})), ("data", data)):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"{part} {key}: {_show(a.get(key))} in the checkpoint, {_show(b.get(key))} now")
    if not out and saved.get("weights") != current.get("weights"):
        out.append("the shapes of the weights differ")
    return out


def module_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the module's state (parameters and buffers)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


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


def saved_epoch(directory: str | Path) -> int | None:
    """The epoch of the checkpoint in ``directory`` from its progress file alone (no weights read),
    or None when it holds none."""
    if not exists(directory):
        return None
    return int(json.loads((_state_dir(directory) / STATE_FILE).read_text())["epoch"])


def save(
    directory: str | Path,
    module: torch.nn.Module,
    best_state: dict[str, torch.Tensor],
    opt: torch.optim.Optimizer,
    state: Checkpoint,
    run: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint of ``module`` (its current and best weights), ``opt`` and ``state``, atomically;
    ``run`` is the run's :func:`fingerprint`."""
    with atomic_dir(Path(directory) / STATE_DIR, marker=STATE_FILE) as d:
        _write(d, module, best_state, opt, state, run)


def _write(
    d: Path, module: torch.nn.Module, best_state, opt: torch.optim.Optimizer, state: Checkpoint, run=None
) -> None:
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
        "fingerprint": run,
    }
    (d / STATE_FILE).write_text(json.dumps(meta))


def _read(path: Path, what: str) -> Any:
    """One file of a checkpoint, or a one-line :class:`CheckpointError` naming it."""
    try:
        if path.suffix == ".json":
            value = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
        return load_tensors(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: a checkpoint file ({what}) is missing; {_START_AGAIN}") from None
    except Exception as e:  # JSON, safetensors or decoding errors of a truncated or corrupt file
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint file ({what}: {e}); {_START_AGAIN}") from None


_START_AGAIN = "delete the checkpoint folder, or run without --resume, to start again"


def load(
    directory: str | Path,
    module: torch.nn.Module,
    opt: torch.optim.Optimizer,
    expected: dict[str, Any] | None = None,
) -> tuple[Checkpoint, dict[str, torch.Tensor]]:
    """Restore ``module`` (latest weights), ``opt`` and torch's generator; return the state and best weights.

    ``expected`` (:func:`fingerprint` of the resuming run) must match the checkpoint's when both have
    one; a mismatch or a damaged file raises :class:`CheckpointError` before anything is restored.
    """
    d = _state_dir(directory)
    meta = _read(d / STATE_FILE, "progress file")
    saved = meta.get("fingerprint")
    if expected is not None and saved is not None:
        diff = _differences(saved, expected)
        if diff:
            raise CheckpointError(
                f"{directory}: the checkpoint was written by another run ({'; '.join(diff[:3])}); "
                "give another --checkpoint-dir, or run without --resume to start again"
            )
    last = _read(d / "last.safetensors", "weights")
    best = _read(d / "best.safetensors", "best weights")
    opt_state = _read(d / "optimizer.safetensors", "optimizer state")
    rng = _read(d / "torch_rng.safetensors", "random generator state")
    try:
        state = Checkpoint(**{k: meta[k] for k in Checkpoint.__dataclass_fields__})
        module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in last.items()})
        best_state = {k: torch.from_numpy(v.copy()) for k, v in best.items()}
        load_optimizer(opt, opt_state, meta["optimizer"])
        torch.set_rng_state(torch.from_numpy(rng["state"].copy()))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        text = " ".join(str(e).split())[:300]
        raise CheckpointError(f"{directory}: the checkpoint does not fit this run ({text}); {_START_AGAIN}") from None
    return state, best_state


__all__ = [
    "Checkpoint",
    "data_record",
    "exists",
    "fingerprint",
    "load",
    "load_optimizer",
    "module_tensors",
    "optimizer_tensors",
    "save",
]
