"""Crash safety: kill -9 a process at random moments while it writes, then check what survived.

Three write paths, each written by a child process in a loop until the parent kills it with SIGKILL
after a random delay (uniform in [0, --writes x the time of one write], so a kill lands anywhere in
a write; the child prepares what it writes before it says it is ready):

* ``model``: saves over an existing model folder (two versions, alternately; the folder also holds
  a service's ``live/`` state). Survives when the folder loads, is one of the two versions whole
  (its manifest lists exactly its files) and ``live/`` is still there.
* ``checkpoint``: training checkpoints of epochs 1, 2, 3, ... (the weights are filled with the
  epoch number). Survives when the checkpoint resumes and its weights, best weights and progress
  file name the same epoch, which is no older than the last one the child reported written.
* ``events``: batches of live events committed with an Idempotency-Key; the child reports each
  acknowledged batch. Survives when every acknowledged batch is stored, no batch is stored in part,
  and re-sending the unacknowledged batch with its key stores it exactly once.

    .venv/bin/python benchmarks/crash.py --kills 20            # writes benchmarks/results/crash.json

The harness (writers, checks, the kill loop) is ``chronorec.testing.crash``; the test suite
(tests/reliability/test_crash.py) runs the same checks with a few kills per path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chronorec.testing.crash import PATHS, run_path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20, help="kills per write path")
    ap.add_argument("--writes", type=float, default=3.0, help="kill within this many writes' time")
    ap.add_argument("--paths", default=",".join(PATHS), help="comma-separated: model, checkpoint, events")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "crash.json")
    args = ap.parse_args(argv)
    t0 = time.time()
    out: dict[str, Any] = {
        "command": " ".join(["benchmarks/crash.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "protocol": "start a writer looping over its writes, SIGKILL it after uniform(0, writes x one write's "
        "time) seconds, check the folder or store it left; the next kill continues on what survived",
        "paths": {},
    }
    with tempfile.TemporaryDirectory(prefix="chronorec-crash-") as tmp:
        for i, path in enumerate(args.paths.split(",")):
            res = run_path(path, args.kills, args.seed + i, Path(tmp) / path, args.writes)
            out["paths"][path] = res
            print(f"{path}: {res['survivors']}/{res['kills']} survived", flush=True)
    out["seconds"] = round(time.time() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
