"""Load test of ``chronorec serve`` (127.0.0.1 only, bounded in requests and time) and batch timing.

For each server variant (``--variants name:max_batch[:threads[:query_cache]]``, e.g. ``unbatched:1
batched:64 nocache:64:1:0``, plus
``--baseline-commit REV``: the service as it was at a git revision, run from ``git archive``), one
after the other on a free local port:

1. **closed loop** -- ``--clients`` concurrent clients (default 1 and 4), each sending its next
   request when the last is answered, for ``--closed-duration`` s: throughput (answered
   requests/s: the saturation throughput at 4 clients), p50/p99 latency;
2. **open loop** -- ``--rate`` requests/s (default 200) on schedule for ``--duration`` s whatever
   the answers: achieved rate, p50/p99 from the scheduled send time (a falling-behind service
   cannot hide queueing). Requests still unanswered ``--grace`` s after the last one was due are
   counted as ``unanswered``, never raised: the report says the service fell behind.

Every request is ``POST /recommend`` by user id with k=10 (explanations on, the service's
default); one in ten sends an explicit history of 20 items instead. The client is a small
keep-alive HTTP/1.1 client on asyncio streams (cheaper than httpx, so it takes less of the
cores it shares with the server). 503 answers (overload) are counted apart from errors.

3. **batch** -- top-10 for every user, in-process, through the ``chronorec recommend
   --users-file`` path (``cli.recommend.by_history_length``) and through the evaluation pass
   (``evaluate_ranking`` over the same users' full histories), timed in the same run.

Writes ``<out-dir>/<name>.json`` and ``.md`` with the command and the machine. Ratios between
variants of one run are the figures to compare (the machine may be shared).

    python benchmarks/load_test.py --model runs/models/sasrec-ml1m --baseline-commit 4ee076c
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
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.testing.load import HOST, parse_variants
from chronorec.testing.load import server_command as serve_command

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentiles(lat_s: list[float]) -> dict[str, float | None]:
    if not lat_s:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    a = np.asarray(lat_s) * 1000
    q = np.percentile(a, [50, 95, 99])
    return {"p50_ms": q[0], "p95_ms": q[1], "p99_ms": q[2], "max_ms": a.max(), "mean_ms": a.mean()}


class Bodies:
    """Request bodies (JSON bytes): known users by id, and every tenth an explicit history of 20 known items."""

    def __init__(self, users: list[Any], items: list[Any], k: int, seed: int = 0):
        self.users, self.items, self.k = users, items, k
        self.rng = random.Random(seed)

    def next(self) -> bytes:
        if self.rng.random() < 0.1:
            body = {"history": self.rng.sample(self.items, min(20, len(self.items))), "k": self.k}
        else:
            body = {"user_id": self.rng.choice(self.users), "k": self.k}
        return json.dumps(body).encode()


class Client:
    """Keep-alive HTTP/1.1 connections to one port; ``post`` returns the status (answers are read, not parsed)."""

    def __init__(self, port: int, timeout: float, max_connections: int = 1000):
        self.port, self.timeout = port, timeout
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0
        self.slots = asyncio.Semaphore(max_connections)

    async def post(self, path: str, body: bytes) -> int:
        async with self.slots:  # a request waits for a connection once max_connections are busy
            return await self._post(path, body)

    async def _post(self, path: str, body: bytes) -> int:
        head = f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        while True:
            reused = bool(self.idle)
            if reused:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(HOST, self.port)
                self.opened += 1
            writer.write(request)
            try:
                status, length = await asyncio.wait_for(self._head(reader), self.timeout)
                await asyncio.wait_for(reader.readexactly(length), self.timeout)
            except ConnectionError:
                writer.close()
                if reused:
                    continue  # the server closed an idle keep-alive connection: send again on a new one
                raise
            except BaseException:
                writer.close()  # a connection in an unknown state is never reused
                raise
            self.idle.append((reader, writer))
            return status

    @staticmethod
    async def _head(reader: asyncio.StreamReader) -> tuple[int, int]:
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("the server closed the connection")
        status = int(line.split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, length

    def close(self) -> None:
        for _, w in self.idle:
            w.close()
        self.idle.clear()


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (all its threads; 0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _with_cpu(res: dict[str, Any], server: int, before: tuple[float, float]) -> dict[str, Any]:
    """CPU ms per answered request of the server and of this client: robust where wall time is shared."""
    n = max(res["ok"], 1)
    res["server_cpu_ms_per_request"] = (cpu_seconds(server) - before[0]) * 1000 / n
    res["client_cpu_ms_per_request"] = (cpu_seconds(None) - before[1]) * 1000 / n
    return res


def _count(outcomes: dict[str, int], key: str) -> None:
    outcomes[key] = outcomes.get(key, 0) + 1


async def _send(client: Client, body: bytes, outcomes: dict[str, int]) -> bool:
    """One request; its outcome counted (``200``, ``503``, another status, or the exception's name)."""
    try:
        status = await client.post("/recommend", body)
    except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the run
        _count(outcomes, "timeout" if isinstance(e, asyncio.TimeoutError) else type(e).__name__)
        return False
    _count(outcomes, str(status))
    return status == 200


async def closed_loop(port: int, bodies: Bodies, clients: int, duration: float, timeout: float) -> dict[str, Any]:
    """``clients`` concurrent clients, each sending its next request once the last is answered."""
    lat: list[float] = []
    outcomes: dict[str, int] = {}
    client = Client(port, timeout)
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            if await _send(client, bodies.next(), outcomes):
                lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    client.close()
    return {
        "clients": clients,
        "seconds": round(elapsed, 3),
        "ok": len(lat),
        "outcomes": outcomes,
        "throughput_rps": len(lat) / elapsed,
        "latency": percentiles(lat),
    }


async def open_loop(
    port: int, bodies: Bodies, rate: float, duration: float, timeout: float, grace: float
) -> dict[str, Any]:
    """``rate`` requests/s on schedule; unanswered ones are counted after ``grace`` s, not raised."""
    n = int(rate * duration)
    lat_sched: list[float] = []
    last = [0.0]
    outcomes: dict[str, int] = {}
    client = Client(port, timeout)
    t0 = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        sched = t0 + i / rate
        await asyncio.sleep(max(0.0, sched - time.perf_counter()))
        if await _send(client, bodies.next(), outcomes):
            last[0] = time.perf_counter()
            lat_sched.append(last[0] - sched)

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    _, pending = await asyncio.wait(tasks, timeout=duration + grace + 0.05)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        outcomes["unanswered"] = len(pending)
    client.close()
    achieved = len(lat_sched) / max(last[0] - t0, 1e-9)  # answered per second, first send to last answer
    return {
        "target_rps": rate,
        "duration_s": duration,
        "requests": n,
        "ok": len(lat_sched),
        "outcomes": outcomes,
        "achieved_rps": achieved,
        "fell_behind": bool(pending) or len(lat_sched) < 0.99 * n or achieved < 0.95 * rate,
        "connections": client.opened,
        "latency_from_schedule": percentiles(lat_sched),
    }


def wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout: float) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1.0) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"the server did not answer /health within {timeout} s")


def server_command(args, variant: dict[str, Any], port: int, state: str) -> list[str]:
    return serve_command(args.model, variant, port, state, max_wait_ms=args.max_wait_ms)


async def _phases(args, port: int, pid: int, users: list[Any], items: list[Any]) -> dict[str, Any]:
    bodies = Bodies(users, items, args.k, seed=args.seed)
    warm = Client(port, args.timeout)
    for _ in range(args.warmup):
        await _send(warm, bodies.next(), {})
    warm.close()
    out: dict[str, Any] = {"closed_loop": []}
    for c in args.clients:
        before = (cpu_seconds(pid), cpu_seconds(None))
        res = _with_cpu(await closed_loop(port, bodies, c, args.closed_duration, args.timeout), pid, before)
        print(
            f"  closed loop, {c} client(s): {res['throughput_rps']:.0f} rps, p99 {_f(res['latency']['p99_ms'])} ms, "
            f"server CPU {res['server_cpu_ms_per_request']:.2f} ms/request",
            flush=True,
        )
        out["closed_loop"].append(res)
    if args.duration > 0:
        before = (cpu_seconds(pid), cpu_seconds(None))
        res = await open_loop(port, bodies, args.rate, args.duration, args.timeout, args.grace)
        res = _with_cpu(res, pid, before)
        print(
            f"  open loop {args.rate} rps: achieved {res['achieved_rps']:.1f}, p99 "
            f"{_f(res['latency_from_schedule']['p99_ms'])} ms, outcomes {res['outcomes']}",
            flush=True,
        )
        out["open_loop"] = res
    return out


def run_variant(args, variant: dict[str, Any], users: list[Any], items: list[Any]) -> dict[str, Any]:
    """Start the server of one variant, run the phases, stop it; a failure is reported, not raised."""
    port = free_port()
    state = tempfile.mkdtemp(prefix="chronorec-load-")
    cmd = server_command(args, variant, port, state)
    env = dict(os.environ)
    if variant.get("pythonpath"):
        env["PYTHONPATH"] = variant["pythonpath"]
    print(f"{variant['name']}: {' '.join(cmd[1:])}", flush=True)
    log = open(Path(state) / "server.log", "wb")  # noqa: SIM115 - closed below; a pipe could fill and stall it
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    out: dict[str, Any] = {**variant, "server_command": " ".join(cmd)}
    try:
        out["health"] = wait_healthy(port, proc, Path(state) / "server.log", timeout=180)
        out.update(asyncio.run(_phases(args, port, proc.pid, users, items)))
        out["query_cache"] = wait_healthy(port, proc, Path(state) / "server.log", timeout=30).get("query_cache")
    except Exception as e:  # noqa: BLE001 - one variant failing still leaves a report
        out["error"] = f"{type(e).__name__}: {e}"
        print(f"  failed: {out['error']}", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(state, ignore_errors=True)
    return out


def batch_timing(model_dir: str, k: int, threads: int | None, rounds: int = 5) -> dict[str, Any]:
    """Top-k for every user: the ``recommend --users-file`` path and the evaluation pass, same process."""
    import torch

    from chronorec.cli.recommend import by_history_length
    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.evaluation.split import EvalSet
    from chronorec.models.registry import load
    from chronorec.recommend import RecommendOptions, RecommendPipeline

    if threads:
        torch.set_num_threads(threads)
    model = load(model_dir)
    users = model.users.external_ids.tolist()
    internal = model.users.to_internal(users)
    hist = [model.store.user_items(int(u)) for u in internal]
    evalset = EvalSet.build(internal, hist, [h[-1:] for h in hist], "all users, full histories")
    out: dict[str, Any] = {"n_users": len(users), "k": k, "torch_threads": torch.get_num_threads()}
    pipe = RecommendPipeline(model)

    def timed(key: str, fn: Any) -> Any:
        t, c = time.perf_counter(), time.process_time()
        res = fn()
        out.setdefault(f"{key}_seconds", []).append(time.perf_counter() - t)
        out.setdefault(f"{key}_cpu_seconds", []).append(time.process_time() - c)  # all threads of this process
        return res

    def users_file(calibrated: bool = False) -> Any:  # as `recommend --users-file [--calibrated]` does it
        lists = by_history_length(pipe, users, options=RecommendOptions(k=k), probabilities=calibrated)
        return pipe.to_frame(*lists, score="probability" if calibrated else "raw")

    jobs = {
        "evaluation": lambda: evaluate_ranking(model.score, evalset, n_items=model.n_items, ks=(k,)),
        "users_file_path": users_file,
        "users_file_calibrated": lambda: users_file(True),
    }
    for fn in jobs.values():  # warm-up, not timed: first calls allocate
        fn()
    for rep in range(rounds):  # interleaved, the order reversed every other round: the machine's load drifts
        for key in list(jobs) if rep % 2 == 0 else list(jobs)[::-1]:
            res = timed(key, jobs[key])
            if key == "users_file_path":
                recs = res
        if rep == 0:
            t = time.perf_counter()
            plain = pipe.to_frame(*pipe.recommend_lists(users, options=RecommendOptions(k=k)), score="raw")
            out["unsorted_pipeline_seconds"] = time.perf_counter() - t
            out["same_lists_as_unsorted"] = bool((plain["item_id"].to_numpy() == recs["item_id"].to_numpy()).all())
    out["rows"] = len(recs)
    for key in ("evaluation", "users_file_path", "users_file_calibrated"):
        for unit in ("seconds", "cpu_seconds"):
            out[f"{key}_{unit}_best"] = min(out[f"{key}_{unit}"])
            out[f"{key}_{unit}_median"] = float(np.median(out[f"{key}_{unit}"]))
    ev = np.asarray(out["evaluation_seconds"])  # ratios within a round, then their median: paired, so drift cancels
    out["users_file_over_evaluation_median"] = float(np.median(np.asarray(out["users_file_path_seconds"]) / ev))
    out["calibrated_over_evaluation_median"] = float(np.median(np.asarray(out["users_file_calibrated_seconds"]) / ev))
    out["users_file_over_evaluation"] = out["users_file_path_seconds_best"] / out["evaluation_seconds_best"]
    out["users_file_over_evaluation_cpu"] = out["users_file_path_cpu_seconds_best"] / out["evaluation_cpu_seconds_best"]
    return out


def baseline_tree(rev: str) -> str:
    """``src`` of the project at git revision ``rev``, exported to a temporary folder (its PYTHONPATH)."""
    d = Path(tempfile.mkdtemp(prefix="chronorec-baseline-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(d)], input=archive, check=True)
    return str(d / "src")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Saved model folder (e.g. an ML-1M SASRec).")
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["unbatched:1", "batched:64"],
        help="Servers as name:max_batch[:threads[:query_cache]] (query_cache: entries, 0 = off).",
    )
    ap.add_argument("--baseline-commit", default=None, help="Also serve the code of this git revision (PYTHONPATH).")
    ap.add_argument("--rounds", type=int, default=1, help="Run every variant this many times, interleaved.")
    ap.add_argument("--max-wait-ms", type=float, default=2.0, help="Batching wait bound of the batched variants.")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64], help="Closed-loop client counts.")
    ap.add_argument("--closed-duration", type=float, default=15.0, help="Seconds per closed-loop level.")
    ap.add_argument("--rate", type=float, default=200.0, help="Open-loop rate, requests/s.")
    ap.add_argument("--duration", type=float, default=30.0, help="Open-loop duration, s (0 = skip).")
    ap.add_argument("--grace", type=float, default=10.0, help="Open loop: s after the last send before giving up.")
    ap.add_argument("--timeout", type=float, default=10.0, help="Per-request timeout, s.")
    ap.add_argument("--warmup", type=int, default=50, help="Unmeasured requests first.")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--server-threads", type=int, default=1, help="torch threads of each server (default 1).")
    ap.add_argument("--batch-threads", type=int, default=None, help="torch threads of the batch timing.")
    ap.add_argument("--batch-rounds", type=int, default=5, help="interleaved rounds of the batch timing (medians).")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--name", default="serving", help="Output file stem.")
    return ap.parse_args(argv)


def variants(args) -> list[dict[str, Any]]:
    base = (args.baseline_commit, baseline_tree(args.baseline_commit)) if args.baseline_commit else None
    return parse_variants(args.variants, server_threads=args.server_threads, baseline=base)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from chronorec.models.registry import load
    from chronorec.workflows.experiment import provenance

    model = load(args.model)
    users = [u.item() if hasattr(u, "item") else u for u in model.users.external_ids.tolist()]
    items = [i.item() if hasattr(i, "item") else i for i in model.items.external_ids.tolist()]
    shape = {k: getattr(model.config, k, None) for k in ("max_len", "dim", "layers", "heads")}
    result: dict[str, Any] = {"model_dir": str(args.model), "kind": model.kind, "shape": shape}
    result["fit_info"] = {k: model.fit_info.get(k) for k in ("epochs_run", "train_seconds", "best_epoch")}
    result["settings"] = {k: v for k, v in vars(args).items() if k not in ("out_dir",)}
    result["provenance"] = provenance()
    del model
    if not args.skip_http:
        vs = variants(args)
        result["variants"] = [
            {**run_variant(args, v, users, items), "round": r} for r in range(args.rounds) for v in vs
        ]  # interleaved rounds: the machine's load drifts
        result["summary"] = summary(result["variants"])
        result["ratios"] = ratios(result["summary"])
    if not args.skip_batch:
        print("batch: top-10 for every user ...", flush=True)
        result["batch"] = batch_timing(args.model, args.k, args.batch_threads, args.batch_rounds)
        b = result["batch"]
        print(
            f"  medians: users-file path {b['users_file_path_seconds_median']:.2f} s, with --calibrated "
            f"{b['users_file_calibrated_seconds_median']:.2f} s, evaluation {b['evaluation_seconds_median']:.2f} s"
        )
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2, default=_json))
    (out / f"{args.name}.md").write_text(markdown(result))
    print(f"wrote {out / (args.name + '.json')} and {out / (args.name + '.md')}")
    return 0


def _json(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else str(v)


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant over its rounds: saturation throughput (best closed loop of any round: the least
    disturbed), one-client throughput (best), server CPU ms per request at the most clients (median)."""
    out: dict[str, dict[str, Any]] = {}
    for v in runs:
        if "closed_loop" not in v:
            continue
        s = out.setdefault(v["name"], {"saturation_rps": 0.0, "one_client_rps": 0.0, "cpu": []})
        s["saturation_rps"] = max(s["saturation_rps"], *(c["throughput_rps"] for c in v["closed_loop"]))
        s["one_client_rps"] = max(s["one_client_rps"], v["closed_loop"][0]["throughput_rps"])
        s["cpu"].append(v["closed_loop"][-1]["server_cpu_ms_per_request"])
    for s in out.values():
        s["server_cpu_ms_per_request"] = float(np.median(s.pop("cpu")))
    return out


def ratios(summ: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each variant against the first (the baseline): throughputs and server CPU per request."""
    names = list(summ)
    if len(names) < 2:
        return {}
    b = summ[names[0]]
    return {
        f"{n} / {names[0]}": {
            "saturation_throughput": summ[n]["saturation_rps"] / max(b["saturation_rps"], 1e-9),
            "one_client_throughput": summ[n]["one_client_rps"] / max(b["one_client_rps"], 1e-9),
            "server_cpu_per_request": summ[n]["server_cpu_ms_per_request"] / b["server_cpu_ms_per_request"],
        }
        for n in names[1:]
    }


def _f(x: Any, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def _variant_rows(v: dict[str, Any]) -> list[str]:
    """Table rows of one server run: its closed loops and its open loop."""
    head = f"| {v['name']} | {v.get('round', 0)} "
    if "closed_loop" not in v:
        return [head + f"| - | - | - | - | - | failed: {v.get('error')} |"]
    rows = []
    cache = v.get("query_cache")
    if isinstance(cache, dict):  # the service's query cache at the end of the run
        head = f"| {v['name']} (cache hits {cache['hits']:,} / misses {cache['misses']:,}) | {v.get('round', 0)} "
    for c in v["closed_loop"]:
        lat = c["latency"]
        rows.append(
            head + f"| {c['clients']} closed | {c['throughput_rps']:.1f} | {_f(lat['p50_ms'], '.2f')} | "
            f"{_f(lat['p99_ms'], '.2f')} | {c['server_cpu_ms_per_request']:.2f} | {c['outcomes']} |"
        )
    o = v.get("open_loop")
    if o:
        lat = o["latency_from_schedule"]
        behind = " (fell behind)" if o["fell_behind"] else ""
        rows.append(
            head + f"| {o['target_rps']:.0f}/s open | {o['achieved_rps']:.1f}{behind} | {_f(lat['p50_ms'], '.2f')} | "
            f"{_f(lat['p99_ms'], '.2f')} | {o['server_cpu_ms_per_request']:.2f} | {o['outcomes']} |"
        )
    return rows


def markdown(result: dict[str, Any]) -> str:
    p = result["provenance"]
    m = p.get("machine", {})
    lines = [
        "# Serving benchmark",
        "",
        f"- command: `{p.get('command')}`",
        f"- model: `{result['model_dir']}` ({result['kind']}, {result['shape']}, fit {result['fit_info']})",
        f"- machine: {m.get('platform')}, {m.get('cpu_count')} CPUs, torch {m.get('torch')}; client on the same machine",
        f"- git commit: {p.get('git_commit')}, started {p.get('started_at')}",
        "",
        "| server | round | clients / rate | answered rps | p50 ms | p99 ms | server CPU ms/request | outcomes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in result.get("variants", []):
        lines += _variant_rows(v)
    for name, r in result.get("ratios", {}).items():
        lines.append(
            f"\n{name}: saturation throughput x{r['saturation_throughput']:.2f}, one client "
            f"x{r['one_client_throughput']:.2f}, server CPU per request x{r['server_cpu_per_request']:.2f}"
        )
    b = result.get("batch")
    if b:
        lines += [
            "",
            f"Batch top-{b['k']} for {b['n_users']} users ({b['torch_threads']} torch threads), medians of "
            f"{len(b['evaluation_seconds'])} interleaved rounds: `recommend --users-file` path "
            f"**{b['users_file_path_seconds_median']:.2f} s** (raw scores, the command's default), with `--calibrated` "
            f"{b['users_file_calibrated_seconds_median']:.2f} s, evaluation pass {b['evaluation_seconds_median']:.2f} s "
            f"(median ratios within a round {b['users_file_over_evaluation_median']:.2f} and "
            f"{b['calibrated_over_evaluation_median']:.2f}; "
            f"CPU seconds {b['users_file_path_cpu_seconds_median']:.1f}, "
            f"{b['users_file_calibrated_cpu_seconds_median']:.1f} and {b['evaluation_cpu_seconds_median']:.1f}); "
            f"the unsorted pipeline took {b['unsorted_pipeline_seconds']:.2f} s "
            f"(same lists: {b['same_lists_as_unsorted']}).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
