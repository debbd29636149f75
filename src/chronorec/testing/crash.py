"""Crash safety: kill -9 a process at random moments while it writes, then check what survived
(the harness of ``benchmarks/crash.py`` and ``tests/reliability/test_crash.py``).

Three write paths, each written by a child process (``python -m chronorec.testing.crash PATH ROOT``)
in a loop until the parent kills it with SIGKILL after a random delay: ``model`` (saves over an
existing model folder), ``checkpoint`` (training checkpoints) and ``events`` (batches of live events
with an Idempotency-Key); :func:`run_path` runs the kills of one path and checks each survivor
(``benchmarks/crash.py`` says what each check requires).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 25


# ---------------------------------------------------------------------- the writers (run in the child)
def toy_models(root: Path) -> list[Any]:
    """Two versions of a model whose saves take long enough to be killed in the middle."""
    from chronorec.data.eventlog import EventLog
    from chronorec.models.baselines.popular import MostPopular

    out = []
    for seed, n in ((0, 3000), (1, 4000)):
        rng = np.random.default_rng(seed)
        seqs = {u: rng.integers(1, 500, size=int(rng.integers(5, 60))).tolist() for u in range(n)}
        out.append(MostPopular().fit(EventLog.from_sequences(seqs)))
    return out


def model_writer(root: Path, ctx: dict[str, Any], report: Callable[[int], None]) -> None:
    models = ctx["models"]
    for i in range(10**9):
        models[i % 2].save(root / "model")
        report(i + 1)


def toy_module() -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Embedding(4000, 64), torch.nn.Linear(64, 64))


def checkpoint_writer(root: Path, ctx: dict[str, Any], report: Callable[[int], None]) -> None:
    import torch

    from chronorec.training import checkpoint as ck

    module, opt = ctx["module"], ctx["opt"]
    for epoch in range(ctx["epoch"] + 1, 10**9):
        with torch.no_grad():
            for p in module.parameters():
                p.fill_(float(epoch))
        state = ck.Checkpoint(epoch=epoch, best_epoch=epoch, best_metric=float(epoch), bad_epochs=0, train_seconds=1.0)
        ck.save(root / "ck", module, ck.module_tensors(module), opt, state)
        report(epoch)


def events_writer(root: Path, ctx: dict[str, Any], report: Callable[[int], None]) -> None:
    store = ctx["store"]
    for b in range(len(store) // BATCH, 10**9):
        rows = [{"user_id": b, "item_id": j, "timestamp": 1_700_000_000 + j} for j in range(BATCH)]
        store.append(rows, idempotency=(f"batch-{b}", "digest"))
        report(b + 1)


# ---------------------------------------------------------------------- set-up and checks (in the parent)
def model_setup(root: Path) -> dict[str, Any]:
    models = toy_models(root)
    t0 = time.perf_counter()
    models[1].save(root / "model")
    write_s = time.perf_counter() - t0
    (root / "model" / "live").mkdir()
    (root / "model" / "live" / "events.sqlite").write_bytes(b"live state")
    digests = []
    for m in models:
        m.save(root / "probe")
        digests.append(json.loads((root / "probe" / "manifest.json").read_text())["files"]["model.safetensors"])
    shutil.rmtree(root / "probe")
    return {"digests": digests, "models": models, "write_s": write_s}


def model_check(root: Path, ctx: dict[str, Any], reported: int) -> str | None:
    from chronorec.models.registry import load

    d = root / "model"
    try:
        load(d)
    except Exception as e:  # noqa: BLE001 - any failure to load is a lost model
        return f"unloadable: {type(e).__name__}: {e}"
    manifest = json.loads((d / "manifest.json").read_text())
    if manifest["files"].get("model.safetensors") not in ctx["digests"]:
        return "neither version"
    files = {p.name for p in d.iterdir() if p.is_file() and p.name != "manifest.json"}
    if files != set(manifest["files"]):
        return f"files not in the manifest: {sorted(files ^ set(manifest['files']))}"
    if (d / "live" / "events.sqlite").read_bytes() != b"live state" if (d / "live").is_dir() else True:
        return "the live/ state folder was lost"
    return None


def checkpoint_setup(root: Path) -> dict[str, Any]:
    import torch

    from chronorec.training import checkpoint as ck

    module = toy_module()
    opt = torch.optim.AdamW(module.parameters())
    times = []
    for _ in range(3):  # the first write also pays for imports
        t0 = time.perf_counter()
        ck.save(root / "probe", module, ck.module_tensors(module), opt, ck.Checkpoint(0, 0, 0.0, 0, 0.0))
        times.append(time.perf_counter() - t0)
    write_s = float(np.median(times[1:]))
    shutil.rmtree(root / "probe")
    return {"write_s": write_s}


def checkpoint_check(root: Path, ctx: dict[str, Any], reported: int) -> str | None:
    import torch

    from chronorec.training import checkpoint as ck

    if not ck.exists(root / "ck"):
        return None if reported == 0 else f"no checkpoint after {reported} were written"
    module = toy_module()
    try:
        state, best = ck.load(root / "ck", module, torch.optim.AdamW(module.parameters()))
    except Exception as e:  # noqa: BLE001
        return f"cannot resume: {type(e).__name__}: {e}"
    values = {float(v.flatten()[0]) for v in [*module.state_dict().values(), *best.values()]}
    if values != {float(state.epoch)}:
        return f"progress says epoch {state.epoch}, weights hold {sorted(values)}"
    if state.epoch < reported:
        return f"epoch {reported} was written, the checkpoint holds {state.epoch}"
    return None


def events_setup(root: Path) -> dict[str, Any]:
    from chronorec.serving.store import LiveEventStore

    store = LiveEventStore(root / "probe")
    t0 = time.perf_counter()
    store.append([{"user_id": 0, "item_id": j, "timestamp": 1} for j in range(BATCH)], idempotency=("k", "d"))
    write_s = time.perf_counter() - t0
    store.close()
    shutil.rmtree(root / "probe")
    return {"write_s": write_s}


def events_check(root: Path, ctx: dict[str, Any], reported: int) -> str | None:
    from chronorec.serving.store import LiveEventStore, Replayed

    store = LiveEventStore(root / "live")
    try:
        n = len(store)
        if n % BATCH:
            return f"{n} events stored: a batch was stored in part"
        if n // BATCH < reported:
            return f"{reported} batches acknowledged, {n // BATCH} stored"
        b = n // BATCH  # the next batch, sent again with its key (a client's retry)
        rows = [{"user_id": b, "item_id": j, "timestamp": 1_700_000_000 + j} for j in range(BATCH)]
        for _ in range(2):
            try:
                store.append(rows, idempotency=(f"batch-{b}", "digest"))
            except Replayed:
                pass
        if len(store) != n + BATCH:
            return f"a retried batch was stored {(len(store) - n) / BATCH:g} times"
        users = [e["user_id"] for e in store]
        if users != sorted(users) or len(set(users)) != b + 1:
            return "batches duplicated or out of order"
    finally:
        store.close()
    return None


PATHS = {
    "model": (model_setup, model_writer, model_check),
    "checkpoint": (checkpoint_setup, checkpoint_writer, checkpoint_check),
    "events": (events_setup, events_writer, events_check),
}


# ---------------------------------------------------------------------- kill loop
def child_context(path: str, root: Path) -> dict[str, Any]:
    """What the writer needs, prepared before it reports ready (so the kill falls in the writes)."""
    if path == "model":
        return {"models": toy_models(root)}
    if path == "checkpoint":
        import torch

        from chronorec.training import checkpoint as ck

        module = toy_module()
        opt = torch.optim.AdamW(module.parameters())
        epoch = ck.saved_epoch(root / "ck") or 0
        return {"module": module, "opt": opt, "epoch": epoch}
    from chronorec.serving.store import LiveEventStore

    return {"store": LiveEventStore(root / "live")}


def child(path: str, root: Path) -> None:
    """The writer process: prepare, say ``ready``, then write and report each completed write."""
    ctx = child_context(path, root)
    print("ready", flush=True)
    PATHS[path][1](root, ctx, lambda n: print(n, flush=True))


def kill_once(path: str, root: Path, ctx: dict[str, Any], delay: float) -> dict[str, Any]:
    """Start a writer process, kill -9 it ``delay`` seconds after it is ready, check the survivor."""
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "chronorec.testing.crash", path, str(root)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    first = p.stdout.readline().strip()
    if first != "ready":
        p.kill()
        raise RuntimeError(f"the {path} writer did not start (said {first!r})")
    time.sleep(delay)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    lines = p.stdout.read().split()
    p.stdout.close()
    reported = int(lines[-1]) if lines else 0
    failure = PATHS[path][2](root, ctx, reported)
    return {"delay_s": round(delay, 4), "writes_completed": reported, "survived": failure is None, "failure": failure}


def run_path(path: str, kills: int, seed: int, root: Path, writes: float = 3.0) -> dict[str, Any]:
    """``kills`` kills of the ``path`` writer, each after uniform(0, ``writes`` x one write's time)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    ctx = PATHS[path][0](root)
    window = max(writes * ctx["write_s"], 0.05)
    results = [kill_once(path, root, ctx, rng.uniform(0.0, window)) for _ in range(kills)]
    return {
        "kills": kills,
        "one_write_s": round(ctx["write_s"], 4),
        "kill_window_s": round(window, 4),
        "survivors": sum(r["survived"] for r in results),
        "failures": [r for r in results if not r["survived"]],
        "mean_writes_before_kill": float(np.mean([r["writes_completed"] for r in results])),
        "results": results,
    }


if __name__ == "__main__":
    child(sys.argv[1], Path(sys.argv[2]))
