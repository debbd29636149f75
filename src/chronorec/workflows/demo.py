"""The end-to-end demo: synthetic log -> leave-one-out split -> every model -> metrics, plots, recommendations.

``run_demo()`` finishes in well under three minutes on two CPU cores and writes a run folder::

    metrics.json          protocol, seed, data description, git commit, machine, per-model metrics
    recommendations.csv   top-5 per model for three users, with item names
    training_curves.png   loss and validation NDCG@10 per epoch (neural models)
    metrics.png           HR@10 / NDCG@10 per model
    models/<name>/        every trained model (``chronorec.load`` reads it back)
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

KS = (5, 10, 20)

TABLE_METRICS = ("HR@10", "NDCG@10", "MRR@10", "Coverage@10")


# ---------------------------------------------------------------------- models
def demo_models(
    *, quick: bool = False, seed: int = 0, threads: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """The demo's models, small enough to train in seconds on two cores."""
    from chronorec.models import registry

    neural = {
        "epochs": 6 if quick else 20,
        "batch_size": 64,
        "lr": 3e-3,
        "max_len": 30,
        "dim": 32 if quick else 48,
        "dropout": 0.2,
        "patience": 3,
        "seed": seed,
        "threads": threads,
        "progress": progress,
    }
    specs: dict[str, tuple[str, dict[str, Any]]] = {
        "popular": ("popular", {}),
        "itemknn": ("itemknn", {}),
        "ease": ("ease", {}),
        "gru4rec": ("gru4rec", dict(neural)),
        "gru4rec-lstm": ("gru4rec", {**neural, "cell": "lstm"}),
        "sasrec": ("sasrec", {**neural, "layers": 1, "heads": 1}),
    }
    return {name: registry.get(kind)(**params) for name, (kind, params) in specs.items()}


# ---------------------------------------------------------------------- recommendations
def sample_recommendations(
    models: dict[str, Any], log: Any, evalset: Any, *, n_users: int = 3, k: int = 5
) -> pd.DataFrame:
    """Top-k of every model for the first ``n_users`` evaluated users, from the test input histories."""
    rows = np.arange(min(n_users, len(evalset)))
    users_ext = log.users.to_external(evalset.users[rows])
    hist_ext = [log.items.to_external(h) for h in evalset.inputs(rows)]
    frames = []
    for name, model in models.items():
        recs = model.recommend_from_history(hist_ext, k=k, user_ids=list(users_ext))
        recs.insert(0, "model", name)
        frames.append(recs)
    out = pd.concat(frames, ignore_index=True)
    internal = log.items.to_internal(out["item_id"].to_numpy())
    out["item_name"] = log.item_name(internal)
    targets = dict(zip(users_ext, [log.items.to_external(t)[0] for t in evalset.targets(rows)], strict=True))
    out["is_next_item"] = out["item_id"].to_numpy() == out["user_id"].map(targets).to_numpy()
    return out


def _log_recommendations(recs: pd.DataFrame, model: str, log: Any, evalset: Any, n_users: int) -> None:
    rows = np.arange(min(n_users, len(evalset)))
    logger.info("\nSample recommendations (%s, top-%d; * = the held-out next item):", model, recs["rank"].max())
    for r in rows:
        uid = log.users.to_external(evalset.users[[r]])[0]
        hist = evalset.inputs([r])[0]
        last = ", ".join(log.item_name(hist[-3:]))
        target = log.item_name(evalset.targets([r])[0])[0]
        logger.info("  user %s: recent items [%s] -> next: %s", uid, last, target)
        sub = recs[(recs["model"] == model) & (recs["user_id"] == uid)]
        for _, x in sub.iterrows():
            star = "*" if x["is_next_item"] else " "
            logger.info("     %s%2d. %s  (%.3f)", star, x["rank"], x["item_name"], x["score"])


def _summary(split, log, data_params, per_model, best, curves, models, *, quick: bool, seed: int) -> dict[str, Any]:
    """metrics.json's content: protocol, data, per-model records, files and provenance."""
    from chronorec.workflows.experiment import provenance

    return provenance(
        protocol=split.protocol,
        protocol_details="last event = test, second-to-last = validation; full-catalogue ranking; "
        "items of the input history excluded or included as each model's history protocol decided at training "
        "(history_protocol per model); epochs chosen on validation NDCG@10 under that protocol",
        seed=seed,
        quick=quick,
        threads=None,
        ks=list(KS),
        data={
            "generator": "chronorec.datasets.synthetic.make_ecommerce_log",
            "params": data_params,
            "source": log.source,
            "n_events": len(log),
            "n_users": log.n_users,
            "n_items": log.n_items,
            "n_train_events": len(split.train),
            "n_eval_users": len(split.test),
        },
        models=per_model,
        best_model=best,
        files={
            "recommendations": "recommendations.csv",
            "training_curves": curves.name if curves else None,
            "metrics_plot": "metrics.png",
            "models": {n: f"models/{n}" for n in models},
        },
    )


# ---------------------------------------------------------------------- the demo
def run_demo(
    out_dir: str | Path | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole demo and write its run folder (default ``runs/demo-<timestamp>``). Returns metrics.json's content."""
    import torch

    from chronorec.datasets.synthetic import make_ecommerce_log
    from chronorec.plots import plot_metrics, plot_training_curves
    from chronorec.training.runtime import set_threads
    from chronorec.workflows.experiment import metrics_table, run_models
    from chronorec.workflows.run import make_split
    from chronorec.workflows.run_config import SplitConfig

    t_start = time.perf_counter()
    if out_dir is None:
        out_dir = Path("runs") / f"demo-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_threads(threads)
    torch.manual_seed(seed)

    data_params = {
        "n_users": 300 if quick else 500,
        "n_items": 200,
        "n_clusters": 5,
        "mean_length": 30 if quick else 40,
        "seed": seed,
    }
    logger.info("[demo] generating a synthetic e-commerce log %s ...", data_params)
    log = make_ecommerce_log(**data_params)
    split = make_split(log, SplitConfig())  # leave-one-out
    logger.info(
        "[demo] %d events, %d users, %d items; leave-one-out: %d training events, %d test users",
        *(len(log), log.n_users, log.n_items, len(split.train), len(split.test)),
    )

    models = demo_models(quick=quick, seed=seed, threads=threads, progress=progress)
    results = run_models(models, split, ks=KS, out_dir=None, progress=progress)

    # run_models' records (chronorec.workflows.experiment.model_record), configs without the progress switch
    per_model = {
        name: {**res, "config": models[name].config.model_dump(exclude={"progress"})} for name, res in results.items()
    }
    rows = {name: r["test"] for name, r in per_model.items()}

    labels = sorted({models[name].history_label for name in per_model})
    logger.info("\nTest metrics (leave-one-out, full-catalogue ranking, %s):", " / ".join(labels))
    logger.info("%s", metrics_table(per_model))

    # recommendations for three users, with names
    recs = sample_recommendations(models, log, split.test, n_users=3, k=5)
    recs.to_csv(out / "recommendations.csv", index=False)
    best = max(rows, key=lambda n: rows[n].get("NDCG@10", -1.0))
    _log_recommendations(recs, best, log, split.test, 3)

    # plots, models, metrics.json
    curves = plot_training_curves(per_model, out / "training_curves.png", title="chronorec demo: training curves")
    plot_metrics({n: r for n, r in rows.items()}, out / "metrics.png", title="chronorec demo: test HR@10 / NDCG@10")
    for name, model in models.items():
        model.save(out / "models" / name)
    summary = _summary(split, log, data_params, per_model, best, curves, models, quick=quick, seed=seed)
    summary["threads"] = threads
    summary["total_seconds"] = round(time.perf_counter() - t_start, 2)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    logger.info("\n[demo] done in %.0f s; results in %s/", summary["total_seconds"], out)
    return summary


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
