"""How fast and how small an oversized request is refused: each command below asks for more than any
machine has, and must answer with one ``error:`` line, quickly and without the memory it asked for.

    python benchmarks/refusals.py --repeats 3 --out benchmarks/results

Writes ``refusals.json``: per command, the median wall time and the largest peak RSS of the child
process (``os.wait4``), its exit code and error line, with the command, machine and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "predict-behavior": ["predict-behavior", "--dataset", "synthetic", "--horizon", "1s", "--out", "{tmp}/pb"],
    "datasets synth": ["datasets", "synth", "--items", "3G", "--out", "{tmp}/synth"],
    "train": [
        "train",
        "--dataset",
        "synthetic",
        "--kind",
        "sasrec",
        "-p",
        "dim=16384",
        "-p",
        "layers=8",
        "--out",
        "{tmp}/m",
    ],  # fmt: skip
    "ingest --recipe": ["ingest", "{tmp}/events.csv", "--recipe", "{tmp}/bomb.yaml", "--out", "{tmp}/log"],
}


def _fixtures(tmp: Path) -> None:
    (tmp / "events.csv").write_text("user_id,item_id,timestamp\n1,2,1600000000\n")
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    (tmp / "bomb.yaml").write_text("\n".join(levels) + "\nrules: []\n")


def _run(args: list[str]) -> tuple[float, int, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chronorec", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    line = next((ln for ln in out.splitlines() if ln.startswith("error:")), out.strip()[-200:])
    return seconds, usage.ru_maxrss * 1024, proc.returncode, line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, choices=range(1, 21), metavar="1..20")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _fixtures(tmp)
        for name, template in CASES.items():
            runs = [_run([x.format(tmp=tmp) for x in template]) for _ in range(a.repeats)]
            results[name] = {
                "median_seconds": statistics.median(r[0] for r in runs),
                "peak_rss_mb": max(r[1] for r in runs) / 2**20,
                "exit_codes": sorted({r[2] for r in runs}),
                "error": runs[0][3][:300],
            }
            print(f"{name}: {results[name]['median_seconds']:.2f} s, {results[name]['peak_rss_mb']:.0f} MB, "
                  f"{results[name]['error'][:120]}")  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    payload = {
        "command": "python " + " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "commit": commit,
        "protocol": f"each refusal run {a.repeats} times as its own process; median wall time, largest peak RSS",
        "results": results,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "refusals.json").write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
