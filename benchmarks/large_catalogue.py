"""Training steps with a very large catalogue: peak memory and step time with a sampled loss.

Synthetic data: ``--batch * --steps`` users, each with ``--len + 1`` items drawn from a Zipf-like
distribution over a catalogue of ``--items`` ids, trained for one epoch (= ``--steps`` steps)
through the package's single training loop. Reports the peak resident memory of this process
(the target: under 8 GB for 1,000,000 items, dim 64, batch 128, length 200, sampled softmax) and
the mean step time, as JSON.

    python benchmarks/large_catalogue.py                       # the full setting (1M items)
    python benchmarks/large_catalogue.py --items 20000 --steps 2 --len 50   # a quick smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--len", type=int, default=200, dest="length")
    p.add_argument("--steps", type=int, default=3, help="training steps (the first includes warm-up)")
    p.add_argument("--model", default="sasrec", choices=["sasrec", "bert4rec", "hstu", "gru4rec"])
    p.add_argument("--loss", default="sampled", choices=["sampled", "sampled_pop", "gbce", "ce"])
    p.add_argument("--negatives", type=int, default=1000)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the result JSON here")
    args = p.parse_args(argv)

    import torch

    from chronorec.data import columns as C
    from chronorec.data.eventlog import EventLog
    from chronorec.data.idmap import IdMap
    from chronorec.models import registry

    if args.threads:
        torch.set_num_threads(args.threads)
    rss_start = rss_mb()
    rng = np.random.default_rng(args.seed)
    n_users, n = args.batch * args.steps, args.length + 1
    ranks = np.minimum(rng.zipf(1.2, size=n_users * n), args.items)  # heavy-tailed popularity
    perm = rng.permutation(args.items)
    items = perm[ranks - 1]
    df = pd.DataFrame(
        {
            C.USER: np.repeat(np.arange(n_users), n),
            C.ITEM: items,
            C.TIME: np.tile(np.arange(n, dtype=np.int64) * 60, n_users),
        }
    )
    t0 = time.perf_counter()
    log = EventLog.from_frame(df, items=IdMap(np.arange(args.items)))
    build_s = time.perf_counter() - t0
    rss_data = rss_mb()
    model = registry.get(args.model)(
        max_len=args.length,
        dim=args.dim,
        batch_size=args.batch,
        epochs=1,
        loss=args.loss,
        n_negatives=args.negatives,
        progress=False,
        seed=args.seed,
        threads=args.threads,
        amp=args.amp,
    )
    t0 = time.perf_counter()
    model.fit(log)
    fit_s = time.perf_counter() - t0
    epoch_s = model.fit_info["history"][0]["seconds"]
    result = {
        "n_items": log.n_items,
        "dim": args.dim,
        "batch": args.batch,
        "length": args.length,
        "steps": args.steps,
        "model": args.model,
        "loss": args.loss,
        "negatives": args.negatives,
        "amp": args.amp,
        "step_seconds_mean": epoch_s / args.steps,
        "fit_seconds": fit_s,
        "data_build_seconds": build_s,
        "peak_rss_mb": rss_mb(),
        "rss_mb_after_data": rss_data,
        "rss_mb_at_start": rss_start,
        "under_8gb": rss_mb() < 8 * 1024,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor()} ({__import__('os').cpu_count()} cores)",
        "command": "python benchmarks/large_catalogue.py "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
