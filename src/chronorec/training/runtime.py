"""Where and how training runs: device choice, tensor placement, threads, seeds, the allocator."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from chronorec.errors import ConfigError


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
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU; use 'cpu' or 'auto'")
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
    """Use ``threads`` intra-op CPU threads (None or 0: leave torch's choice)."""
    if threads:
        torch.set_num_threads(int(threads))


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch's global generator; return the numpy generator that drives batching."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


__all__ = ["resolve_device", "seed_everything", "set_threads", "steady_allocator", "to_device"]
