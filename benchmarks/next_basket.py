"""Next-basket baselines on Ta Feng with the models fitted on every basket but the last (``Split.full``).

``chronorec train --split next-basket`` fits on every basket but the last two (validation chooses
TIFU-KNN's parameters) and ``chronorec evaluate`` scores the last basket; this script fits the same
kinds on all baskets but the last, as the Reality Check's scripts build their user vectors and
popularity from the whole history, so the two tables show what that choice is worth. TIFU-KNN runs
once per ``--tifu`` setting (default: the Reality Check's Ta Feng setting, the TIFU-KNN default).

    PYTHONPATH=src python benchmarks/next_basket.py [--data FILE] [--tifu '{"alpha": 0.1, ...}' ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from chronorec.data import read_events
from chronorec.evaluation.basket import evaluate_baskets, next_basket_split
from chronorec.models import registry
from chronorec.workflows.experiment import provenance

DATA = "../shared/data/tafeng-nbr/tafeng_merged.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--tifu", action="append", help="TIFU-KNN parameters as JSON (repeatable)")
    ap.add_argument("--out", default="benchmarks/results/tafeng-next-basket-full-fit.json")
    args = ap.parse_args()
    log = read_events(args.data)
    split = next_basket_split(log)
    results = {}
    runs = [("ptopfreq", {}), ("gptopfreq", {}), ("popular", {})]
    runs += [("tifuknn", json.loads(t)) for t in args.tifu or ["{}"]]
    for kind, params in runs:
        t0 = time.perf_counter()
        model = registry.get(kind)(**params).fit(split.full)
        metrics = evaluate_baskets(model.score, split.test, n_items=model.n_items)
        label = f"{kind} {json.dumps(params)}" if params else kind
        results[label] = {"kind": kind, "params": params, "test": metrics, "seconds": time.perf_counter() - t0}
        print(label, {k: round(v, 4) for k, v in metrics.items() if k.split("@")[0] in ("Recall", "NDCG", "PHR")})
    payload = provenance(protocol="next-basket, models fitted on all baskets but the last", data=args.data,
                         n_cases=len(split.test), results=results)  # fmt: skip
    Path(args.out).write_text(json.dumps(payload, indent=2, default=float))


if __name__ == "__main__":
    main()
