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

from chronorec.testing.peers import PROTOCOL, compare, table

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "peers_replay.py"
DEFAULT_PEER_PYTHON = "/work/peers/replay-venv/bin/python"
DATASET = "ml-1m"
DATA_FILE = "ml-1m/ml-1m.txt"


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


def _timed(cmd: list[str], log: Path, threads: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` (output to ``log``); wall and CPU seconds, load average at start and end."""
    ru0, load0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), os.getloadavg(), time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, check=False, env=env)
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
    # the runner's pure parts come from chronorec.testing.replay_side (numpy and torch only): src on its path
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    facts = _timed(cmd, work / "replay.log", args.threads, env)
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
