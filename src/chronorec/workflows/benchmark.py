"""Standard-protocol benchmark: leave-one-out, full-catalogue ranking, history items filtered,
best epoch chosen on validation NDCG@10, test read once.

Each (dataset, model) run happens in its own subprocess, so its peak memory is its own.
Results are written as JSON (every figure plus the command, data file, machine and git commit)
and as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Settings per dataset and model. Maximum input length: 200 for ML-1M, 50 for Beauty (the anchors').
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "ml-1m": {
        "popular": {"kind": "popular"},
        "itemknn": {"kind": "itemknn", "neighbours": 200},
        "ease": {"kind": "ease", "l2": 3000.0},
        "gru4rec": {
            **{"kind": "gru4rec", "max_len": 200, "dim": 64, "hidden": 128, "dropout": 0.1, "lr": 3e-3},
            **{"batch_size": 128, "patience": 8, "epochs": 300, "time_budget_s": 1200},
            **{"plateau_factor": 0.5, "plateau_patience": 3},
        },
        "sasrec": {  # run h: 3 layers, 2 heads (runs a-c used 2 layers, 1 head, dropout 0.2, lr 3e-3)
            **{"kind": "sasrec", "max_len": 200, "dim": 64, "layers": 3, "heads": 2, "dropout": 0.1, "lr": 2e-3},
            **{"batch_size": 128, "patience": 12, "epochs": 300, "time_budget_s": 1800, "amp": True},
            **{"plateau_factor": 0.5, "plateau_patience": 3},
        },
        "bert4rec": {  # run y: batch 32 and a constant learning rate (run z, batch 128 with plateau halving, stalled)
            **{"kind": "bert4rec", "max_len": 200, "dim": 64, "layers": 2, "heads": 2, "dropout": 0.1, "lr": 1e-3},
            **{"mask_prob": 0.2, "mask_last_prob": 0.1, "batch_size": 32, "patience": 10, "epochs": 300},
            **{"time_budget_s": 1800, "amp": True, "plateau_factor": None},
        },
        "hstu": {
            **{"kind": "hstu", "max_len": 200, "dim": 64, "layers": 2, "heads": 1, "dropout": 0.2, "lr": 2e-3},
            **{"batch_size": 128, "patience": 10, "epochs": 300, "time_budget_s": 2400, "amp": True},
            **{"plateau_factor": 0.5, "plateau_patience": 3},
        },
    },
    "beauty": {
        "popular": {"kind": "popular"},
        "itemknn": {"kind": "itemknn", "neighbours": 200},
        "ease": {"kind": "ease", "l2": 500.0},
        "gru4rec": {
            **{"kind": "gru4rec", "max_len": 50, "dim": 64, "hidden": 128, "dropout": 0.3, "lr": 2e-3},
            **{"batch_size": 128, "patience": 8, "epochs": 300, "time_budget_s": 1200},
            **{"plateau_factor": 0.5, "plateau_patience": 3},
        },
        "sasrec": {
            **{"kind": "sasrec", "max_len": 50, "dim": 64, "layers": 2, "heads": 1, "dropout": 0.5, "lr": 2e-3},
            **{"batch_size": 128, "patience": 10, "epochs": 300, "time_budget_s": 1500, "amp": True},
            **{"plateau_factor": 0.5, "plateau_patience": 3},
        },
        "bert4rec": {
            **{"kind": "bert4rec", "max_len": 50, "dim": 64, "layers": 2, "heads": 2, "dropout": 0.3, "lr": 1e-3},
            **{"mask_prob": 0.4, "mask_last_prob": 0.1, "batch_size": 128, "patience": 10, "epochs": 300},
            **{"time_budget_s": 1800, "amp": True, "plateau_factor": 0.5, "plateau_patience": 3},
        },
        "hstu": {
            **{"kind": "hstu", "max_len": 50, "dim": 64, "layers": 2, "heads": 1, "dropout": 0.5, "lr": 2e-3},
            **{"batch_size": 128, "patience": 10, "epochs": 300, "time_budget_s": 1500, "amp": True},
            **{"plateau_factor": 0.5, "plateau_patience": 3},
        },
    },
}
DATA_FILES = {"ml-1m": "ml-1m/ml-1m.txt", "ml-1m-full": "ml-1m/ml-1m_full_seq.txt", "beauty": "beauty/Beauty.txt"}
PRESETS["ml-1m-full"] = PRESETS["ml-1m"]


def run_one(
    dataset: str,
    model_name: str,
    *,
    data_dir: str | None,
    params: dict[str, Any],
    threads: int | None,
    seed: int,
    out_json: Path,
    progress: bool,
    save_model: Path | None = None,
    refit: bool = False,
    refit_from: Path | None = None,
) -> dict[str, Any]:
    """Fit and evaluate one model on one dataset in this process.

    ``refit``: after the validated run, fit the same configuration again from scratch on the
    training + validation events, for the epochs and learning rates that validation chose
    (:func:`~chronorec.training.trainer.refit_plan`), and report it, and the two models' ensemble, on test.
    ``refit_from``: only that refit, from a finished run's JSON (its configuration, history and
    best epoch; its saved model, when there, joins the ensemble). The row's training time is the
    search's plus the refit's: the cost of the whole recipe.
    """
    import torch

    from chronorec.datasets.formats import data_dir as resolve_data_dir
    from chronorec.datasets.formats import load_sequence_file
    from chronorec.evaluation.split import leave_one_out
    from chronorec.models import registry
    from chronorec.workflows.experiment import peak_rss_mb, provenance, run_models

    if threads:
        torch.set_num_threads(threads)
    path = Path(resolve_data_dir(data_dir)) / DATA_FILES[dataset]
    t0 = time.perf_counter()
    log = load_sequence_file(path)
    split = leave_one_out(log)
    load_seconds = time.perf_counter() - t0
    search: dict[str, Any] = {}
    if refit_from is not None:  # the recipe is the finished run's, not the preset's
        search = json.loads(Path(refit_from).read_text())
        if "refit" in search or not search.get("history"):
            raise SystemExit(f"{refit_from}: not a validated run with a training history to refit from")
        params = dict(search["config"], kind=search["kind"])
        seed = int(search.get("seed", seed))
    params = dict(params)
    kind = params.pop("kind")
    cls = registry.get(kind)
    if "seed" in cls.Config.model_fields:
        params["seed"] = seed
    if "progress" in cls.Config.model_fields:
        params["progress"] = progress
    if "threads" in cls.Config.model_fields and threads:
        params["threads"] = threads
    if refit_from is None:
        model = cls(**params)
        res = run_models({model_name: model}, split, progress=progress)[model_name]
        search = {**res, "run": "this run", "model": model}
    else:
        search.update(run=str(refit_from), model=_load_if_saved(search.get("saved_model")))
        res = {"kind": kind}
    if refit or refit_from is not None:
        res.pop("validation", None)  # the search model's: it is kept under "search"
        res.update(_refit(cls, params, search, split, seed=seed, progress=progress))
        model = res.pop("_model")
    res.update(
        dataset=dataset,
        data_file=str(path),
        n_users=log.n_users,
        n_items=log.n_items,
        n_events=len(log),
        load_seconds=load_seconds,
        seed=seed,
        peak_rss_mb=peak_rss_mb(),
        protocol="leave-one-out, full-catalogue ranking, history items filtered, best epoch by validation NDCG@10"
        + (
            "; refit on training + validation events for the validated epochs and learning rates"
            if "refit" in res
            else ""
        ),
        max_len=params.get("max_len"),
        provenance=provenance(),
    )
    if save_model is not None:
        model.save(save_model)
        res["saved_model"] = str(save_model)
        if refit and search["model"] is not None:
            search["model"].save(f"{save_model}-search")
            res["search"]["saved_model"] = f"{save_model}-search"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(res, indent=2, default=float))
    return res


REFIT_SEED_OFFSET = 1000  # the refit's seed: another initialisation, so it also adds to an ensemble


def _load_if_saved(path: str | None):
    from chronorec.models.registry import load

    return load(path) if path and Path(path).exists() else None


def _refit(cls, params: dict[str, Any], search: dict[str, Any], split, *, seed: int, progress: bool) -> dict[str, Any]:
    """Refit ``params`` on the training + validation events along the search run's validated
    schedule; the refit model, its test figures, and those of its ensemble with the search model."""
    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.models.ensemble import Ensemble
    from chronorec.training.trainer import refit_plan
    from chronorec.workflows.experiment import DEFAULT_KS

    if split.full is None:
        raise ValueError("this split has no training + validation log to refit on")
    plan = refit_plan(search["history"], search["best_epoch"])
    rparams = {**params, "lr_plan": plan, "seed": seed + REFIT_SEED_OFFSET, "progress": progress}
    rparams.pop("time_budget_s", None)
    model = cls(**rparams)
    if progress:
        print(f"-- refit: {len(plan)} epochs on training + validation events", flush=True)
    t0 = time.perf_counter()
    model.fit(split.full)
    fit_seconds = time.perf_counter() - t0
    n_items = split.train.n_items

    def test_of(m) -> tuple[dict[str, float], float]:
        t1 = time.perf_counter()
        figures = evaluate_ranking(m.score, split.test, n_items=n_items, ks=DEFAULT_KS, exclude_history=True)
        return figures, time.perf_counter() - t1

    test, eval_seconds = test_of(model)
    refit_seconds = model.fit_info["train_seconds"]
    out: dict[str, Any] = {
        "_model": model,
        "config": model.config.model_dump(),
        "test": test,
        "eval_seconds": eval_seconds,
        "fit_seconds": fit_seconds,
        "train_seconds": search["train_seconds"] + refit_seconds,
        "best_epoch": len(plan),
        "epochs_run": len(plan),
        "history": model.fit_info["history"],
        "search": {
            "run": search["run"],
            "test": search.get("test"),
            "validation": search.get("validation"),
            "best_epoch": search["best_epoch"],
            "epochs_run": search.get("epochs_run"),
            "train_seconds": search["train_seconds"],
        },
        "refit": {"seed": rparams["seed"], "epochs": len(plan), "train_seconds": refit_seconds, "lr_plan": plan},
        "recipe": "validated run on training events, then a refit on training + validation events "
        "for the epochs and learning rates validation chose; figures are the refit's",
    }
    if search["model"] is not None:
        ens = Ensemble.from_models([search["model"], model])
        out["ensemble"] = {"members": ["search", "refit"], "test": test_of(ens)[0]}
    if progress:
        print(f"   refit: test NDCG@10 {test['NDCG@10']:.4f} HR@10 {test['HR@10']:.4f}", flush=True)
    return out


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``MODEL.KEY=VALUE`` strings (JSON values, else the raw string) -> {model: {key: value}}."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, _, value = item.partition("=")
        model, _, field = key.partition(".")
        if not field:
            raise SystemExit(f"--set {item!r}: expected MODEL.KEY=VALUE")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        overrides.setdefault(model, {})[field] = parsed
    return overrides


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data | model | HR@10 | NDCG@10 | MRR@10 | train s | epochs (best/run) | eval s (all users) | peak RSS MB |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        t = r["test"]
        ep = f"{r['best_epoch']}/{r['epochs_run']}" if r.get("epochs_run") else "-"
        lines.append(
            f"| {r['dataset']} | {r['model']} | {t['HR@10']:.4f} | {t['NDCG@10']:.4f} | {t['MRR@10']:.4f} | "
            f"{r['train_seconds']:.0f} | {ep} | {r['eval_seconds']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    groups = seed_groups(rows)
    if groups:
        lines += [
            "",
            "Runs repeated over seeds (mean, sample standard deviation):",
            "",
            "| data | model | seeds | NDCG@10 mean | NDCG@10 std | HR@10 mean | HR@10 std |",
            "|---|---|---|---|---|---|---|",
        ]
        for g in groups:
            lines.append(
                f"| {g['dataset']} | {g['model']} | {','.join(map(str, g['seeds']))} | {g['NDCG@10_mean']:.4f} | "
                f"{g['NDCG@10_std']:.4f} | {g['HR@10_mean']:.4f} | {g['HR@10_std']:.4f} |"
            )
    return "\n".join(lines)


def seed_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs that differ only by seed (same data, model and tag), with mean and sample std of the
    test NDCG@10 and HR@10; only groups of two or more seeds."""
    import re

    import numpy as np

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        name = re.sub(r"-seed\d+", "", str(r["model"]))
        groups.setdefault((r["dataset"], name), []).append(r)
    out = []
    for (dataset, name), rs in groups.items():
        if len(rs) < 2:
            continue
        g: dict[str, Any] = {"dataset": dataset, "model": name, "seeds": sorted(int(r.get("seed", -1)) for r in rs)}
        for m in ("NDCG@10", "HR@10"):
            v = np.array([r["test"][m] for r in rs])
            g[f"{m}_mean"], g[f"{m}_std"] = float(v.mean()), float(v.std(ddof=1))
        out.append(g)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="chronorec benchmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--datasets", default="ml-1m,beauty", help="comma-separated: ml-1m, beauty, ml-1m-full")
    p.add_argument("--models", default="popular,itemknn,ease,gru4rec,sasrec", help="comma-separated preset names")
    p.add_argument(
        "--data-dir", default=None, help="benchmark data directory (default: $CHRONOREC_DATA or ../shared/data)"
    )
    p.add_argument("--out", default="benchmarks/results", help="output directory for JSON and Markdown")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.KEY=VALUE",
        help="override a preset value, e.g. sasrec.time_budget_s=600 (JSON values)",
    )
    p.add_argument("--tag", default="", help="suffix for the output file names")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--save-model",
        default=None,
        metavar="DIR",
        help="save each trained model under DIR/<dataset>-<model> (safetensors + JSON), e.g. for `chronorec serve`",
    )
    p.add_argument(
        "--aggregate", action="store_true", help="only rebuild the summary table from the saved runs under --out/runs"
    )
    p.add_argument(
        "--refit",
        action="store_true",
        help="after the validated run, refit on training + validation events for the epochs and learning rates "
        "validation chose, and report the refit (and its ensemble with the validated model)",
    )
    p.add_argument(
        "--refit-from",
        default=None,
        metavar="RUN_JSON",
        help="only the refit, following a finished run's JSON (with --one)",
    )
    p.add_argument("--one", nargs=2, metavar=("DATASET", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    overrides = parse_overrides(args.set)
    out = Path(args.out)
    tag = f"-{args.tag}" if args.tag else ""

    def params_for(dataset: str, model: str) -> dict[str, Any]:
        if model not in PRESETS[dataset]:
            raise SystemExit(f"unknown model preset {model!r}; known: {', '.join(PRESETS[dataset])}")
        return {**PRESETS[dataset][model], **overrides.get(model, {})}

    if args.one:
        dataset, model = args.one
        run_one(
            dataset,
            model,
            data_dir=args.data_dir,
            params=params_for(dataset, model),
            threads=args.threads,
            seed=args.seed,
            out_json=out / "runs" / f"{dataset}-{model}-seed{args.seed}{tag}.json",
            progress=not args.no_progress,
            save_model=Path(args.save_model) / f"{dataset}-{model}" if args.save_model else None,
            refit=args.refit,
            refit_from=Path(args.refit_from) if args.refit_from else None,
        )
        return 0
    if args.refit_from:
        raise SystemExit("--refit-from names one run: use it with --one DATASET MODEL")

    if args.aggregate:
        rows = []
        for f in sorted((out / "runs").glob("*.json")):
            res = json.loads(f.read_text())
            if "dataset" not in res or "test" not in res:
                continue  # not a benchmark run (e.g. the cold-start benchmark's per-model files)
            res["model"] = f.stem[len(res["dataset"]) + 1 :]  # model-seedN[-tag]: every run stays distinguishable
            rows.append(res)
        return _write_summary(out, rows, tag, argv)

    rows = []
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            params_for(dataset, model)  # validate names before starting long runs
            cmd = [
                sys.executable,
                "-m",
                "chronorec.workflows.benchmark",
                "--one",
                dataset,
                model,
                "--out",
                str(out),
                "--seed",
                str(args.seed),
            ] + [f"--set={s}" for s in args.set]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            if args.tag:
                cmd += ["--tag", args.tag]
            if args.no_progress:
                cmd.append("--no-progress")
            if args.refit:
                cmd.append("--refit")
            if args.save_model:
                cmd += ["--save-model", args.save_model]
            print(f"== {dataset} / {model}", flush=True)
            subprocess.run(cmd, check=True)
            res = json.loads((out / "runs" / f"{dataset}-{model}-seed{args.seed}{tag}.json").read_text())
            res["model"] = model
            rows.append(res)
    return _write_summary(out, rows, tag, argv)


def _write_summary(out: Path, rows: list[dict[str, Any]], tag: str, argv: list[str] | None) -> int:
    table = markdown(rows)
    print(table)
    command = " ".join(["chronorec benchmark", *(argv if argv is not None else sys.argv[1:])])
    payload = {"command": command, "runs": rows, "seed_groups": seed_groups(rows)}
    (out / f"summary{tag}.json").write_text(json.dumps(payload, indent=2, default=float))
    (out / f"summary{tag}.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
