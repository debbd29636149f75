"""A shop's own log, split by time: popular, buy-again, item-kNN, EASE, GRU4Rec, SASRec and their
repeat blends on UCI Online Retail.

    python benchmarks/retail.py [--data PATH] [--cutoff 2011-11-01] [--validation-cutoff 2011-10-01]
                                [--out benchmarks/results] [--doc docs/benchmarks/retail.md] [--quick]

Data: ``--data``, else ``$CHRONOREC_DATA/online-retail/online_retail.csv.xz``, else
``/work/shared/data/online-retail/online_retail.csv.xz``; ingested with the bundled
``online-retail`` recipe (customers only, non-product codes and gift vouchers dropped, price > 0,
cancellations netted against their purchase).

Protocol: one global split by time. Training = events before the validation cut-off; validation
targets = the distinct items each user bought in [validation cut-off, cut-off), test targets = the
distinct items bought from the cut-off on, for users with at least one earlier event; the test input
is the user's whole history before the cut-off. Full-catalogue ranking, the history protocol chosen
by ``auto`` on validation (see docs/guide/evaluation.md). Epochs (early stopping), buy-again's decay
and each blend's weight and temperature are chosen on validation; test is read once. Every model is
compared with buy-again by a paired bootstrap over the same users (95 % CI of the difference).
The "best learned model" is the one with the best validation NDCG@10 among everything but popular
and buy-again, so picking it does not peek at test.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = "/work/shared/data/online-retail/online_retail.csv.xz"
BASELINES = ("popular", "buyagain")


def data_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("CHRONOREC_DATA")
    if env and (Path(env) / "online-retail" / "online_retail.csv.xz").exists():
        return Path(env) / "online-retail" / "online_retail.csv.xz"
    return Path(DEFAULT_DATA)


def ingest(path: Path) -> tuple[Any, dict[str, Any]]:
    """The retail log through the bundled recipe, and what the ingest did."""
    from chronorec.data.eventlog import EventLog

    log = EventLog.read(path, recipe="online-retail")
    report = getattr(log, "report", None)
    info: dict[str, Any] = {"recipe": "online-retail", "events": len(log), "users": log.n_users, "items": log.n_items}
    if report is not None:
        info.update(
            rows_read=report.rows_read,
            rows_kept=report.rows_kept,
            duplicates_removed=report.duplicates_removed,
            rules_removed=dict(report.rules_removed),
            timezone=report.timezone,
        )
    return log, info


def models(epochs: int, threads: int, budget: float) -> dict[str, Any]:
    from chronorec.models.registry import registry

    seq = dict(
        max_len=50,
        dim=64,
        dropout=0.2,
        batch_size=128,
        train_windows="random",
        epochs=epochs,
        patience=3,
        lr=1e-3,
        device="cpu",
        threads=threads,
        progress=False,
        time_budget_s=budget,
        seed=0,
    )
    return {
        "popular": registry.get("popular")(),
        "buyagain": registry.get("buyagain")(),
        "itemknn": registry.get("itemknn")(neighbours=100, recency_decay=0.1),
        "ease": registry.get("ease")(l2=500.0, threads=threads),
        "gru4rec": registry.get("gru4rec")(hidden=64, **seq),
        "sasrec": registry.get("sasrec")(layers=2, heads=2, **seq),
    }


def _ci(t: dict[str, float]) -> str:
    return f"{t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]"


def _row(name: str, test: dict[str, float], val: dict[str, float], paired: dict[str, Any] | None, secs: float) -> str:
    cells = ["(reference)"] * 2 if paired is None else [_ci(paired["HR@10"]), _ci(paired["NDCG@10"])]
    values = [name, f"{test['HR@10']:.4f}", f"{test['NDCG@10']:.4f}", *cells, f"{val['NDCG@10']:.4f}", f"{secs:.0f}"]
    return "| " + " | ".join(values) + " |"


def run(args: argparse.Namespace) -> dict[str, Any]:  # Long: the benchmark's steps in order, one place
    import torch

    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.evaluation.repeat import decide_history, repeat_stats
    from chronorec.evaluation.split import temporal_split
    from chronorec.evaluation.stats import paired_test
    from chronorec.models.repeat import RepeatBlend
    from chronorec.workflows.experiment import peak_rss_mb, provenance
    from chronorec.workflows.run_config import SplitConfig

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    path = data_path(args.data)
    log, ingest_info = ingest(path)
    cut, vcut = SplitConfig.to_seconds(args.cutoff), SplitConfig.to_seconds(args.validation_cutoff)
    sp = temporal_split(log, test_cutoff=cut, validation_cutoff=vcut)
    decision = decide_history(args.history, sp.validation)
    repeat = {"test": repeat_stats(sp.test), "validation": repeat_stats(sp.validation)}
    print(
        f"{ingest_info['events']} events, {log.n_users} users, {log.n_items} items; train {len(sp.train)} events, "
        f"validation {len(sp.validation)} users, test {len(sp.test)} users; {decision.describe()}; "
        f"test repeat share {repeat['test']['repeat_share']:.3f}",
        flush=True,
    )
    n_items = log.n_items
    ks = (10, 20)

    def evaluate(score_fn, cases):
        return evaluate_ranking(
            score_fn, cases, n_items=n_items, ks=ks, exclude_history=decision.exclude, return_per_user=True
        )

    results: dict[str, Any] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {}
    fitted: dict[str, Any] = {}
    for name, model in models(args.epochs, args.threads, args.budget).items():
        t0 = time.perf_counter()
        model.fit(sp.train, validation=sp.validation).record_split(sp)
        fit_s = time.perf_counter() - t0
        fitted[name] = model
        _record(name, model, fit_s, evaluate, sp, results, per_user)
    for base in ("itemknn", "ease", "gru4rec", "sasrec"):
        t0 = time.perf_counter()
        blend = RepeatBlend.from_model(fitted[base], validation=sp.validation)
        _record(f"blend({base})", blend, time.perf_counter() - t0, evaluate, sp, results, per_user)
    for name in results:
        if name != "buyagain":
            results[name]["vs_buyagain"] = {
                m: paired_test(per_user["buyagain"][m], per_user[name][m], n_boot=args.n_boot)
                for m in ("HR@10", "NDCG@10")
            }
    learned = [n for n in results if n not in BASELINES]
    best = max(learned, key=lambda n: results[n]["validation"]["NDCG@10"])
    return {
        "provenance": provenance(
            data=str(path),
            ingest=ingest_info,
            protocol="global-temporal",
            split=sp.describe(),
            cutoff=args.cutoff,
            validation_cutoff=args.validation_cutoff,
            history_protocol=decision.to_dict(),
            repeat=repeat,
            n_test_users=len(sp.test),
            n_validation_users=len(sp.validation),
            n_train_events=len(sp.train),
            wall_seconds=time.perf_counter() - t_start,
            peak_rss_mb=peak_rss_mb(),
            threads=args.threads,
        ),
        "results": results,
        "best_learned": best,
        "best_beats_buyagain": {m: results[best]["vs_buyagain"][m]["ci_low"] > 0 for m in ("HR@10", "NDCG@10")},
    }


def _record(name, model, fit_s, evaluate, sp, results, per_user) -> None:
    t0 = time.perf_counter()
    test, per_user[name] = evaluate(model.score, sp.test)
    val, _ = evaluate(model.score, sp.validation)
    info = model.fit_info or {}
    results[name] = {
        "kind": model.kind,
        "config": model.config.model_dump(),
        "test": test,
        "validation": val,
        "fit_seconds": fit_s,
        "eval_seconds": time.perf_counter() - t0,
        "best_epoch": info.get("best_epoch") or (info.get("base") or {}).get("best_epoch"),
        "chosen": {k: info[k] for k in ("decay", "weight", "temperature") if k in info},
    }
    print(
        f"  {name}: test HR@10 {test['HR@10']:.4f} NDCG@10 {test['NDCG@10']:.4f} "
        f"(validation NDCG@10 {val['NDCG@10']:.4f}; fit {fit_s:.0f} s) {results[name]['chosen']}",
        flush=True,
    )


def table(payload: dict[str, Any]) -> str:
    p = payload["provenance"]
    hist, rep = p["history_protocol"], p["repeat"]
    lines = [
        "| model | HR@10 | NDCG@10 | HR@10 vs buy-again [95% CI] | NDCG@10 vs buy-again [95% CI] | val NDCG@10 | fit s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in payload["results"].items():
        secs = r["fit_seconds"]
        lines.append(_row(name, r["test"], r["validation"], r.get("vs_buyagain"), secs))
    best = payload["best_learned"]
    verdict = payload["best_beats_buyagain"]
    h = payload["results"][best]["vs_buyagain"]["HR@10"]
    n = payload["results"][best]["vs_buyagain"]["NDCG@10"]
    lines += [
        "",
        f"History protocol: {hist['used']} ({hist['mode']}: {hist['reason']}). Repeat share of the test targets: "
        f"{100 * rep['test']['repeat_share']:.1f}% ({100 * rep['test']['repeat_cases']:.1f}% of test users have one); "
        f"validation {100 * rep['validation']['repeat_share']:.1f}%.",
        "",
        f"Best learned model by validation NDCG@10: **{best}**: HR@10 {h['diff']:+.4f} "
        f"[{h['ci_low']:+.4f}, {h['ci_high']:+.4f}], NDCG@10 {n['diff']:+.4f} [{n['ci_low']:+.4f}, {n['ci_high']:+.4f}] "
        f"against buy-again: "
        + (
            "it beats buy-again with both CIs above zero."
            if all(verdict.values())
            else f"CI above zero for {', '.join(m for m, v in verdict.items() if v) or 'neither metric'}."
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="the retail CSV (default: $CHRONOREC_DATA/online-retail/...)")
    ap.add_argument("--cutoff", default="2011-11-01", help="test cut-off (UTC date)")
    ap.add_argument("--validation-cutoff", default="2011-10-01", help="validation cut-off (UTC date)")
    ap.add_argument("--history", default="auto", help="exclude, include or auto (default)")
    ap.add_argument("--epochs", type=int, default=30, help="most epochs of GRU4Rec and SASRec (early stopping)")
    ap.add_argument("--budget", type=float, default=420.0, help="training time budget per sequence model, seconds")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: on a busy machine more threads thrash)")
    ap.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples of the paired CIs")
    ap.add_argument("--quick", action="store_true", help="2 epochs, 200 resamples: a smoke run")
    ap.add_argument("--out", default="benchmarks/results", help="folder of retail.json")
    ap.add_argument("--doc", default=None, help="also write the table into this Markdown file")
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.n_boot = 2, 200
    payload = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "retail-quick.json" if args.quick else "retail.json"
    (out / name).write_text(json.dumps(payload, indent=2, default=float))
    text = table(payload)
    print(text)
    print(f"wrote {out / name} in {payload['provenance']['wall_seconds']:.0f} s")
    if args.doc:
        Path(args.doc).write_text(text + "\n")


if __name__ == "__main__":
    main()
