"""Why SASRec's lists collapse to best-sellers on some logs: the same split, SASRec with one change at a time.

    python benchmarks/sasrec_collapse.py --log tafeng --threads 1 --budget 300
    python benchmarks/sasrec_collapse.py --log ml-100k --threads 1 --budget 150

Each variant is fitted on the training part of the log's split (as ``benchmarks/real_logs.py`` splits
it), its epoch chosen on validation, then scored once on test: NDCG@10, Coverage@10, and on next-basket
logs the repeat / explore split of the hits (Recall-rep@10, Recall-expl@10, RepRatio@10: the share of
the list's slots holding an item of the user's own history). The per-epoch validation curve is saved,
so where the chosen epoch sits (the first, popularity-like epochs, or later) is visible. Saves
``benchmarks/results/sasrec-collapse-<log>.json`` with the command, data, machine and commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_logs import LOGS, data_dir, split_log  # noqa: E402 - the sibling script's split, not a package

FAST = {"lr": 3e-3, "batch_size": 32, "dropout": 0.2, "patience": 10}
"""The real-logs benchmark's ``fast`` setting; each variant changes one thing of it (``repeatnet``: the
same encoder with a pointer over the user's own items, trained end to end)."""
VARIANTS: dict[str, dict[str, Any]] = {
    "fast": {},
    "patience-3": {"patience": 3},
    "steady": {"lr": 1e-3, "batch_size": 128, "dropout": 0.5},
    "cosine": {"similarity": "cosine"},
    "pop-negatives-logq": {"loss": "sampled_pop", "logq_correction": True},
    "weight-decay-0.1": {"weight_decay": 0.1},
    "repeatnet": {"kind": "repeatnet"},
}


def run_variant(name: str, change: dict[str, Any], sp: Any, baskets: bool, args: argparse.Namespace) -> dict[str, Any]:
    from chronorec import evaluate_ranking
    from chronorec.evaluation.basket import evaluate_baskets
    from chronorec.models.registry import registry

    params = dict(
        max_len=50, dim=64, layers=2, heads=2, epochs=args.epochs, device="cpu", threads=args.threads,
        progress=False, time_budget_s=args.budget, seed=0, targets="next_time" if baskets else "next_event",
        **FAST,
    )  # fmt: skip
    params |= change
    kind = params.pop("kind", "sasrec")
    model = registry.get(kind)(**params)
    t0 = time.perf_counter()
    model.fit(sp.train, validation=sp.validation)
    out: dict[str, Any] = {
        "kind": kind,
        "change": change,
        "fit_seconds": time.perf_counter() - t0,
        "best_epoch": model.fit_info.get("best_epoch"),
        "validation_curve": [h.get("val_ndcg10") for h in model.fit_info.get("history", [])],
        "history": model.history_label,
        "test": evaluate_ranking(model, sp.test, ks=(10,)),
    }
    if baskets:
        b = evaluate_baskets(model.score, sp.test, n_items=model.n_items, ks=(10,))
        out["basket"] = {k: b[k] for k in ("Recall@10", "NDCG@10", "Recall-rep@10", "Recall-expl@10", "RepRatio@10")}
    t = out["test"]
    print(
        f"  {name}: best epoch {out['best_epoch']}, test NDCG@10 {t['NDCG@10']:.4f}, Coverage@10 "
        f"{t['Coverage@10']:.3f}" + (f", RepRatio@10 {out['basket']['RepRatio@10']:.3f}" if baskets else ""),
        flush=True,
    )
    return out


def main() -> None:
    from chronorec.workflows.experiment import provenance

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", default="tafeng", choices=sorted(LOGS))
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--budget", type=float, default=300.0, help="training seconds per variant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    spec = LOGS[args.log]
    _, sp, desc = split_log(args.log, spec, data_dir(args.data_dir))
    baskets = spec.protocol == "last-basket"
    print(f"== {args.log}: {desc}", flush=True)
    results = {n: run_variant(n, VARIANTS[n], sp, baskets, args) for n in args.variants.split(",")}
    payload = provenance(command=" ".join(["python", *sys.argv]), data=desc, protocol=spec.protocol, results=results)
    path = Path(args.out) / f"sasrec-collapse-{args.log}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
