"""Learned models against the shop's own habits, on real logs: one table per log.

    python benchmarks/real_logs.py [--logs rees46,amazon-mi,...] [--models popular,buyagain,...]
                                   [--data-dir ../shared/data] [--out benchmarks/results]
                                   [--doc docs/benchmarks/real-logs.md] [--quick]

Data: ``--data-dir``, else ``$CHRONOREC_DATA``, else ``../shared/data`` (never committed). Each log is
read through the public API (``EventLog.read`` with the columns a user would give ``chronorec
ingest``), then split by the protocol named in :data:`LOGS`:

- ``time``: one global cut-off pair (validation, test): training = events before the validation
  cut-off; validation targets = the distinct items of each user in [validation, test); test targets =
  those from the test cut-off on, the input being the user's whole history before it.
- ``last-basket``: the next-basket protocol of Li et al. (TOIS 2023) where the log has baskets: the
  last basket is the test target (all its items), the one before it validation.
- ``session``: the next item within the session: with a session column, the last event of each
  user's last session given everything before it (``session_split``); without one, each session is
  read as the sequence itself (the session id is the user) and split leave-one-out.

Every model is fitted on the training part with validation for its epochs and chosen settings; its
history protocol (exclude / include the user's own items) is decided once at fit (``auto``, the
library default) and used for validation and test alike. Test is read once. Each model is compared
with the best simple baseline (popular, buy-again, P-TopFreq, GP-TopFreq: the best by validation
NDCG@10) by a
paired bootstrap over the same users (95 % CI). The "best learned model" is the learned model (not a
simple baseline) with the best validation NDCG@10, so choosing it does not peek at test.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RC_SPLIT = Path(__file__).resolve().parent / "results" / "tafeng-reality-check-split.json"
SIMPLE = ("popular", "buyagain", "ptopfreq", "gptopfreq")
DEFAULT_MODELS = "popular,buyagain,gptopfreq,tifuknn,itemknn,ease,gru4rec,sasrec,repeatnet,blend(sasrec),blend(itemknn),blend(repeatnet)"


@dataclass
class LogSpec:
    """How a user would read one log, and the protocol it is evaluated on."""

    path: str
    protocol: str  # time, last-basket or session
    read: dict[str, Any] = field(default_factory=dict)
    cutoffs: tuple[str, str] | None = None  # (validation, test) for the time protocol, UTC
    note: str = ""


LOGS: dict[str, LogSpec] = {
    "online-retail": LogSpec(
        "online-retail/online_retail.csv.xz",
        "time",
        {"recipe": "online-retail"},
        ("2011-10-01", "2011-11-01"),
        "bundled online-retail recipe: customers only, cancellations netted",
    ),
    "rees46": LogSpec(
        "rees46-multicategory/2019-Oct_head.csv",
        "time",
        {"user_col": "user_id", "item_col": "product_id", "time_col": "event_time", "behavior_col": "event_type"},
        ("2019-10-01 02:30", "2019-10-01 02:40"),
        "views, carts and purchases; a 3-hour window",
    ),
    "rees46-session": LogSpec(
        "rees46-multicategory/2019-Oct_head.csv",
        "session",
        {
            "user_col": "user_id",
            "item_col": "product_id",
            "time_col": "event_time",
            "behavior_col": "event_type",
            "session_col": "user_session",
        },  # fmt: skip
        None,
        "next item within each user's last session (user_session), given everything before it",
    ),
    "tafeng": LogSpec(
        "tafeng-nbr/tafeng_merged.json", "last-basket", {}, None, "baskets in order (basket index = time)"
    ),
    "taobao": LogSpec(
        "taobao-userbehavior/UserBehavior_first814users.csv",
        "time",
        {"recipe": "taobao"},
        ("2017-12-02 16:00", "2017-12-03 04:00"),
        "bundled taobao recipe; all behaviours (pv, cart, fav, buy)",
    ),
    "amazon-mi": LogSpec(
        "amazon-musical-instruments/Musical_Instruments.zip",
        "time",
        {"user_col": "reviewerID", "item_col": "asin", "time_col": "unixReviewTime", "fmt": "jsonl"},
        ("2013-10-01", "2014-01-01"),
        "5-core reviews, day resolution",
    ),
    "diginetica": LogSpec(
        "diginetica/sample_train-item-views.csv",
        "session",
        {"user_col": "session_id", "item_col": "item_id", "time_col": "timeframe", "sep": ";"},
        None,
        "views sample; each session a sequence (timeframe = ms within the session)",
    ),
    "ml-100k": LogSpec(
        "ml-100k/u.data",
        "time",
        {
            "header": False,
            "names": ["user", "item", "rating", "time"],
            "user_col": "user",
            "item_col": "item",
            "time_col": "time",
            "sep": "\t",
        },  # fmt: skip
        ("1998-01-01", "1998-02-01"),
        "ratings by time",
    ),
}


def data_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if os.environ.get("CHRONOREC_DATA"):
        return Path(os.environ["CHRONOREC_DATA"])
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def split_log(name: str, spec: LogSpec, root: Path) -> tuple[Any, Any, dict[str, Any]]:
    """(log, split, description) for one log, through public names only."""
    import chronorec
    from chronorec.evaluation import split as splits

    log = chronorec.EventLog.read(root / spec.path, **spec.read)
    desc: dict[str, Any] = {"events": len(log), "users": log.n_users, "items": log.n_items, "note": spec.note}
    if spec.protocol == "time":
        import pandas as pd

        vcut, cut = (int(pd.Timestamp(c, tz="UTC").timestamp()) for c in spec.cutoffs)
        sp = splits.temporal_split(log, test_cutoff=cut, validation_cutoff=vcut)
        desc["cutoffs"] = {"validation": spec.cutoffs[0], "test": spec.cutoffs[1]}
    elif spec.protocol == "last-basket":
        from chronorec.evaluation.basket import next_basket_split

        sp = next_basket_split(log)
    elif "session_col" in spec.read:
        sp = splits.session_split(log)
    else:  # sessions read as the sequences themselves
        sp = splits.leave_one_out(log)
    return log, sp, desc


SEQUENTIAL = ("gru4rec", "sasrec", "repeatnet")
SETTINGS = {
    "steady": {"lr": 1e-3, "batch_size": 128, "dropout": 0.5, "patience": 10},
    "fast": {"lr": 3e-3, "batch_size": 32, "dropout": 0.2, "patience": 10},
}
"""The two training settings every sequence model is fitted with; validation NDCG@10 keeps one.
``steady`` (the library's learning rate and batch, more dropout) stays past the popularity solution on
small logs (Amazon MI: best epoch 6-33 against 1, Coverage@10 0.08-0.20 against 0.03); ``fast``
takes four times the steps per epoch, which the large logs need within a time budget (Ta Feng).
Both keep the library's patience (10 validations): a sequence model first learns popularity (epochs
1-2), then validation dips for a few epochs while it learns more, and a patience of 3 stopped it in
that dip: on ML-100K SASRec ``fast`` kept epoch 2 (validation NDCG@10 0.1170, Coverage@10 0.04) where
patience 10 reaches epoch 16 (0.1246, Coverage@10 0.23)."""


def make_models(
    names: list[str], epochs: int, threads: int, budget: float, *, baskets: bool, grid: bool
) -> dict[str, list[tuple[str, Any]]]:
    """Per model name, the candidates to fit: ``[(setting, model), ...]``; sequence models one per
    entry of :data:`SETTINGS` (``grid``; else ``fast`` only), other models one. On basket logs each
    position is trained on an item of the next basket (``targets="next_time"``)."""
    from chronorec.models.registry import registry

    base = dict(
        max_len=50, dim=64, epochs=epochs, device="cpu", threads=threads, progress=False, time_budget_s=budget,
        seed=0, targets="next_time" if baskets else "next_event",
    )  # fmt: skip
    extra: dict[str, dict[str, Any]] = {
        "itemknn": {"neighbours": 100, "recency_decay": 0.1},
        "ease": {"l2": 500.0, "threads": threads},
        "gru4rec": {"hidden": 64},
        "sasrec": {"layers": 2, "heads": 2},
        "repeatnet": {"layers": 2, "heads": 2},
    }
    out: dict[str, list[tuple[str, Any]]] = {}
    for n in names:
        if n.startswith("blend("):
            continue
        if n in SEQUENTIAL:
            chosen = SETTINGS if grid else {"fast": SETTINGS["fast"]}
            out[n] = [(k, registry.get(n)(**base, **extra[n], **v)) for k, v in chosen.items()]
        else:
            out[n] = [("-", registry.get(n)(**extra.get(n, {})))]
    return out


def reality_check_cases(log: Any, sp: Any) -> Any:
    """The test cases of the Reality Check's own test users (their split, saved by peers_nbr.py), or None."""
    if not RC_SPLIT.exists():
        return None
    from chronorec.evaluation.split import EvalSet

    wanted = [str(u) for u in json.loads(RC_SPLIT.read_text())["test"]]
    rows = np.flatnonzero(np.isin(log.users.to_external(sp.test.users).astype(str), wanted))
    return EvalSet.build(sp.test.users[rows], sp.test.inputs(rows), sp.test.targets(rows), "rc-test")


def fit_best(label: str, candidates: list[tuple[str, Any]], sp: Any) -> tuple[Any, dict[str, Any]]:
    """Fit every candidate on the training part; keep the best by validation NDCG@10 (under its own
    history protocol). Returns ``((val, setting, model) or None, what each setting gave)``."""
    from chronorec import evaluate_ranking

    kept, tried = None, {}
    for setting, model in candidates:
        try:
            model.fit(sp.train, validation=sp.validation)
        except Exception as e:  # one model failing must not lose the others' results
            print(f"  {label} ({setting}): failed: {e}", flush=True)
            tried[setting] = {"failed": str(e)}
            continue
        val = evaluate_ranking(model, sp.validation, ks=(10,))["NDCG@10"]
        tried[setting] = {"val NDCG@10": val, "best_epoch": (model.fit_info or {}).get("best_epoch")}
        if kept is None or val > kept[0]:
            kept = (val, setting, model)
    return kept, tried


def diagnostics(sp: Any) -> dict[str, float]:
    """What bounds any model on this split, measured: the share of test targets no model can rank from
    training (items with no training event), the share among the 50 most popular training items, the
    test inputs' median length, and the number of test users (the paired CI's width follows it)."""
    counts = np.bincount(sp.train.sequences().items, minlength=sp.train.n_items + 1)
    targets = sp.test.target_items
    top50 = np.argsort(-counts[1:], kind="stable")[:50] + 1
    lengths = np.diff(sp.test.input_offsets)
    return {
        "cold_target_share": float((counts[targets] == 0).mean()) if len(targets) else 0.0,
        "top50_target_share": float(np.isin(targets, top50).mean()) if len(targets) else 0.0,
        "median_test_input_length": float(np.median(lengths)) if len(lengths) else 0.0,
        "n_test_users": float(len(sp.test)),
    }


def _ci(t: dict[str, float]) -> str:
    return f"{t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]"


def run_log(name: str, spec: LogSpec, args: argparse.Namespace) -> dict[str, Any]:
    from chronorec import evaluate_ranking
    from chronorec.evaluation.basket import evaluate_baskets
    from chronorec.evaluation.repeat import repeat_stats
    from chronorec.evaluation.stats import paired_test
    from chronorec.models.repeat import RepeatBlend
    from chronorec.workflows.experiment import peak_rss_mb, provenance

    t_start = time.perf_counter()
    log, sp, desc = split_log(name, spec, data_dir(args.data_dir))
    repeat = {"test": repeat_stats(sp.test), "validation": repeat_stats(sp.validation)}
    desc["diagnostics"] = diagnostics(sp)
    print(
        f"== {name} ({spec.protocol}): {desc['events']} events, {log.n_users} users, {log.n_items} items; "
        f"validation {len(sp.validation)} users, test {len(sp.test)} users; "
        f"test repeat share {repeat['test']['repeat_share']:.3f}",
        flush=True,
    )
    ks = (10, 20)
    rc_cases = reality_check_cases(log, sp) if spec.protocol == "last-basket" else None
    desc["reality_check_test_users"] = len(rc_cases) if rc_cases is not None else None
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    results: dict[str, Any] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {}
    fitted: dict[str, Any] = {}

    def record(label: str, model: Any, fit_s: float) -> None:
        t0 = time.perf_counter()
        test, per_user[label] = evaluate_ranking(model, sp.test, ks=ks, return_per_user=True)
        val = evaluate_ranking(model, sp.validation, ks=ks)
        info = model.fit_info or {}
        if spec.protocol == "last-basket":  # the Reality Check's metrics, all users and their test users
            parts = {"all users": sp.test, "reality-check test users": rc_cases}
            basket = {w: evaluate_baskets(model.score, c, n_items=model.n_items, ks=ks) for w, c in parts.items() if c}
            info = {**info, "basket": basket}
        results[label] = {
            "kind": model.kind,
            "config": model.config.model_dump(),
            "history": model.history_label,
            "test": test,
            "validation": val,
            "fit_seconds": fit_s,
            "eval_seconds": time.perf_counter() - t0,
            "best_epoch": info.get("best_epoch") or (info.get("base") or {}).get("best_epoch"),
            "chosen": {k: info[k] for k in ("decay", "weight", "temperature") if k in info},
            **({"basket": info["basket"]} if "basket" in info else {}),
        }
        print(
            f"  {label}: test NDCG@10 {test['NDCG@10']:.4f} HR@10 {test['HR@10']:.4f} Coverage@10 "
            f"{test['Coverage@10']:.3f} (val NDCG@10 {val['NDCG@10']:.4f}, {model.history_label}; fit {fit_s:.0f} s)",
            flush=True,
        )

    models = make_models(
        names, args.epochs, args.threads, args.budget, baskets=spec.protocol == "last-basket", grid=not args.no_grid
    )
    for label, candidates in models.items():
        t0 = time.perf_counter()
        kept, tried = fit_best(label, candidates, sp)
        if kept is None:
            results[label] = {"failed": "; ".join(t["failed"] for t in tried.values())}
            continue
        fitted[label] = kept[2]
        record(label, kept[2], time.perf_counter() - t0)
        if len(candidates) > 1:
            results[label]["setting"] = kept[1]
            results[label]["settings_tried"] = tried
    for label in names:
        base = label[len("blend(") : -1] if label.startswith("blend(") else None
        if base and base in fitted:
            t0 = time.perf_counter()
            record(label, RepeatBlend.from_model(fitted[base], validation=sp.validation), time.perf_counter() - t0)
    ok = {n: r for n, r in results.items() if "test" in r}
    simple = [n for n in ok if n in SIMPLE]
    learned = [n for n in ok if n not in SIMPLE]
    reference = max(simple, key=lambda n: ok[n]["validation"]["NDCG@10"]) if simple else None
    if reference:
        for n in ok:
            if n != reference:
                ok[n]["vs_reference"] = {
                    m: paired_test(per_user[reference][m], per_user[n][m], n_boot=args.n_boot)
                    for m in ("HR@10", "NDCG@10")
                }
    best = max(learned, key=lambda n: ok[n]["validation"]["NDCG@10"]) if learned else None
    return {
        "provenance": provenance(
            log=name,
            data=spec.path,
            read=spec.read,
            protocol=spec.protocol,
            description=desc,
            split=sp.describe(),
            repeat=repeat,
            n_test_users=len(sp.test),
            n_validation_users=len(sp.validation),
            wall_seconds=time.perf_counter() - t_start,
            peak_rss_mb=peak_rss_mb(),
            threads=args.threads,
            epochs=args.epochs,
            budget_s=args.budget,
        ),
        "results": results,
        "reference": reference,
        "best_learned": best,
        "best_beats_reference": (
            ok[best]["vs_reference"]["NDCG@10"]["ci_low"] > 0 if best and reference and best in ok else None
        ),
    }


def _diagnostics_line(d: dict[str, float] | None) -> str:
    if not d:
        return ""
    return (
        f" Test targets never seen in training: {100 * d['cold_target_share']:.1f}%; among the 50 most popular "
        f"training items: {100 * d['top50_target_share']:.1f}%; median test input {d['median_test_input_length']:.0f} events."
    )


def table(payload: dict[str, Any]) -> str:
    p = payload["provenance"]
    rep, ref, best = p["repeat"], payload["reference"], payload["best_learned"]
    lines = [
        f"### {p['log']} ({p['protocol']} protocol)",
        "",
        f"{p['description']['events']} events, {p['description']['users']} users, {p['description']['items']} items "
        f"({p['description']['note']}); {p['n_validation_users']} validation and {p['n_test_users']} test users; "
        f"repeat share of the test targets {100 * rep['test']['repeat_share']:.1f}% "
        f"(validation {100 * rep['validation']['repeat_share']:.1f}%)."
        + (
            f" Cut-offs: validation {p['description']['cutoffs']['validation']}, test {p['description']['cutoffs']['test']} UTC."
            if "cutoffs" in p["description"]
            else ""
        ),  # fmt: skip
        "",
        f"| model | history | NDCG@10 | HR@10 | Coverage@10 | NDCG@10 vs {ref} [95% CI] | val NDCG@10 | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, r in payload["results"].items():
        if "test" not in r:
            lines.append(f"| {n} | failed: {r['failed'][:80]} | | | | | | |")
            continue
        t = r["test"]
        vs = "(reference)" if n == ref else _ci(r["vs_reference"]["NDCG@10"]) if "vs_reference" in r else "-"
        lines.append(
            f"| {n} | {r['history'].removeprefix('history ')} | {t['NDCG@10']:.4f} | {t['HR@10']:.4f} | "
            f"{t['Coverage@10']:.3f} | {vs} | {r['validation']['NDCG@10']:.4f} | {r['fit_seconds']:.0f} |"
        )
    if any("basket" in r for r in payload["results"].values()):
        lines += [
            "",
            "Next-basket metrics (Li et al.'s definitions: Recall = hits / basket size, NDCG with the whole basket's "
            "ideal DCG, PHR = share of users with a hit), on every user and on the Reality Check's own test users:",
            "",
            "| model | users | Recall@10 | NDCG@10 | PHR@10 | Recall@20 | Recall-rep@10 | Recall-expl@10 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n, r in payload["results"].items():
            for who, b in r.get("basket", {}).items():
                lines.append(
                    f"| {n} | {who} | {b['Recall@10']:.4f} | {b['NDCG@10']:.4f} | {b['PHR@10']:.4f} | "
                    f"{b['Recall@20']:.4f} | {b['Recall-rep@10']:.4f} | {b['Recall-expl@10']:.4f} |"
                )
    if best and ref:
        verdict = "beats" if payload["best_beats_reference"] else "does **not** beat"
        lines += [
            "",
            f"Best learned model by validation NDCG@10: **{best}**; it {verdict} the best simple baseline "
            f"({ref}, chosen on validation) with a 95% CI above zero: {_ci(payload['results'][best]['vs_reference']['NDCG@10'])}.",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", default=",".join(LOGS), help=f"comma-separated, of {', '.join(LOGS)}")
    ap.add_argument("--models", default=DEFAULT_MODELS, help="model kinds, and blend(<kind>) for a repeat blend")
    ap.add_argument("--data-dir", default=None, help="folder of the logs (default: $CHRONOREC_DATA, ../shared/data)")
    ap.add_argument("--epochs", type=int, default=30, help="most epochs of the sequence models (early stopping)")
    ap.add_argument("--budget", type=float, default=300.0, help="training time budget per sequence model, seconds")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples of the paired CIs")
    ap.add_argument("--no-grid", action="store_true", help="fit sequence models with the 'fast' setting only")
    ap.add_argument("--quick", action="store_true", help="2 epochs, 200 resamples: a smoke run")
    ap.add_argument("--out", default="benchmarks/results", help="folder of real-logs-<log>.json")
    ap.add_argument("--doc", default=None, help="also append each table to this Markdown file")
    ap.add_argument("--tables", nargs="*", default=None, help="only print the tables of these saved JSON files")
    args = ap.parse_args()
    if args.tables is not None:
        print("\n\n".join(table(json.loads(Path(f).read_text())) for f in args.tables))
        return
    if args.quick:
        args.epochs, args.n_boot = 2, 200
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in [s.strip() for s in args.logs.split(",") if s.strip()]:
        if name not in LOGS:
            raise SystemExit(f"unknown log {name!r}; known: {', '.join(LOGS)}")
        payload = run_log(name, LOGS[name], args)
        suffix = "-quick" if args.quick else ""
        (out / f"real-logs-{name}{suffix}.json").write_text(json.dumps(payload, indent=2, default=float))
        text = table(payload)
        print(text, flush=True)
        if args.doc:
            with open(args.doc, "a") as f:
                f.write(text + "\n\n")


if __name__ == "__main__":
    main()
