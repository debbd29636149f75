"""Where and how training runs: device choice, tensor placement, threads, seeds, the allocator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from chronorec.errors import ConfigError

STEADY_MMAP_BYTES = 4 * 1024 * 1024
"""glibc's mmap threshold while training (see :func:`steady_allocator`)."""
ROOMY_MMAP_BYTES = 32 * 1024 * 1024
"""The threshold while scoring and after training: glibc's own ceiling for its dynamic threshold."""


def _mmap_threshold(nbytes: int) -> None:
    """Set glibc's ``M_MMAP_THRESHOLD`` (a no-op off glibc or with ``CHRONOREC_STEADY_MALLOC=0``)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("CHRONOREC_STEADY_MALLOC", "1") == "0":
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, int(nbytes))  # M_MMAP_THRESHOLD; also stops the dynamic raise
    except (OSError, AttributeError):
        pass


def steady_allocator() -> None:
    """Keep glibc from hoarding freed tensor memory while training.

    By default glibc raises its mmap threshold after large frees, so the ever-changing batch
    shapes of sequence training are served from heap arenas that fragment and never shrink:
    an ML-1M SASRec run grew past 5 GB of RSS that way, against about 1 GB with a fixed
    threshold of 4 MiB. The price is page faults on every large allocation (ML-1M SASRec epochs
    took about 27 s instead of 22 s); set ``CHRONOREC_STEADY_MALLOC=0`` to trade memory for that
    speed. Scoring pays the same faults on every batch, so validation runs under
    :func:`roomy_allocator` and :func:`release_allocator` ends training (evaluating all ML-1M
    users after training: 1.9 s at 4 MiB, 1.2 s at 32 MiB).
    """
    _mmap_threshold(STEADY_MMAP_BYTES)


def release_allocator() -> None:
    """After training: blocks up to 32 MiB from the heap again, as glibc's dynamic threshold ends up."""
    _mmap_threshold(ROOMY_MMAP_BYTES)


@contextmanager
def roomy_allocator() -> Iterator[None]:
    """Scoring inside training (validation): the larger threshold, then the steady one again."""
    release_allocator()
    try:
        yield
    finally:
        steady_allocator()


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


__all__ = [
    "release_allocator",
    "resolve_device",
    "roomy_allocator",
    "seed_everything",
    "set_threads",
    "steady_allocator",
    "to_device",
]
