"""Load test of ``chronorec serve`` (127.0.0.1 only, bounded in requests and time) and batch timing.

Starts the service as a subprocess on a free local port, then:

1. **fixed rate** -- open loop at ``--rate`` requests/s for ``--duration`` s (``POST /recommend`` by
   user id, k=10, with explanations; one request in ten sends an explicit history instead);
   reports p50/p95/p99/max latency (from the actual send and from the scheduled send time, so
   a falling-behind client cannot hide queueing) and errors;
2. **saturation** -- closed loop with ``--concurrency`` levels for ``--saturation-duration`` s each;
   reports the throughput (completed requests/s) and latency at each level, and the maximum;
3. **batch** -- top-10 for every user of the model, in-process, through ``chronorec.recommend.pipeline``
   (the path of ``chronorec recommend --users-file``) and through ``Recommender.recommend``.

Writes ``<out-dir>/serving.json`` and ``<out-dir>/serving.md`` with the command and the machine.
The client runs on the same machine as the server, so it competes for the same cores.

    python benchmarks/load_test.py --model runs/models/sasrec-ml1m --rate 200 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HOST = "127.0.0.1"  # never anything else


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentiles(lat_s: list[float]) -> dict[str, float]:
    if not lat_s:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    a = np.asarray(lat_s) * 1000
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "mean_ms": float(a.mean()),
    }


class Bodies:
    """Request bodies: known users by id, and every tenth an explicit history of 20 known items."""

    def __init__(self, users: list[Any], items: list[Any], k: int, seed: int = 0):
        self.users, self.items, self.k = users, items, k
        self.rng = random.Random(seed)

    def next(self) -> dict[str, Any]:
        if self.rng.random() < 0.1:
            return {"history": self.rng.sample(self.items, min(20, len(self.items))), "k": self.k}
        return {"user_id": self.rng.choice(self.users), "k": self.k}


async def fixed_rate(client, bodies: Bodies, rate: float, duration: float, max_requests: int, timeout: float) -> dict:
    n = int(min(max_requests, rate * duration))
    lat_send: list[float] = []
    lat_sched: list[float] = []
    errors: dict[str, int] = {}
    t0 = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        body = bodies.next()
        sched = t0 + i / rate
        now = time.perf_counter()
        if sched > now:
            await asyncio.sleep(sched - now)
        start = time.perf_counter()
        try:
            r = await client.post("/recommend", json=body, timeout=timeout)
            end = time.perf_counter()
            if r.status_code != 200:
                errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                return
            lat_send.append(end - start)
            lat_sched.append(end - sched)
        except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the run
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=duration + 30 + timeout)
    elapsed = time.perf_counter() - t0
    return {
        "target_rps": rate,
        "duration_s": duration,
        "requests": n,
        "ok": len(lat_send),
        "errors": errors,
        "n_errors": int(sum(errors.values())),
        "achieved_rps": len(lat_send) / elapsed if elapsed > 0 else 0.0,
        "latency_from_send": percentiles(lat_send),
        "latency_from_schedule": percentiles(lat_sched),
    }


async def closed_loop(client, bodies: Bodies, concurrency: int, duration: float, max_requests: int, timeout: float):
    lat: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + duration
    budget = {"left": max_requests}

    async def worker() -> None:
        while time.perf_counter() < deadline and budget["left"] > 0:
            budget["left"] -= 1
            start = time.perf_counter()
            try:
                r = await client.post("/recommend", json=bodies.next(), timeout=timeout)
                if r.status_code == 200:
                    lat.append(time.perf_counter() - start)
                else:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
            except Exception as e:  # noqa: BLE001
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=duration + 30 + timeout)
    elapsed = time.perf_counter() - t0
    return {
        "concurrency": concurrency,
        "duration_s": round(elapsed, 3),
        "ok": len(lat),
        "n_errors": int(sum(errors.values())),
        "errors": errors,
        "throughput_rps": len(lat) / elapsed if elapsed > 0 else 0.0,
        "latency": percentiles(lat),
    }


async def run_http(args, users: list[Any], items: list[Any], port: int) -> dict[str, Any]:
    import httpx

    bodies = Bodies(users, items, args.k, seed=args.seed)
    limits = httpx.Limits(max_connections=max(64, max(args.concurrency)), max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", limits=limits) as client:
        for _ in range(args.warmup):  # warm-up, not measured
            await client.post("/recommend", json=bodies.next(), timeout=args.timeout)
        out: dict[str, Any] = {}
        if args.duration > 0:
            print(f"fixed rate: {args.rate} rps for {args.duration} s ...", flush=True)
            out["fixed_rate"] = await fixed_rate(
                client, bodies, args.rate, args.duration, args.max_requests, args.timeout
            )
            fr = out["fixed_rate"]
            print(
                f"  ok {fr['ok']}/{fr['requests']}, errors {fr['n_errors']}, "
                f"p50 {fr['latency_from_send']['p50_ms']:.2f} ms, p99 {fr['latency_from_send']['p99_ms']:.2f} ms",
                flush=True,
            )
        sat = []
        for c in args.concurrency:
            if args.saturation_duration <= 0:
                break
            print(f"saturation: {c} concurrent clients for {args.saturation_duration} s ...", flush=True)
            res = await closed_loop(client, bodies, c, args.saturation_duration, args.max_requests, args.timeout)
            print(f"  {res['throughput_rps']:.0f} rps, p99 {res['latency']['p99_ms']:.2f} ms", flush=True)
            sat.append(res)
        if sat:
            out["saturation"] = sat
            out["max_throughput_rps"] = max(s["throughput_rps"] for s in sat)
        metrics = (await client.get("/metrics")).text
        out["server_metrics_excerpt"] = [
            line for line in metrics.splitlines() if line.startswith(("chronorec_model_info", "chronorec_requests"))
        ]
    return out


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            r = httpx.get(f"http://{HOST}:{port}/health", timeout=1.0)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"the server did not answer /health within {timeout} s")


def batch_timing(model_dir: str, k: int, threads: int | None) -> dict[str, Any]:
    import torch

    from chronorec.models.registry import load
    from chronorec.recommend import RecommendOptions, RecommendPipeline

    if threads:
        torch.set_num_threads(threads)
    model = load(model_dir)
    users = model.users.external_ids.tolist()
    t0 = time.perf_counter()
    pipe = RecommendPipeline(model)
    recs = pipe.recommend(users, options=RecommendOptions(k=k))
    t_pipe = time.perf_counter() - t0
    t1 = time.perf_counter()
    lib = model.recommend(users, k=k)
    t_lib = time.perf_counter() - t1
    return {
        "n_users": len(users),
        "k": k,
        "torch_threads": torch.get_num_threads(),
        "pipeline_seconds": t_pipe,
        "library_seconds": t_lib,
        "rows": len(recs),
        "same_items_as_library": bool((recs["item_id"].to_numpy() == lib["item_id"].to_numpy()).mean() > 0.999),
        "share_same_items_as_library": float((recs["item_id"].to_numpy() == lib["item_id"].to_numpy()).mean()),
    }


def markdown(result: dict[str, Any]) -> str:
    p = result["provenance"]
    m = p["machine"]
    lines = [
        "# Serving benchmark",
        "",
        f"- command: `{p['command']}`",
        f"- model: `{result['model_dir']}` ({result['health'].get('model_version')}, "
        f"{result['health'].get('n_items')} items, {result['health'].get('n_users')} users)",
        f"- machine: {m['platform']}, {m['cpu_count']} CPUs, python {m['python']}, torch {m['torch']}; "
        f"server: 1 uvicorn worker, {result['server_threads']} torch thread(s); client on the same machine",
        f"- git commit: {p.get('git_commit')}, started {p['started_at']}",
        "",
    ]
    fr = result.get("fixed_rate")
    if fr:
        s, q = fr["latency_from_send"], fr["latency_from_schedule"]
        lines += [
            f"## Fixed rate: {fr['target_rps']} requests/s for {fr['duration_s']} s",
            "",
            "| measured from | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---|---|---|---|",
            f"| send | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} | {s['p99_ms']:.2f} | {s['max_ms']:.2f} |",
            f"| schedule | {q['p50_ms']:.2f} | {q['p95_ms']:.2f} | {q['p99_ms']:.2f} | {q['max_ms']:.2f} |",
            "",
            f"{fr['ok']} of {fr['requests']} requests answered 200, {fr['n_errors']} errors {fr['errors'] or ''}; "
            f"achieved {fr['achieved_rps']:.1f} requests/s.",
            "",
        ]
    if result.get("saturation"):
        lines += [
            "## Saturation (closed loop)",
            "",
            "| concurrency | throughput rps | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|",
        ]
        for s in result["saturation"]:
            lat = s["latency"]
            lines.append(
                f"| {s['concurrency']} | {s['throughput_rps']:.1f} | {lat['p50_ms']:.2f} | {lat['p99_ms']:.2f} | "
                f"{s['n_errors']} |"
            )
        lines += ["", f"Maximum throughput: **{result['max_throughput_rps']:.1f} requests/s**.", ""]
    b = result.get("batch")
    if b:
        lines += [
            "## Batch top-10 for every user (in-process)",
            "",
            f"- {b['n_users']} users, k={b['k']}, {b['torch_threads']} torch threads",
            f"- `chronorec.recommend.pipeline` pipeline (the `chronorec recommend --users-file` path): "
            f"**{b['pipeline_seconds']:.2f} s**",
            f"- `Recommender.recommend`: {b['library_seconds']:.2f} s; same items in "
            f"{100 * b['share_same_items_as_library']:.2f}% of the rows",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Saved model folder (e.g. an ML-1M SASRec).")
    ap.add_argument("--rate", type=float, default=200.0, help="Fixed rate, requests/s.")
    ap.add_argument("--duration", type=float, default=60.0, help="Fixed-rate duration, s (0 = skip).")
    ap.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 4, 16], help="Saturation: closed-loop client counts."
    )
    ap.add_argument("--saturation-duration", type=float, default=15.0, help="Seconds per concurrency level (0 = skip).")
    ap.add_argument("--max-requests", type=int, default=20_000, help="Hard cap on requests per phase.")
    ap.add_argument("--warmup", type=int, default=50, help="Unmeasured requests first.")
    ap.add_argument("--timeout", type=float, default=5.0, help="Per-request timeout, s.")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--server-threads", type=int, default=1, help="torch threads of the server.")
    ap.add_argument("--batch-threads", type=int, default=None, help="torch threads of the batch run.")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--name", default="serving", help="Output file stem.")
    args = ap.parse_args(argv)

    from chronorec.models.registry import load
    from chronorec.workflows.experiment import provenance

    model = load(args.model)
    users = [u.item() if hasattr(u, "item") else u for u in model.users.external_ids.tolist()]
    items = [i.item() if hasattr(i, "item") else i for i in model.items.external_ids.tolist()]
    del model
    result: dict[str, Any] = {"model_dir": str(args.model), "server_threads": args.server_threads, "health": {}}
    result["provenance"] = provenance()
    if not args.skip_http:
        port = free_port()
        state = tempfile.mkdtemp(prefix="chronorec-load-")
        cmd = [
            sys.executable,
            "-m",
            "chronorec",
            "serve",
            "--model",
            str(args.model),
            "--host",
            HOST,
            "--port",
            str(port),
            "--state-dir",
            state,
            "--threads",
            str(args.server_threads),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
        try:
            result["health"] = wait_healthy(port, proc, timeout=120)
            result["server_command"] = " ".join(cmd)
            result.update(asyncio.run(run_http(args, users, items, port)))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(state, ignore_errors=True)
    if not args.skip_batch:
        print("batch: top-10 for every user ...", flush=True)
        result["batch"] = batch_timing(args.model, args.k, args.batch_threads)
        print(f"  pipeline {result['batch']['pipeline_seconds']:.2f} s", flush=True)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2, default=str))
    (out / f"{args.name}.md").write_text(markdown(result))
    print(f"wrote {out / (args.name + '.json')} and {out / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
