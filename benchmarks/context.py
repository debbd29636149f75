"""Does context help SASRec on real timestamped shop logs? Split by time, paired over the same users.

    python benchmarks/context.py [--data-dir /work/shared/data] [--datasets taobao,retail]
        [--epochs N] [--threads 1] [--out benchmarks/results/context.json]

Protocol:

* **Taobao UserBehavior** (``taobao-userbehavior/UserBehavior_first814users.csv``: headerless
  ``user,item,category,behavior,time``; pv / cart / fav / buy, epoch seconds): items with fewer
  than 5 events are dropped (55k items are mostly seen once), then users with fewer than 3 events.
  Context: the behaviour type and the time gap to the previous event.
* **UCI Online Retail** (``online-retail/online_retail.csv.xz``): invoice lines with a customer;
  cancellations (``C`` invoices, quantity <= 0), zero prices and non-product stock codes (not
  starting with a digit: POST, M, BANK CHARGES, ...) removed; naive invoice times read as UTC.
  Context: the time gap to the previous event (0 inside one invoice).
* **Split by time** at a global cut-off: training = events before the validation cut-off;
  validation target = each user's first event in [validation, test) cut-off; test target = each
  user's first event at or after the test cut-off, input = every earlier event of the user (with
  its context). Full-catalogue ranking, ties against the target. Both settings of the history are
  reported: items of the input history excluded (the published protocol) and included (repeats,
  which dominate both logs, can be hit).
* **Models**: SASRec without context; SASRec with the history's context (``use_context``); and with
  the request's time too (``request_context``: the gap between the last event and the time of the
  request, which a service knows as "now"; the target's behaviour type is *not* given, it is not
  known when a list is asked for). Same settings and seed for all three. Epochs are chosen on
  validation NDCG@10 with the history *included* (both logs are mostly repeats: with the history
  excluded, validation NDCG@10 on Taobao is about 0.002, noise that stops training at random) and
  each validation user's context, as at test time.
* **Paired 95 % CI** (bootstrap over users, :func:`chronorec.evaluation.stats.paired_test`) of
  each context model minus the plain one, on per-user HR@10 and NDCG@10.

Writes ``--out`` (JSON: figures, configuration, command, data files, machine) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SASREC = {
    **{"max_len": 50, "dim": 64, "layers": 2, "heads": 1, "dropout": 0.3, "lr": 3e-3},
    **{"batch_size": 128, "patience": 4, "progress": False, "seed": 0},
}
VARIANTS: dict[str, dict[str, Any]] = {
    "sasrec": {},
    "sasrec+context": {"use_context": True},
    "sasrec+context+request time": {"use_context": True, "request_context": True},
}
DATASETS = {
    "taobao": {
        "file": "taobao-userbehavior/UserBehavior_first814users.csv",
        "features": ["behavior", "gap"],
        "validation_cutoff": "2017-12-01",
        "test_cutoff": "2017-12-02",
        "epochs": 15,
    },
    "retail": {
        "file": "online-retail/online_retail.csv.xz",
        "features": ["gap"],
        "validation_cutoff": "2011-10-01",
        "test_cutoff": "2011-11-01",
        "epochs": 8,
    },
}


def _frame_taobao(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=["user_id", "item_id", "category", "behavior", "timestamp"])
    for _ in range(2):  # items with >= 5 events, then users with >= 3 (once more: the item counts moved)
        df = df[df.groupby("item_id")["item_id"].transform("size") >= 5]
        df = df[df.groupby("user_id")["user_id"].transform("size") >= 3]
    return df[["user_id", "item_id", "timestamp", "behavior"]]


def _frame_retail(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str}, encoding="latin-1")
    keep = (
        df["CustomerID"].notna()
        & ~df["InvoiceNo"].str.startswith("C")
        & (df["Quantity"] > 0)
        & (df["UnitPrice"] > 0)
        & df["StockCode"].str.match(r"^\d")
    )
    df = df[keep]
    ts = (pd.to_datetime(df["InvoiceDate"]).dt.tz_localize("UTC") - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1s")
    return pd.DataFrame(
        {"user_id": df["CustomerID"].astype("int64").to_numpy(), "item_id": df["StockCode"].to_numpy(), "timestamp": ts}
    )


def load_log(name: str, data_dir: Path):
    from chronorec.data.eventlog import EventLog

    path = data_dir / DATASETS[name]["file"]
    df = _frame_taobao(path) if name == "taobao" else _frame_retail(path)
    return EventLog.from_frame(df.reset_index(drop=True), source=str(path)), str(path)


def _epoch(day: str) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp())


def case_contexts(log: Any, inputs: Any, cases: Any, cutoff: int) -> dict[int, dict[str, Any]]:
    """Per evaluated user: the raw context of the input events (behaviours, times) and the request time
    (the time of the target, the user's first event at or after ``cutoff``)."""
    store = inputs.sequences()  # the events before the cut-off, same id maps as the log
    ev = log.events
    first_time = ev[ev["timestamp"] >= cutoff].groupby("user_idx")["timestamp"].first()
    ctx = {}
    for u in cases.users:
        a, b = int(store.offsets[u]), int(store.offsets[u + 1])
        raw: dict[str, Any] = {"timestamp": store.timestamps[a:b], "next": {"timestamp": int(first_time[u])}}
        if store.behaviors is not None:
            raw["behavior"] = store.behaviors[a:b]
        ctx[int(u)] = raw
    return ctx


def scorer(model: Any, ctx: dict[int, dict[str, Any]]):
    """``score(users, histories)`` that hands the model each user's context."""

    def score(users: np.ndarray, hist: list[np.ndarray]):
        rows = [ctx[int(u)] for u in users]
        for h, r in zip(hist, rows, strict=True):
            assert len(h) == len(r["timestamp"]), "input history and its context disagree"
        return model.score(users, hist, rows)

    return score


def make_sasrec(val_ctx: dict[int, dict[str, Any]], **params: Any) -> Any:
    """SASRec whose epochs are chosen on validation NDCG@10 with the history included and the
    validation users' context (both logs are mostly repeats; see the module docstring)."""
    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.models.sequential.sasrec import SASRec

    class RepeatAwareSASRec(SASRec):
        def _validator(self, validation):
            def validate() -> float:
                score = scorer(self, val_ctx)
                return evaluate_ranking(score, validation, n_items=self.n_items, ks=(10,), exclude_history=False)[
                    "NDCG@10"
                ]

            return validate

    return RepeatAwareSASRec(**params)


def evaluate(model: Any, sp: Any, ctx: dict[int, dict[str, Any]], n_items: int) -> dict[str, Any]:
    from chronorec.evaluation.ranking import evaluate_ranking

    out = {}
    for excl in (True, False):
        metrics, per = evaluate_ranking(
            scorer(model, ctx), sp.test, n_items=n_items, ks=(10,), exclude_history=excl, return_per_user=True
        )
        out["excluded" if excl else "included"] = {
            "metrics": {k: v for k, v in metrics.items() if k in ("HR@10", "NDCG@10", "n_users")},
            "per_user": {m: per[m] for m in ("HR@10", "NDCG@10")},
        }
    return out


def repeat_share(sp: Any) -> float:
    hits = [np.isin(t, h).any() for h, t in zip(sp.test.inputs(slice(None)), sp.test.targets(slice(None)), strict=True)]
    return float(np.mean(hits)) if hits else 0.0


def run_dataset(name: str, data_dir: Path, epochs: int | None, threads: int) -> dict[str, Any]:
    from chronorec.evaluation.split import temporal_split
    from chronorec.evaluation.stats import paired_test

    spec = DATASETS[name]
    log, path = load_log(name, data_dir)
    test_cut, val_cut = _epoch(spec["test_cutoff"]), _epoch(spec["validation_cutoff"])
    sp = temporal_split(log, test_cutoff=test_cut, validation_cutoff=val_cut, first_only=True)
    ctx = case_contexts(log, sp.full, sp.test, test_cut)
    val_ctx = case_contexts(log, sp.train, sp.validation, val_cut)
    res: dict[str, Any] = {
        "data": path,
        "n_events": len(log),
        "n_users": log.n_users,
        "n_items": log.n_items,
        "split": {k: spec[k] for k in ("validation_cutoff", "test_cutoff")}
        | {"targets": "first event after the cut-off"},
        "n_train_events": len(sp.train),
        "n_validation_users": len(sp.validation),
        "n_test_users": len(sp.test),
        "test_target_in_history": repeat_share(sp),
        "context_features": spec["features"],
        "models": {},
    }
    print(f"{name}: {len(log)} events, {log.n_users} users, {log.n_items} items; {len(sp.test)} test users", flush=True)
    per: dict[str, Any] = {}
    for label, extra in VARIANTS.items():
        params = {**SASREC, "epochs": epochs or spec["epochs"], "threads": threads, **extra}
        if extra:
            params["context_features"] = spec["features"]
        t0 = time.perf_counter()
        model = make_sasrec(val_ctx, **params).fit(sp.train, validation=sp.validation)
        ev = evaluate(model, sp, ctx, log.n_items)
        per[label] = ev
        info = model.fit_info
        res["models"][label] = {
            "config": params,
            "seconds": time.perf_counter() - t0,
            "best_epoch": info.get("best_epoch"),
            "best_val_ndcg10": info.get("best_val_ndcg10"),
            "history": [
                {k: h.get(k) for k in ("epoch", "loss", "val_ndcg10", "seconds")} for h in info.get("history", [])
            ],
            **{h: ev[h]["metrics"] for h in ev},
        }
        print(f"  {label}: {res['models'][label]}", flush=True)
    base = per["sasrec"]
    res["paired_vs_sasrec"] = {
        label: {
            h: {m: paired_test(base[h]["per_user"][m], per[label][h]["per_user"][m]) for m in ("HR@10", "NDCG@10")}
            for h in ("excluded", "included")
        }
        for label in VARIANTS
        if label != "sasrec"
    }
    return res


def table(results: dict[str, Any]) -> str:
    lines = [
        "| data | history | model | HR@10 | NDCG@10 | NDCG@10 vs plain (95% CI) | best epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for h in ("excluded", "included"):
            for label, m in r["models"].items():
                ci = "–"
                if label in r["paired_vs_sasrec"]:
                    t = r["paired_vs_sasrec"][label][h]["NDCG@10"]
                    ci = f"{t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]"
                lines.append(
                    f"| {name} | {h} | {label} | {m[h]['HR@10']:.4f} | {m[h]['NDCG@10']:.4f} | {ci} | {m['best_epoch']} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--datasets", default="taobao,retail")
    ap.add_argument("--epochs", type=int, default=None, help="epoch cap (default: 15 Taobao, 8 retail)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest on a shared, busy machine)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/context.json"))
    args = ap.parse_args(argv)
    from chronorec.workflows.experiment import provenance

    t0 = time.perf_counter()
    results = {name: run_dataset(name, args.data_dir, args.epochs, args.threads) for name in args.datasets.split(",")}
    payload = {
        "benchmark": "context",
        "protocol": "global temporal split, first event after the test cut-off, full-catalogue ranking",
        "results": results,
        "total_seconds": time.perf_counter() - t0,
        "provenance": provenance(command="python " + " ".join(sys.argv)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, default=float))
    print(table(results))
    print(f"Wrote {args.out} in {payload['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
