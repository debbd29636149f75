"""Train several models on one split and evaluate them the same way.

Used by the demo, ``chronorec evaluate`` and the benchmarks, so every figure comes from the
same protocol: the model is fitted on ``split.train`` with ``split.validation`` for early
stopping, then read once on ``split.test``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chronorec.evaluation.ranking import DEFAULT_KS, evaluate_ranking
from chronorec.evaluation.split import Split
from chronorec.models.base import Recommender


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


def git_commit() -> str | None:
    """HEAD of the source checkout, with ``-dirty`` appended when tracked files have uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=here, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=here,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    if not commit:
        return None
    return commit + ("-dirty" if dirty.stdout.strip() else "")


def machine_info() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }


def provenance(**extra: Any) -> dict[str, Any]:
    from chronorec import __version__

    return {
        "command": " ".join(sys.argv),
        "chronorec_version": __version__,
        "git_commit": git_commit(),
        "machine": machine_info(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def run_models(
    models: dict[str, Recommender],
    split: Split,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    exclude_history: bool = True,
    out_dir: str | Path | None = None,
    save_models: bool = False,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Fit each model on ``split.train`` (validation for early stopping) and evaluate on test."""
    results: dict[str, dict[str, Any]] = {}
    n_items = split.train.n_items
    for name, model in models.items():
        if progress:
            print(f"-- {name}: fitting {model!r}", flush=True)
        t0 = time.perf_counter()
        model.fit(split.train, validation=split.validation)
        fit_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        test = evaluate_ranking(model.score, split.test, n_items=n_items, ks=ks, exclude_history=exclude_history)
        eval_seconds = time.perf_counter() - t1
        val = evaluate_ranking(model.score, split.validation, n_items=n_items, ks=ks, exclude_history=exclude_history)
        results[name] = {
            "kind": model.kind,
            "config": model.config.model_dump(),
            "test": test,
            "validation": val,
            "fit_seconds": fit_seconds,
            "train_seconds": model.fit_info.get("train_seconds", fit_seconds),
            "eval_seconds": eval_seconds,
            "best_epoch": model.fit_info.get("best_epoch"),
            "epochs_run": model.fit_info.get("epochs_run"),
            "history": model.fit_info.get("history", []),
            "peak_rss_mb": peak_rss_mb(),
        }
        if progress:
            print(
                f"   {name}: test NDCG@10 {test['NDCG@10']:.4f} HR@10 {test['HR@10']:.4f} "
                f"(fit {fit_seconds:.1f}s, eval {eval_seconds:.2f}s)",
                flush=True,
            )
        if out_dir is not None and save_models:
            model.save(Path(out_dir) / "models" / name)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        payload = {"protocol": split.protocol, "exclude_history": exclude_history, "ks": list(ks), "results": results}
        payload["provenance"] = provenance()
        (out / "metrics.json").write_text(json.dumps(payload, indent=2, default=float))
    return results


def metrics_table(results: dict[str, dict[str, Any]], *, k: int = 10, part: str = "test") -> str:
    """A Markdown table: one row per model."""
    head = f"| model | HR@{k} | NDCG@{k} | MRR@{k} | Coverage@{k} | train s | epochs |\n|---|---|---|---|---|---|---|"
    rows = []
    for name, r in results.items():
        m = r[part]
        ep = r.get("best_epoch")
        run = r.get("epochs_run")
        epochs = f"{ep}/{run}" if run else "-"
        rows.append(
            f"| {name} | {m[f'HR@{k}']:.4f} | {m[f'NDCG@{k}']:.4f} | {m[f'MRR@{k}']:.4f} | "
            f"{m[f'Coverage@{k}']:.3f} | {r['train_seconds']:.1f} | {epochs} |"
        )
    return "\n".join([head, *rows])
