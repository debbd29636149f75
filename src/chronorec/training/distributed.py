"""Data-parallel training over several processes (torchrun; gloo on CPU, NCCL on GPU).

A process started by ``torchrun`` (or ``chronorec train --nproc-per-node N``, which starts torchrun
itself) finds ``WORLD_SIZE`` / ``RANK`` in its environment; the first call here joins the process
group. Outside torchrun every helper is a no-op, so the one :class:`~chronorec.training.trainer.Trainer`
serves both. What the trainer does with them, in each step and epoch:

* **batches** — every rank draws the same *global* batch (the epoch generator is seeded alike) and
  keeps its rows ``rank, rank + W, rank + 2W, ...`` (:func:`shard_batches`): the ranks see disjoint
  users in every step, the same number of steps (a batch smaller than the world is padded by
  repeating rows, so no rank waits for a step that never comes), and together exactly the global
  batch a one-process run trains on;
* **gradients** — averaged over the ranks after ``backward`` (:func:`all_reduce_gradients`: the
  all-reduce of ``DistributedDataParallel``, bucketed, after the backward pass instead of overlapped
  with it — the sequence models score their output layer from the embedding table outside
  ``forward()``, which a DDP wrapper would not see, so the reduction works on the parameters);
* **validation, checkpoints, tracking, the saved model** — rank 0 only; the metric and every stop
  decision (patience, time budget) are broadcast so the ranks stop together.

Multi-node runs use torchrun's rendezvous (see docs/scale.md); only single-node runs were tested here.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

BUCKET_BYTES = 25 * 2**20  # DDP's default bucket size
WORKER_ENV = "TORCHELASTIC_RUN_ID"  # set by torchrun in every process it starts


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def init(backend: str | None = None) -> bool:
    """Join the process group named by the environment (once); True when running distributed."""
    if env_world_size() <= 1:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if backend is None:
            backend = (
                "nccl" if torch.cuda.is_available() and os.environ.get("CHRONOREC_DDP_BACKEND") != "gloo" else "gloo"
            )
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return True


def active() -> bool:
    return init()


def rank() -> int:
    if not active():
        return 0
    import torch.distributed as dist

    return dist.get_rank()


def world_size() -> int:
    if not active():
        return 1
    import torch.distributed as dist

    return dist.get_world_size()


def is_main() -> bool:
    """Whether this process writes checkpoints, validates and saves (rank 0, or not distributed)."""
    return rank() == 0


def shard_rows(n: int, r: int, w: int):
    """Rows of a batch of ``n`` that rank ``r`` of ``w`` trains on (padded by repetition when n < w)."""
    import numpy as np

    rows = np.arange(r, n, w)
    return rows if len(rows) else np.array([r % max(n, 1)])


def shard_batch(batch: Any, r: int, w: int, n: int | None = None) -> Any:
    """This rank's rows of every tensor / array in ``batch`` whose first dimension is the batch's."""
    import numpy as np
    import torch

    if n is None:
        n = _batch_rows(batch)
        if n is None:
            return batch
    if isinstance(batch, torch.Tensor | np.ndarray) and batch.ndim and batch.shape[0] == n:
        rows = shard_rows(n, r, w)
        return batch[torch.from_numpy(rows)] if isinstance(batch, torch.Tensor) else batch[rows]
    if isinstance(batch, dict):
        return {k: shard_batch(v, r, w, n) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(shard_batch(v, r, w, n) for v in batch)
    return batch


def _batch_rows(batch: Any) -> int | None:
    """Rows of a batch: the first dimension of its first tensor (``items`` for the sequence models)."""
    import numpy as np
    import torch

    if isinstance(batch, torch.Tensor | np.ndarray):
        return int(batch.shape[0]) if batch.ndim else None
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, list | tuple) else ()
    for v in values:
        n = _batch_rows(v)
        if n is not None:
            return n
    return None


def shard_batches(batches: Iterable[Any]) -> Iterable[Any]:
    """Each global batch cut to this rank's rows (the batches themselves when not distributed)."""
    if not active():
        return batches
    r, w = rank(), world_size()
    return (shard_batch(b, r, w) for b in batches)


def all_reduce_gradients(module: Any, bucket_bytes: int = BUCKET_BYTES) -> None:
    """Average the gradients of ``module`` over the ranks (missing gradients count as zeros)."""
    if not active():
        return
    import torch
    import torch.distributed as dist

    w = dist.get_world_size()
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    for bucket in _buckets(params, bucket_bytes):
        grads = [p.grad for p in bucket]
        flat = torch.cat([g.reshape(-1) for g in grads]) if len(grads) > 1 else grads[0].reshape(-1)
        dist.all_reduce(flat)
        flat.div_(w)
        if len(grads) > 1:
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()
        elif flat.data_ptr() != grads[0].data_ptr():
            grads[0].copy_(flat.view_as(grads[0]))


def _buckets(params: list, bucket_bytes: int) -> Iterator[list]:
    bucket, size = [], 0
    for p in params:
        nbytes = p.numel() * p.element_size()
        if bucket and (size + nbytes > bucket_bytes or p.dtype != bucket[0].dtype or p.device != bucket[0].device):
            yield bucket
            bucket, size = [], 0
        bucket.append(p)
        size += nbytes
    if bucket:
        yield bucket


def broadcast_float(value: float | None) -> float | None:
    """Rank 0's ``value`` on every rank (None travels as NaN)."""
    if not active():
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([math.nan if value is None else float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, src=0)
    out = float(t.item())
    return None if math.isnan(out) else out


def on_main(fn: Callable[[], float]) -> float:
    """``fn()`` run on rank 0 only (validation), its value broadcast to every rank."""
    if not active():
        return float(fn())
    value = float(fn()) if is_main() else None
    out = broadcast_float(value)
    return math.nan if out is None else out


def agree(flag: bool) -> bool:
    """True on every rank when it is True on any (a stop decision all ranks take together)."""
    if not active():
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier() -> None:
    if active():
        import torch.distributed as dist

        dist.barrier()


def shutdown() -> None:
    """Leave the process group (at the end of a distributed command)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def in_worker() -> bool:
    """Whether this process was started by torchrun (so it must not start torchrun again)."""
    return WORKER_ENV in os.environ or "LOCAL_RANK" in os.environ


def launch(args: list[str], nproc_per_node: int, *, nnodes: str = "1", rdzv_endpoint: str | None = None) -> None:
    """Run ``python -m chronorec <args>`` in ``nproc_per_node`` processes under torchrun (standalone on
    one node, or joining ``rdzv_endpoint`` with ``nnodes``); raise ChronorecError if a process fails."""
    from torch.distributed.run import get_args_parser, run

    from chronorec.errors import ChronorecError

    targs = ["--nproc-per-node", str(nproc_per_node), "--nnodes", str(nnodes)]
    targs += ["--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint] if rdzv_endpoint else ["--standalone"]
    # torchrun gives each worker OMP_NUM_THREADS=1 unless set: share the cores among the ranks instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc_per_node)))
    try:
        run(get_args_parser().parse_args([*targs, "-m", "chronorec", *args]))
    except Exception as e:  # torch's ChildFailedError names the failed rank and its exit code
        raise ChronorecError(f"distributed training failed: {str(e).strip().splitlines()[0] if str(e) else e}") from e


def strip_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE`` (the launcher's own option)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


def command_args() -> list[str]:
    """This process's command-line arguments after the program (what the workers are started with)."""
    return list(sys.argv[1:])


__all__ = [
    "active",
    "agree",
    "all_reduce_gradients",
    "barrier",
    "broadcast_float",
    "in_worker",
    "init",
    "is_main",
    "launch",
    "on_main",
    "rank",
    "shard_batch",
    "shard_batches",
    "shutdown",
    "strip_option",
    "world_size",
]
