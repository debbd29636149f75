"""One sequence model for what and when against the separate models, on Taobao, split by time.

    python benchmarks/joint_model.py [--data-dir /work/shared/data] [--days 3] [--epochs 40]
        [--threads 1] [--out benchmarks/results/joint-model-taobao.json]

Protocol (named beside every figure as "Taobao 814 users, day cut-offs"):

* **Data**: ``taobao-userbehavior/UserBehavior_first814users.csv`` (the 814 complete users; pv / cart /
  fav / buy, epoch seconds), clipped to the dataset's nine days (2017-11-25 .. 12-03, Beijing time) as
  ``chronorec.datasets.temporal.load_taobao`` does. Every event is kept (the timing of buys needs them
  all), but items with fewer than 5 events before the validation cut-off share one *rare* item id: 85 %
  of the events are of items seen fewer than 5 times, which no model can rank. The rare id is an
  input token and a training target like any item, and never a candidate in the rankings.
* **Cut-offs**: each of the last ``--days`` local midnights ``t`` (Dec 3, Dec 2, Dec 1 Beijing) is a test
  cut-off with its own fit; the validation cut-off is ``t - 24 h``. Models are trained on the events
  before the validation cut-off (the time head's censoring point is the end of that window) and choose
  their epochs on validation next-item NDCG@10 (the first catalogue item of each user in the validation
  day); at test they read every event before ``t`` and never score a period they were trained on.
* **(a) next item**: the target is each user's first event at or after ``t`` of a catalogue (not rare)
  item; full-catalogue ranking, ties counted against the target, the history protocol the model decided
  at fit (``auto``: included, the targets are mostly repeats) and the history excluded too. The joint
  model against SASRec with the same settings, seed and inputs (item + behaviour + gap tokens, the
  ``use_context`` codes), and against plain SASRec (items only). Per-user NDCG@10 / HR@10 averaged over
  the user's test days, paired bootstrap 95 % CI over users (``paired_test``).
* **(b) P(buy within 24 h)** at ``t``: cases = every user with an event before ``t``, label = a buy in
  ``[t, t + 24 h)`` (``make_behavior_data``'s). The joint model's ``1 - S(e + 24 h) / S(e)`` for the buy
  mark (``e``: time since the user's last event), uncalibrated; gradient boosting on the temporal
  features (``fit_behavior_model(model="gbm", test_cutoff=t)``: trained on the cut-offs before the
  validation day, Platt-calibrated on it); the user's past buy rate. ROC-AUC / PR-AUC / Brier pooled over
  the days; the paired bootstrap (``paired_bootstrap``, clusters = users, strata = days) of the joint
  model minus each other.
* **(c) next behaviour type**: cases = users with an event in ``[t, t + 24 h)``, label = the type of the
  first; the joint model's behaviour head against the user's past type shares. Accuracy (paired over
  cases) and macro PR-AUC (bootstrap over users).

Writes ``--out`` (JSON: figures, settings, command, data, machine), a markdown table beside it and a
PNG of the paired differences.
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

DAY = 86_400
RARE = -1  # the shared item id of items with fewer than MIN_ITEM_EVENTS events before the validation cut-off
MIN_ITEM_EVENTS = 5
FILE = "taobao-userbehavior/UserBehavior_first814users.csv"
SETTINGS = {
    **{"max_len": 50, "dim": 64, "layers": 2, "heads": 1, "dropout": 0.3, "lr": 3e-3, "batch_size": 32},
    **{"train_windows": "random", "progress": False, "seed": 0},
}
"""Every model's settings; ``patience`` is the epoch cap: every epoch runs and validation keeps the best
(Taobao's validation NDCG@10 dips for several epochs before the models learn the repeats, and a short
patience stops a model in the dip at random: see docs/benchmarks/joint-model.md)."""
CONTEXT = {"use_context": True, "context_features": ["behavior", "gap"]}
MODELS = {"sasrec": {"use_context": False}, "sasrec+context": CONTEXT, "joint": CONTEXT}


def load_frame(data_dir: Path) -> pd.DataFrame:
    from chronorec.datasets.temporal import TAOBAO_END, TAOBAO_START, event_frame

    names = ["user_id", "item_id", "category", "behavior", "timestamp"]
    df = pd.read_csv(data_dir / FILE, header=None, names=names)
    df = df[(df["timestamp"] >= TAOBAO_START) & (df["timestamp"] < TAOBAO_END)]
    return event_frame(df)


def _no_rare(cls: type, rare: int) -> type:
    """``cls`` whose scores never rank the rare item id."""
    import torch

    class NoRare(cls):  # type: ignore[misc, valid-type]
        def score(self, users, histories, context=None):
            s = super().score(users, histories, context)
            s[:, rare] = -torch.inf
            return s

    NoRare.__name__ = cls.__name__
    return NoRare


def _cases(log: Any, before: Any, window: np.ndarray, rare: int, name: str) -> Any:
    """Users with an input before the window: inputs, and the first catalogue item in the window."""
    from chronorec.scoring.cases import EvalSet

    ev = log.events
    order = np.argsort(ev["timestamp"].to_numpy()[window], kind="stable")  # each user's first event first
    users, items = ev["user_idx"].to_numpy()[window][order], ev["item_idx"].to_numpy()[window][order]
    first: dict[int, int] = {}
    for u, i in zip(users, items, strict=True):
        if i != rare and u not in first:
            first[int(u)] = int(i)
    store = before.sequences()
    keep = [u for u in sorted(first) if store.lengths[u] > 0]
    inputs = [store.items[store.offsets[u] : store.offsets[u + 1]] for u in keep]
    return EvalSet.build(np.array(keep), inputs, [np.array([first[u]]) for u in keep], name)


def _contexts(store: Any, users: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Each user's own per-event behaviour codes and times (the input events before the cut-off)."""
    out = []
    for u in users:
        a, b = int(store.offsets[u]), int(store.offsets[u + 1])
        out.append({"behavior": store.behaviors[a:b], "timestamp": store.timestamps[a:b]})
    return out


def _ranking(model: Any, cases: Any, store: Any, n_items: int) -> dict[str, Any]:
    from chronorec.evaluation.ranking import evaluate_ranking

    ctx = {int(u): c for u, c in zip(cases.users, _contexts(store, cases.users), strict=True)}

    def score(users, hist):
        return model.score(users, hist, [ctx[int(u)] for u in users])

    out = {}
    for label, excl in (("included", False), ("excluded", True)):
        m, per = evaluate_ranking(score, cases, n_items=n_items, ks=(10,), exclude_history=excl, return_per_user=True)
        out[label] = {"HR@10": per["HR@10"], "NDCG@10": per["NDCG@10"], "mean": {k: m[k] for k in ("HR@10", "NDCG@10")}}
    return out


def run_day(frame: pd.DataFrame, t: int, epochs: int, threads: int, models: list[str]) -> dict[str, Any]:
    """Fit every model for test cut-off ``t`` and return its per-case outputs."""
    from chronorec.data.eventlog import EventLog
    from chronorec.models.sequential.joint import JointSASRec
    from chronorec.models.sequential.sasrec import SASRec
    from chronorec.temporal.behavior.data import make_behavior_data
    from chronorec.temporal.behavior.model import fit_behavior_model

    t_val = t - DAY
    ev = frame
    counts = ev.loc[ev["timestamp"] < t_val, "item_id"].value_counts()
    common = set(counts.index[counts >= MIN_ITEM_EVENTS])
    df = ev[["user_id", "item_id", "timestamp", "behavior"]].copy()
    df["item_id"] = np.where(df["item_id"].isin(common), df["item_id"], RARE)
    log = EventLog.from_frame(df.reset_index(drop=True))
    rare = int(log.items.to_internal(np.array([RARE]))[0])
    ts = log.events["timestamp"].to_numpy()
    train, full = log.with_events(log.events[ts < t_val]), log.with_events(log.events[ts < t])
    validation = _cases(log, train, (ts >= t_val) & (ts < t), rare, "validation")
    test = _cases(log, full, ts >= t, rare, "test")
    store = full.sequences()
    day: dict[str, Any] = {
        "test_cutoff": str(pd.Timestamp(t, unit="s")) + " UTC",
        "validation_cutoff": str(pd.Timestamp(t_val, unit="s")) + " UTC",
        "n_items": log.n_items,
        "catalogue_items": len(common),
        "n_train_events": int((ts < t_val).sum()),
        "rare_share_of_train_events": float(np.mean(train.events["item_idx"].to_numpy() == rare)),
        "validation_users": len(validation),
        "test_users": len(test),
        "ranking": {},
        "fits": {},
    }
    print(f"{day['test_cutoff']}: {len(validation)} validation / {len(test)} test users", flush=True)
    joint = None
    for name in models:
        cls = _no_rare(JointSASRec if name == "joint" else SASRec, rare)
        t0 = time.perf_counter()
        params = {**SETTINGS, **MODELS[name], "epochs": epochs, "patience": epochs, "threads": threads}
        model = cls(**params).fit(train, validation=validation)
        day["ranking"][name] = _ranking(model, test, store, log.n_items)
        info = model.fit_info
        day["fits"][name] = {
            "seconds": time.perf_counter() - t0,
            "best_epoch": info.get("best_epoch"),
            "best_val_ndcg10": info.get("best_val_ndcg10"),
            "history_protocol": model.history_label,
            "epochs_run": info.get("epochs_run"),
        }
        print(f"  {name}: {day['fits'][name]} test {day['ranking'][name]['included']['mean']}", flush=True)
        if name == "joint":
            joint = model
            day["fits"]["joint"]["validation_buy_24h_roc_auc"] = _validation_buy_auc(model, frame, train, t_val)
    day["test_user_ids"] = test.users

    # (b), (c): every user with an event before t, labels of make_behavior_data
    t0 = time.perf_counter()
    gbm = fit_behavior_model(frame, model="gbm", utc_offset_hours=8.0, test_cutoff=t, threads=threads)
    s = gbm.settings
    data = make_behavior_data(
        frame,
        target="buy",
        horizon_s=DAY,
        cutoffs={"test": [t]},
        freq=s["freq"],
        windows=tuple(s["windows"]),
        utc_offset_hours=8.0,
    )
    day["fits"]["gbm"] = {"seconds": time.perf_counter() - t0, "params": gbm.report["params"]}
    ext_users = data.cases["user_id"].to_numpy()
    p_gbm = gbm.predict(at=t).set_index("user_id")["probability"].reindex(ext_users).to_numpy()
    users = log.users.to_internal(ext_users)
    hist = [store.items[store.offsets[u] : store.offsets[u + 1]] for u in users]
    out = joint.event_outlook(users, hist, _contexts(store, users), np.full(len(users), t), horizons_s=(DAY,))
    b = out["behaviors"].index("buy")
    order = [out["behaviors"].index(c) for c in data.classes]
    shares = data.past_shares / np.maximum(data.past_shares.sum(1, keepdims=True), 1)
    day["buy"] = {
        "users": ext_users,
        "y": data.cases["y_target"].to_numpy(),
        "joint": out["within"][:, b, 0],
        "gbm": p_gbm,
        "past_rate": data.past_rate,
    }
    day["next_type"] = {
        "classes": list(data.classes),
        "y": data.cases["next_type"].to_numpy(),
        "joint": out["next_behavior"][:, order],
        "past_shares": shares,
    }
    return day


def _validation_buy_auc(model: Any, frame: pd.DataFrame, train: Any, t_val: int) -> dict[str, float]:
    """P(buy within 24 h) ROC-AUC at the validation cut-off (inputs: the training events), beside the
    past rate's: what the joint model's buy head reads on validation."""
    from chronorec.evaluation.classification import roc_auc
    from chronorec.temporal.behavior.data import make_behavior_data

    data = make_behavior_data(frame, target="buy", horizon_s=DAY, cutoffs={"test": [t_val]}, utc_offset_hours=8.0)
    users = train.users.to_internal(data.cases["user_id"].to_numpy())
    st = train.sequences()
    hist = [st.items[st.offsets[u] : st.offsets[u + 1]] for u in users]
    out = model.event_outlook(users, hist, _contexts(st, users), np.full(len(users), t_val))
    y = data.cases["y_target"].to_numpy()
    return {
        "joint": roc_auc(y, out["within"][:, out["behaviors"].index("buy"), 0]),
        "past_rate": roc_auc(y, data.past_rate),
    }


def _per_user_mean(days: list[dict[str, Any]], model: str, hist: str, metric: str) -> pd.Series:
    parts = [pd.Series(d["ranking"][model][hist][metric], index=d["test_user_ids"]) for d in days]
    return pd.concat(parts).groupby(level=0).mean().sort_index()


def summarise(days: list[dict[str, Any]]) -> dict[str, Any]:
    from chronorec.evaluation.classification import average_precision, multiclass_metrics, roc_auc
    from chronorec.evaluation.stats import bootstrap, paired_bootstrap, paired_test

    res: dict[str, Any] = {"next_item": {}, "buy_24h": {}, "next_type": {}}
    models = list(days[0]["ranking"])
    for hist in ("included", "excluded"):
        r: dict[str, Any] = {}
        for metric in ("NDCG@10", "HR@10"):
            per = {m: _per_user_mean(days, m, hist, metric) for m in models}
            r[metric] = {m: float(v.mean()) for m, v in per.items()}
            for base in (m for m in models if m != "joint"):
                r[f"{metric} joint - {base}"] = paired_test(per[base].to_numpy(), per["joint"].to_numpy())
        r["users"] = len(per["joint"])
        res["next_item"][hist] = r

    y = np.concatenate([d["buy"]["y"] for d in days])
    users = np.concatenate([d["buy"]["users"] for d in days])
    strata = np.concatenate([np.full(len(d["buy"]["y"]), i) for i, d in enumerate(days)])
    preds = {k: np.concatenate([d["buy"][k] for d in days]) for k in ("joint", "gbm", "past_rate")}
    for k, p in preds.items():
        per_day = [roc_auc(d["buy"]["y"], d["buy"][k]) for d in days]
        res["buy_24h"][k] = {
            "roc_auc_pooled": roc_auc(y, p),
            "roc_auc_mean_of_days": float(np.mean(per_day)),
            "roc_auc_per_day": per_day,
            "pr_auc_pooled": average_precision(y, p),
            "brier": float(np.mean((np.clip(p, 0, 1) - y) ** 2)),
        }
    for other in ("gbm", "past_rate"):
        for metric in ("roc_auc", "pr_auc"):
            res["buy_24h"][f"{metric} joint - {other}"] = paired_bootstrap(
                y, preds["joint"], preds[other], users, strata=strata, metric=metric
            )
    res["buy_24h"]["cases"], res["buy_24h"]["positives"] = len(y), int(y.sum())

    classes = days[0]["next_type"]["classes"]
    yt = np.concatenate([d["next_type"]["y"] for d in days])
    ut = np.concatenate([d["buy"]["users"] for d in days])
    keep = yt >= 0
    yt, ut = yt[keep], ut[keep]
    pt = {k: np.concatenate([d["next_type"][k] for d in days])[keep] for k in ("joint", "past_shares")}
    for k, p in pt.items():
        m = multiclass_metrics(yt, p, classes=classes)
        res["next_type"][k] = {
            key: m[key] for key in ("accuracy", "macro_pr_auc", "macro_roc_auc", "brier") if key in m
        }
    correct = {k: (p.argmax(1) == yt).astype(float) for k, p in pt.items()}
    res["next_type"]["accuracy joint - past_shares"] = paired_test(correct["past_shares"], correct["joint"])

    def macro_ap(idx: np.ndarray, p: np.ndarray) -> float:
        return float(np.nanmean([average_precision(yt[idx] == c, p[idx, c]) for c in range(len(classes))]))

    diffs = bootstrap(lambda idx: macro_ap(idx, pt["joint"]) - macro_ap(idx, pt["past_shares"]), len(yt), groups=ut)
    res["next_type"]["macro_pr_auc joint - past_shares"] = {
        "difference": macro_ap(np.arange(len(yt)), pt["joint"]) - macro_ap(np.arange(len(yt)), pt["past_shares"]),
        "ci_low": float(np.nanquantile(diffs, 0.025)),
        "ci_high": float(np.nanquantile(diffs, 0.975)),
    }
    res["next_type"]["cases"] = int(len(yt))
    return res


def bars(res: dict[str, Any]) -> dict[str, Any]:
    """The issue's bar, read off the summary: next-item NDCG@10 (history as decided at fit) not below each
    SASRec's by the paired CI, and the buy ROC-AUC at least gradient boosting's."""
    ni = res["next_item"]["included"]
    out: dict[str, Any] = {}
    for base in (m for m in ni["NDCG@10"] if m != "joint"):
        nd = ni[f"NDCG@10 joint - {base}"]
        out[f"next_item_ndcg_not_below_{base}"] = {
            "rule": f"the paired 95% CI of NDCG@10 (joint - {base}) reaches 0 or lies above it",
            "met": bool(nd["ci_high"] >= 0),
            "difference": nd["diff"],
            "ci": [nd["ci_low"], nd["ci_high"]],
        }
    auc = res["buy_24h"]["roc_auc joint - gbm"]
    out["buy_24h_roc_auc_at_least_gbm"] = {
        "rule": "ROC-AUC of P(buy within 24 h), pooled over the days: the joint model's at least gradient "
        "boosting's (point estimate; the paired CI of the difference beside it)",
        "met": bool(auc["difference"] >= 0),
        "difference": auc["difference"],
        "ci": [auc["ci_low"], auc["ci_high"]],
    }
    return out


def markdown(payload: dict[str, Any]) -> str:
    res, prov = payload["summary"], payload["provenance"]
    lines = [
        "# Joint what-and-when model against the separate models (Taobao 814 users, day cut-offs)",
        "",
        f"Command: `{prov['command']}`  ",
        f"Commit: {prov['git_commit']}, {prov['started_at']}; {prov['machine']['cpu_count']} cores, torch threads "
        f"{payload['threads']}. Test cut-offs: {', '.join(d['test_cutoff'] for d in payload['days'])}.",
        "",
        "## (a) Next item (first catalogue item after the cut-off, full catalogue, per-user mean over days)",
        "",
        "| history | model | HR@10 | NDCG@10 | NDCG@10 joint - model (95% CI) |",
        "|---|---|---|---|---|",
    ]
    for hist in ("included", "excluded"):
        r = res["next_item"][hist]
        for m in r["NDCG@10"]:
            ci = "–"
            if m != "joint":
                t = r[f"NDCG@10 joint - {m}"]
                ci = f"{t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]"
            lines.append(f"| {hist} | {m} | {r['HR@10'][m]:.4f} | {r['NDCG@10'][m]:.4f} | {ci} |")
    b = res["buy_24h"]
    lines += [
        "",
        f"## (b) P(buy within 24 h) at the cut-off ({b['cases']} cases, {b['positives']} positive)",
        "",
        "| model | ROC-AUC pooled | ROC-AUC per day | PR-AUC | Brier |",
        "|---|---|---|---|---|",
    ]
    for k in ("joint", "gbm", "past_rate"):
        r = b[k]
        days = ", ".join(f"{v:.3f}" for v in r["roc_auc_per_day"])
        lines.append(f"| {k} | {r['roc_auc_pooled']:.4f} | {days} | {r['pr_auc_pooled']:.4f} | {r['brier']:.4f} |")
    for k in ("roc_auc joint - gbm", "roc_auc joint - past_rate", "pr_auc joint - gbm", "pr_auc joint - past_rate"):
        t = b[k]
        lines.append(f"\n{k}: {t['difference']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}], p = {t['p_value']:.3f}")
    n = res["next_type"]
    acc, ap = n["accuracy joint - past_shares"], n["macro_pr_auc joint - past_shares"]
    lines += [
        "",
        f"## (c) Next behaviour type ({n['cases']} cases)",
        "",
        "| model | accuracy | macro PR-AUC | macro ROC-AUC |",
        "|---|---|---|---|",
        *(
            f"| {k} | {n[k]['accuracy']:.4f} | {n[k]['macro_pr_auc']:.4f} | {n[k]['macro_roc_auc']:.4f} |"
            for k in ("joint", "past_shares")
        ),
        "",
        f"accuracy joint - past shares: {acc['diff']:+.4f} [{acc['ci_low']:+.4f}, {acc['ci_high']:+.4f}]; "
        f"macro PR-AUC: {ap['difference']:+.4f} [{ap['ci_low']:+.4f}, {ap['ci_high']:+.4f}]",
        "",
        "## The bar",
        "",
    ]
    for name, bar in payload["bars"].items():
        lines.append(
            f"- {name}: **{'met' if bar['met'] else 'not met'}** ({bar['difference']:+.4f}, "
            f"95% CI [{bar['ci'][0]:+.4f}, {bar['ci'][1]:+.4f}]); rule: {bar['rule']}"
        )
    return "\n".join(lines) + "\n"


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = payload["summary"]
    ni = res["next_item"]["included"]
    rows = [(f"NDCG@10: joint - {m}", ni[f"NDCG@10 joint - {m}"], "diff") for m in ni["NDCG@10"] if m != "joint"]
    rows += [
        ("buy 24 h ROC-AUC: joint - GBM", res["buy_24h"]["roc_auc joint - gbm"], "difference"),
        ("buy 24 h ROC-AUC: joint - past rate", res["buy_24h"]["roc_auc joint - past_rate"], "difference"),
        ("next type accuracy: joint - past shares", res["next_type"]["accuracy joint - past_shares"], "diff"),
    ]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    for i, (_label, r, key) in enumerate(rows):
        d = r[key]
        ax.errorbar(d, i, xerr=[[d - r["ci_low"]], [r["ci_high"] - d]], fmt="o", color="C0" if d >= 0 else "C3")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("difference (paired 95% bootstrap CI)")
    ax.set_title("Joint model vs the separate models, Taobao 814 users, day cut-offs", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return None  # per-case arrays are not written (they are the users' data)
    if isinstance(o, np.generic):
        return o.item()
    return o


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--days", type=int, default=3, choices=range(1, 8), help="test cut-offs (last local midnights)")
    ap.add_argument("--epochs", type=int, default=40, help="epoch cap (patience 5 on validation NDCG@10)")
    ap.add_argument("--models", default=",".join(MODELS), help="models to fit (joint and the SASRecs to compare)")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenMP threads")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/joint-model-taobao.json"))
    args = ap.parse_args(argv)
    if not (args.data_dir / FILE).exists():
        print(f"error: {args.data_dir / FILE} not found (--data-dir: the shared data folder)", file=sys.stderr)
        return 2
    from chronorec.datasets.temporal import TAOBAO_END
    from chronorec.workflows.experiment import provenance

    t0 = time.perf_counter()
    frame = load_frame(args.data_dir)
    last = TAOBAO_END - DAY  # Dec 3 00:00 Beijing: the last cut-off with a full day after it
    cutoffs = [last - k * DAY for k in range(args.days)][::-1]
    models = args.models.split(",")
    if "joint" not in models or any(m not in MODELS for m in models):
        print(f"error: --models is 'joint' and any of {', '.join(MODELS)}, not {args.models!r}", file=sys.stderr)
        return 2
    days = [run_day(frame, t, args.epochs, args.threads, models) for t in cutoffs]
    summary = summarise(days)
    payload = {
        "benchmark": "joint-model",
        "protocol": "Taobao 814 users, day cut-offs (see benchmarks/joint_model.py)",
        "data": str(args.data_dir / FILE),
        "events": len(frame),
        "users": int(frame["user_id"].nunique()),
        "settings": {**SETTINGS, "epochs": args.epochs, "models": MODELS, "min_item_events": MIN_ITEM_EVENTS},
        "threads": args.threads,
        "days": _jsonable([{k: v for k, v in d.items() if k not in ("buy", "next_type")} for d in days]),
        "summary": summary,
        "total_seconds": time.perf_counter() - t0,
        "provenance": provenance(command="python " + " ".join(sys.argv)),
    }
    payload["bars"] = bars(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_jsonable(payload), indent=2, default=float))
    md = markdown(payload)
    args.out.with_suffix(".md").write_text(md)
    plot(payload, args.out.with_suffix(".png"))
    print(md)
    print(f"Wrote {args.out} in {payload['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
