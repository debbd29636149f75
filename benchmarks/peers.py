"""chronorec's SASRec preset beside RePlay's SasRec: same data, protocol and training-time budget,
on the same machine, one after the other.

    python benchmarks/peers.py [--budget-s 420] [--threads 2] [--data-dir /work/shared/data]
        [--users N] [--order chronorec,replay] [--tag T]
    python benchmarks/peers.py --table benchmarks/results/peers-ml1m.json   # only rebuild the table

The peer lives in its own virtual environment, never among chronorec's dependencies. Install it
once (torch first, from the same CPU wheel as chronorec's; the constraint keeps pip from pulling
another torch)::

    python3.11 -m venv /work/peers/replay-venv
    /work/peers/replay-venv/bin/pip install torch==2.13.0
    echo "torch==2.13.0" > /tmp/replay-constraints.txt
    /work/peers/replay-venv/bin/pip install "replay-rec[torch]==0.22.0" -c /tmp/replay-constraints.txt

(``--peer-python`` or ``$PEERS_REPLAY_PYTHON`` names another interpreter of such a venv.)

Protocol, both sides: ML-1M (``ml-1m/ml-1m.txt``, one line per user, items oldest first),
leave-one-out (last item test, second-to-last validation, the rest training), every item of the
catalogue ranked, ties against the target. Each side trains until its training seconds (batches,
forward, backward, optimiser; validation excluded) plus its mean epoch would pass ``--budget-s``,
validates after every epoch (NDCG@10, history filtered: chronorec's monitor, computed the same way
on both sides), keeps the best validation epoch and reads test once, with the history not
filtered (as RePlay reports it) and filtered (as chronorec's benchmark tables do). torch threads
are ``--threads`` on both sides.

* chronorec: its current ML-1M SASRec preset through the public CLI (``chronorec benchmark
  --datasets ml-1m --models sasrec --set sasrec.time_budget_s=B --set 'sasrec.batching="tokens"'
  --threads T --save-model ...``; ``--chronorec-set`` changes the overrides), so whatever the preset
  is now is what runs, on token batches (the preset's own random batches are for 30-minute quality); the unfiltered test figure is computed on the saved
  model with ``evaluate_ranking(exclude_history=False)``;
* RePlay: ``benchmarks/peers_replay.py`` in the peer venv (RePlay's SasRec, 2 blocks x 64, fp32,
  through its own ParquetModule + Lightning pipeline).

Figures: seconds per epoch (median), epochs in the budget, test NDCG@10 / HR@10 after the budget,
and the training seconds each needs to first reach a common validation NDCG@10 (the lower of the
two sides' best). The load average at the start and end of each side, and the CPU share each side
got (CPU seconds / (wall seconds x threads)), say how busy the machine was. Writes
``benchmarks/results/peers-ml1m[-TAG].json`` (figures, per-epoch histories, command, data, machine,
versions) and a Markdown table beside it (copied to ``docs/benchmarks/peers.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "peers_replay.py"
DEFAULT_PEER_PYTHON = "/work/peers/replay-venv/bin/python"
DATASET = "ml-1m"
DATA_FILE = "ml-1m/ml-1m.txt"
PROTOCOL = (
    "leave-one-out, full-catalogue ranking (ties against the target), best epoch by validation NDCG@10 "
    "(history filtered), test read once with the history not filtered and filtered"
)
BARS = {"epoch_speedup": 4.0, "ndcg_ratio": 1.6}  # chronorec vs RePlay, the targets of the speed work


# ---------------------------------------------------------------------------- pure parts
def curve(history: list[dict[str, Any]], key: str = "val_ndcg10") -> list[tuple[float, float]]:
    """``(training seconds so far, validation value)`` after each validated epoch."""
    out, spent = [], 0.0
    for entry in history:
        spent += float(entry["seconds"])
        if entry.get(key) is not None:
            out.append((spent, float(entry[key])))
    return out


def time_to_quality(points: list[tuple[float, float]], target: float) -> float | None:
    """Training seconds at the end of the first epoch whose validation value reaches ``target``."""
    for seconds, value in points:
        if value >= target:
            return seconds
    return None


def common_quality(curves: list[list[tuple[float, float]]]) -> float | None:
    """The highest validation value every curve reaches: the lowest of their bests."""
    bests = [max(v for _, v in c) for c in curves if c]
    return min(bests) if len(bests) == len(curves) and bests else None


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if not n:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def side_summary(res: dict[str, Any]) -> dict[str, Any]:
    """The table's figures of one side from its result (``history``, ``test``, ``test_filtered``)."""
    secs = [float(e["seconds"]) for e in res["history"]]
    return {
        "model": res["model"],
        "epochs": len(secs),
        "epoch_seconds_median": median(secs),
        "epoch_seconds_mean": sum(secs) / len(secs) if secs else float("nan"),
        "train_seconds": sum(secs),
        "best_epoch": res["best_epoch"],
        "test": {k: res["test"][k] for k in ("NDCG@10", "HR@10")},
        "test_filtered": {k: res["test_filtered"][k] for k in ("NDCG@10", "HR@10")},
        "best_val_ndcg10": max((v for _, v in curve(res["history"])), default=None),
        "epoch_cpu_seconds_est": cpu_estimate(res),
    }


def cpu_estimate(res: dict[str, Any]) -> float | None:
    """CPU seconds of a median epoch, estimated as its wall seconds x the side's CPU share x its
    threads (what the epoch would take on idle cores, if the share held through the run)."""
    secs = [float(e["seconds"]) for e in res["history"]]
    if not secs or res.get("cpu_share") is None:
        return None
    return median(secs) * res["cpu_share"] * res.get("threads", 1)


def compare(chrono: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """Ratios of chronorec to the peer, the common validation quality and the time each needs to reach it."""
    a, b = side_summary(chrono), side_summary(peer)
    curves = [curve(chrono["history"]), curve(peer["history"])]
    target = common_quality(curves)
    times = [time_to_quality(c, target) if target is not None else None for c in curves]
    speedup = b["epoch_seconds_median"] / a["epoch_seconds_median"]
    cpu_a, cpu_b = a["epoch_cpu_seconds_est"], b["epoch_cpu_seconds_est"]
    ndcg_ratio = a["test"]["NDCG@10"] / b["test"]["NDCG@10"] if b["test"]["NDCG@10"] else float("inf")
    return {
        "chronorec": a,
        "peer": b,
        "epoch_speedup": speedup,
        "epoch_cpu_speedup_est": cpu_b / cpu_a if cpu_a and cpu_b else None,
        "ndcg_ratio_unfiltered": ndcg_ratio,
        "common_val_ndcg10": target,
        "seconds_to_common": {"chronorec": times[0], "peer": times[1]},
        "time_to_common_speedup": times[1] / times[0] if None not in times and times[0] else None,
        "bars": {
            f"epoch_speedup >= {BARS['epoch_speedup']:.1f}": speedup >= BARS["epoch_speedup"],
            f"test NDCG@10 (not filtered) ratio >= {BARS['ndcg_ratio']:.1f}": ndcg_ratio >= BARS["ndcg_ratio"],
        },
    }


def _fmt(x: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{unit}"


def _pair(fig: dict[str, float]) -> str:
    return f"{fig['NDCG@10']:.4f} / {fig['HR@10']:.4f}"


def _load(side: dict[str, Any]) -> str:
    a, b = side.get("loadavg_start"), side.get("loadavg_end")
    return "-" if not a or not b else f"{a[0]:.1f} / {b[0]:.1f}"


def table(result: dict[str, Any]) -> str:
    """The side-by-side Markdown table of a saved result, with the command that made it."""
    sides = result["sides"]
    ca, cb = sides["chronorec"], sides["replay"]
    for side in (ca, cb):
        side.setdefault("threads", result["threads"])
    c = compare(ca, cb)  # from the saved sides, so a result saved by an older version reads too
    a, b = c["chronorec"], c["peer"]
    budget = result["budget_s"]
    t_a, t_b = c["seconds_to_common"]["chronorec"], c["seconds_to_common"]["peer"]
    q = c["common_val_ndcg10"]
    rows = [
        ("training seconds per epoch (median)", _fmt(a["epoch_seconds_median"]), _fmt(b["epoch_seconds_median"]),
         f"{c['epoch_speedup']:.2f}x shorter"),
        (f"epochs in {budget:.0f} s of training", str(a["epochs"]), str(b["epochs"]), ""),
        ("epoch chosen on validation", str(a["best_epoch"]), str(b["best_epoch"]), ""),
        (f"test NDCG@10 / HR@10 after {budget:.0f} s, history not filtered", _pair(a["test"]), _pair(b["test"]),
         f"{c['ndcg_ratio_unfiltered']:.2f}x"),
        (f"test NDCG@10 / HR@10 after {budget:.0f} s, history filtered", _pair(a["test_filtered"]),
         _pair(b["test_filtered"]), ""),
        (f"training seconds to validation NDCG@10 {_fmt(q, '.4f')} (filtered; the lower best)",
         _fmt(t_a), _fmt(t_b), "" if c["time_to_common_speedup"] is None else f"{c['time_to_common_speedup']:.2f}x"),
        ("CPU seconds per epoch, estimated (epoch s x CPU share x threads)", _fmt(a["epoch_cpu_seconds_est"]),
         _fmt(b["epoch_cpu_seconds_est"]),
         "" if c["epoch_cpu_speedup_est"] is None else f"{c['epoch_cpu_speedup_est']:.2f}x fewer"),
        ("load average (1 min) at start / end", _load(ca), _load(cb), ""),
        ("CPU share of its threads (CPU s / (wall s x threads))", _fmt(ca.get("cpu_share"), ".2f"),
         _fmt(cb.get("cpu_share"), ".2f"), ""),
    ]  # fmt: skip
    lines = [
        f"| | {a['model']} | {b['model']} | chronorec vs RePlay |",
        "|---|---|---|---|",
        *(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows),
    ]
    bars = ", ".join(f"{name}: {'met' if ok else 'not met'}" for name, ok in c["bars"].items())
    return "\n".join(
        [
            f"Data: {result['data']['file']} ({result['data']['n_users']} users, {result['data']['n_items']} items). "
            f"Protocol: {result['protocol']}. Machine: {result['machine']['cpu_count']} cores, "
            f"{result['threads']} torch threads per side, sides run {' then '.join(result['order'])}.",
            "",
            *lines,
            "",
            f"Bars: {bars}.",
            "",
            f"Command: `{result['command']}` (started {result['started_at']}).",
        ]
    )


# ---------------------------------------------------------------------------- the runs
def source_state() -> dict[str, Any]:
    """The commit chronorec ran from and its uncommitted source files (a preset or model being
    changed in the working tree runs as it stands)."""

    def git(*a: str) -> str:
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return r.stdout.strip() if r.returncode == 0 else ""

    return {
        "git_commit": git("rev-parse", "HEAD"),
        "uncommitted": git("status", "--porcelain", "--", "src").splitlines(),
    }


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count()}


def _timed(cmd: list[str], log: Path, threads: int) -> dict[str, Any]:
    """Run ``cmd`` (output to ``log``); wall and CPU seconds, load average at start and end."""
    ru0, load0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), os.getloadavg(), time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if proc.returncode:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"{cmd[0]} ... exited {proc.returncode}; the end of {log}:\n{tail}")
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "cpu_share": cpu / (wall * threads),
        "threads": threads,
        "loadavg_start": list(load0),
        "loadavg_end": list(os.getloadavg()),
        "process_command": " ".join(cmd),
    }


def run_chronorec(args, data_dir: Path, work: Path) -> dict[str, Any]:
    """The current ML-1M SASRec preset through ``chronorec benchmark``; then the unfiltered test
    figure of the saved (validation-chosen) model."""
    from chronorec.datasets.formats import load_sequence_file
    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.evaluation.split import leave_one_out
    from chronorec.models.registry import load

    out, saved = work / "chronorec", work / "model"
    cmd = [sys.executable, "-m", "chronorec", "benchmark", "--datasets", DATASET, "--models", "sasrec"]
    cmd += ["--data-dir", str(data_dir), "--out", str(out), "--threads", str(args.threads), "--seed", str(args.seed)]
    cmd += ["--set", f"sasrec.time_budget_s={args.budget_s}", "--tag", "peers", "--no-progress"]
    for override in args.chronorec_set:
        cmd += ["--set", override]
    cmd += ["--save-model", str(saved)]
    facts = _timed(cmd, work / "chronorec.log", args.threads)
    res = json.loads((out / "runs" / f"{DATASET}-sasrec-seed{args.seed}-peers.json").read_text())
    cfg = res["config"]
    model = load(saved / f"{DATASET}-sasrec")
    split = leave_one_out(load_sequence_file(data_dir / DATA_FILE))
    n_items = split.train.n_items
    unfiltered = evaluate_ranking(model.score, split.test, n_items=n_items, ks=(10,), exclude_history=False)
    precision = cfg.get("amp_dtype", "bfloat16") if cfg.get("amp") else "fp32"
    extra = f", {cfg['batching']} batches" if cfg.get("batching") else ""
    return {
        **facts,
        "peer": "chronorec",
        "model": f"chronorec SASRec preset ({cfg['layers']} x {cfg['dim']}, {precision}{extra})",
        "config": cfg,
        "history": res["history"],
        "epochs_run": res["epochs_run"],
        "best_epoch": res["best_epoch"],
        "train_seconds": res["train_seconds"],
        "test": {k: unfiltered[k] for k in ("NDCG@10", "HR@10")},
        "test_filtered": {k: res["test"][k] for k in ("NDCG@10", "HR@10")},
        "n_users": res["n_users"],
        "n_items": res["n_items"],
        "versions": {
            "chronorec": res["provenance"]["chronorec_version"],
            "git_commit": res["provenance"]["git_commit"],
        },
    }


def run_replay(args, data_dir: Path, work: Path) -> dict[str, Any]:
    """``peers_replay.py`` in the peer venv, same data, budget, threads and seed."""
    if not Path(args.peer_python).exists():
        raise SystemExit(f"no peer interpreter at {args.peer_python}: install it as this script's docstring says")
    out = work / "replay.json"
    cmd = [args.peer_python, str(RUNNER), "--data", str(data_dir / DATA_FILE), "--out", str(out)]
    cmd += ["--budget-s", str(args.budget_s), "--threads", str(args.threads), "--seed", str(args.seed)]
    facts = _timed(cmd, work / "replay.log", args.threads)
    return {**facts, **json.loads(out.read_text())}


def data_folder(args, work: Path) -> Path:
    """The data folder both sides read: ``--data-dir``, or a copy with its first ``--users`` users."""
    src = Path(args.data_dir)
    if not (src / DATA_FILE).exists():
        raise SystemExit(f"{src / DATA_FILE} not found (--data-dir or $CHRONOREC_DATA)")
    if not args.users:
        return src
    dst = work / "data"
    (dst / "ml-1m").mkdir(parents=True)
    lines = (src / DATA_FILE).read_text().splitlines()[: args.users]
    (dst / DATA_FILE).write_text("\n".join(lines) + "\n")
    return dst


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("CHRONOREC_DATA") or str(ROOT.parent / "shared" / "data")
    p.add_argument("--data-dir", default=default_data, help="folder holding ml-1m/ml-1m.txt")
    p.add_argument("--budget-s", type=float, default=420.0, help="training seconds per side (default 420)")
    p.add_argument("--threads", type=int, default=2, help="torch threads per side (default 2)")
    p.add_argument("--users", type=int, default=0, help="only the first N users (a quick check; default all)")
    p.add_argument("--order", default="chronorec,replay", help="which side runs first (default chronorec,replay)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--chronorec-set",
        nargs="*",
        default=['sasrec.batching="tokens"'],
        help="preset overrides of the chronorec side (default: token batches, the fast setting for short budgets)",
    )
    p.add_argument("--peer-python", default=os.environ.get("PEERS_REPLAY_PYTHON", DEFAULT_PEER_PYTHON))
    p.add_argument("--tag", default="", help="suffix of the output names")
    p.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--table", metavar="JSON", help="only print the table of a saved result")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    order = [s.strip() for s in args.order.split(",")]
    if sorted(order) != ["chronorec", "replay"]:
        raise SystemExit("--order names chronorec and replay once each")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    source = source_state()
    work = Path(tempfile.mkdtemp(prefix="chronorec-peers-"))
    data_dir = data_folder(args, work)
    runners = {"chronorec": run_chronorec, "replay": run_replay}
    sides = {}
    for name in order:
        print(f"[peers] {name}: {args.budget_s:.0f} s of training ...", file=sys.stderr, flush=True)
        sides[name] = runners[name](args, data_dir, work)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "started_at": started,
        "protocol": PROTOCOL,
        "data": {
            "file": str(data_dir / DATA_FILE)
            if not args.users
            else f"{Path(args.data_dir) / DATA_FILE} (first {args.users} users)",
            "n_users": sides["chronorec"]["n_users"],
            "n_items": sides["chronorec"]["n_items"],
        },
        "budget_s": args.budget_s,
        "threads": args.threads,
        "order": order,
        "machine": machine(),
        "chronorec_source": source,
        "sides": sides,
        "comparison": compare(sides["chronorec"], sides["replay"]),
    }
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "peers-ml1m" + (f"-{args.tag}" if args.tag else "")
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=2, default=float))
    (out_dir / f"{stem}.md").write_text(table(result) + "\n")
    print(table(result))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
