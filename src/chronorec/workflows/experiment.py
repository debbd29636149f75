"""Train several models on one split and evaluate them the same way.

Used by the demo, ``chronorec evaluate`` and the benchmarks, so every figure comes from the
same protocol: the model is fitted on ``split.train`` with ``split.validation`` for early
stopping, then read once on ``split.test``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chronorec.errors import ConfigError
from chronorec.models.base import Recommender
from chronorec.scoring.cases import EvalSet, Split
from chronorec.scoring.ranking_metrics import DEFAULT_KS, evaluate_ranking
from chronorec.workflows.steps import fit_on_split

logger = logging.getLogger(__name__)


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


def model_record(model: Recommender, figures: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The results entry of one model, the same in the demo, ``evaluate`` and the benchmark: kind,
    config, the figures by part (``{"test": {...}}``), the training facts of ``model.fit_info``,
    then ``extra`` (which may replace any of them)."""
    info = model.fit_info or {}
    return {
        "kind": model.kind,
        "config": model.config.model_dump(),
        **figures,
        "train_seconds": info.get("train_seconds", float("nan")),
        "best_epoch": info.get("best_epoch"),
        "epochs_run": info.get("epochs_run"),
        "history": info.get("history", []),
        **extra,
    }


def run_models(
    models: dict[str, Recommender],
    split: Split,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    exclude_history: bool | str | None = None,
    out_dir: str | Path | None = None,
    save_models: bool = False,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Fit each model on ``split.train`` (validation for early stopping) and evaluate on test.

    ``exclude_history``: None (the default) scores each model under the history protocol it
    decided at fit (the one its validation metric used); True / False, or ``"exclude"``,
    ``"include"``, ``"auto"`` (see :func:`chronorec.scoring.history.decide_history`) impose one.
    Each record says which was used (``history_protocol``) and the share of test targets already in
    the history (``repeat``)."""
    from chronorec.scoring.history import decide_history, repeat_stats

    results: dict[str, dict[str, Any]] = {}
    n_items = split.train.n_items
    imposed = None if exclude_history is None else decide_history(exclude_history, split.validation)
    decision = imposed
    repeat = {"test": repeat_stats(split.test), "validation": repeat_stats(split.validation)}
    for name, model in models.items():
        logger.info("-- %s: fitting %r", name, model)
        t0 = time.perf_counter()
        fit_on_split(model, split)
        fit_seconds = time.perf_counter() - t0
        decision = imposed or model_history(model)
        exclude = decision.exclude
        t1 = time.perf_counter()
        test = evaluate_ranking(model.score, split.test, n_items=n_items, ks=ks, exclude_history=exclude)
        eval_seconds = time.perf_counter() - t1
        val = evaluate_ranking(model.score, split.validation, n_items=n_items, ks=ks, exclude_history=exclude)
        results[name] = model_record(
            model,
            {"test": test, "validation": val},
            fit_seconds=fit_seconds,
            train_seconds=model.fit_info.get("train_seconds", fit_seconds),
            eval_seconds=eval_seconds,
            peak_rss_mb=peak_rss_mb(),
            history_protocol=decision.to_dict(),  # "history" is the training curve
            repeat=repeat,
        )
        logger.info(
            "   %s: test NDCG@10 %.4f HR@10 %.4f (fit %.1fs, eval %.2fs, %s)",
            *(name, test["NDCG@10"], test["HR@10"], fit_seconds, eval_seconds, decision.describe()),
        )
        if out_dir is not None and save_models:
            model.save(Path(out_dir) / "models" / name)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        payload = {
            "protocol": split.protocol,
            "exclude_history": decision.exclude if decision else None,
            "history_protocol": decision.to_dict() if decision else None,
            "repeat": repeat,
            "ks": list(ks),
            "results": results,
        }
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


def evalset_for_model(model: Recommender, log: Any, evalset: EvalSet) -> EvalSet:
    """The eval cases of ``log`` in the model's own id space (ids unknown to the model: dropped from
    inputs, missed as targets)."""
    import numpy as np

    lut = np.zeros(log.n_items + 1, dtype=np.int64)
    lut[1:] = model.items.to_internal(log.items.external_ids)
    users = model.users.to_internal(log.users.to_external(evalset.users)) if len(evalset) else evalset.users
    items = lut[evalset.input_items]
    rows = np.repeat(np.arange(len(evalset)), np.diff(evalset.input_offsets))
    keep = items > 0
    offsets = np.zeros(len(evalset) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=len(evalset)), out=offsets[1:])
    targets = lut[evalset.target_items]
    return EvalSet(users, offsets, items[keep], evalset.target_offsets, targets, evalset.name, evalset.protocol)


def headline_k(ks: Sequence[int]) -> int:
    """The K of the headline table and the paired tests: 10 when evaluated, else the first K."""
    return 10 if 10 in ks else list(ks)[0]


def paired_tests(names: list[str], per_case: dict[str, dict[str, Any]], k: int) -> dict[str, dict[str, Any]]:
    """Paired tests of every model against the first one on per-user NDCG@k and HR@k."""
    from chronorec.evaluation.stats import paired_test

    out: dict[str, dict[str, Any]] = {}
    base = per_case.get(names[0]) if names else None
    for label in names[1:]:
        other = per_case[label]
        out[label] = {m: paired_test(base[m], other[m]) for m in (f"NDCG@{k}", f"HR@{k}") if m in base and m in other}
    return out


def load_models(dirs: Sequence[Path]) -> dict[str, Recommender]:
    """Saved model folders by label: the folder name, or the whole path when two names repeat."""
    from chronorec.models.registry import load

    if not dirs:
        raise ConfigError("no models: give one or more saved model folders")
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):
        names = [str(d) for d in dirs]
    return {label: load(d) for label, d in zip(names, dirs, strict=True)}


def refit_settings(model_dir: str | Path) -> tuple[str, dict[str, Any]]:
    """(kind, parameters) that refit the model saved in ``model_dir`` on every event, as serving
    needs it: its configuration, the epochs its validation chose (``best_epoch``), the weights a
    blend chose, and its recorded history protocol, so nothing is chosen again without validation."""
    from chronorec.models.registry import load

    model = load(model_dir, device="cpu")
    if model.kind == "ensemble":
        raise ConfigError(f"{model_dir}: refit each member of an ensemble, then combine them with chronorec ensemble")
    params = model.config.model_dump(exclude={"kind", "checkpoint_dir", "resume"})
    info = model.fit_info or {}
    if "epochs" in params and info.get("best_epoch"):
        params["epochs"] = int(info["best_epoch"])
    if isinstance(params.get("base"), dict) and (info.get("base") or {}).get("best_epoch"):
        params["base"] = {**params["base"], "epochs": int(info["base"]["best_epoch"])}
    for key in ("decay", "weight", "temperature"):  # chosen on validation: kept, not chosen again
        if key in params and params[key] is None and info.get(key) is not None:
            params[key] = info[key]
    if model.history_protocol is not None:
        params["history"] = "exclude" if model.exclude_history else "include"
    return model.kind, params


def model_history(model: Recommender) -> Any:
    """The :class:`~chronorec.scoring.history.HistoryDecision` a fitted model recorded."""
    from chronorec.scoring.history import HistoryDecision

    p = model.history_protocol
    if p is None:
        return HistoryDecision(
            "model", model.exclude_history, "saved before the protocol was recorded: its kind's default"
        )
    reason = f"{p.get('reason')}; recorded with the model at fit"
    return HistoryDecision(str(p.get("mode", "auto")), bool(p["exclude"]), reason, p.get("validation_repeat_share"))


def evaluation_history(
    mode: bool | str | None, models: dict[str, Recommender], validation: EvalSet | None
) -> tuple[Any, list[str]]:
    """(decision, warnings): the one history protocol under which ``models`` are compared.

    ``None`` / ``"auto"``: the protocol the models recorded at fit (refused when they differ: the
    comparison would mix protocols); models saved before it was recorded fall back to the ``auto``
    rule on ``validation``. ``"exclude"`` / ``"include"`` / a bool: imposed, with a warning for every
    model whose epochs were chosen under the other protocol."""
    from chronorec.scoring.history import decide_history

    recorded = {label: m.history_protocol for label, m in models.items()}
    if mode is None or mode == "auto":
        if not all(p is not None for p in recorded.values()):
            return decide_history("auto", validation), []
        if len({bool(p["exclude"]) for p in recorded.values()}) > 1:
            listed = ", ".join(f"{label}: {m.history_label}" for label, m in models.items())
            raise ConfigError(
                f"the models were trained under different history protocols ({listed}); compare them under one "
                "with --history include or --history exclude, or retrain them with the same -p history=..."
            )
        return model_history(next(iter(models.values()))), []
    decision = decide_history(mode, validation)
    warnings = [
        f"{label} chose its epochs with {m.history_label}, but is evaluated with history {decision.label}"
        for label, m in models.items()
        if recorded[label] is not None and bool(recorded[label]["exclude"]) != decision.exclude
    ]
    return decision, warnings


def compare_models(  # noqa: PLR0913 - the evaluation's options, one keyword each
    model_dirs: Sequence[str | Path],
    log: Any,
    cases: EvalSet,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    exclude_history: bool | str | None = None,
    part: str = "test",
    validation: EvalSet | None = None,
    checked_split: Split | None = None,
    allow_leak: bool = False,
    **context: Any,
) -> dict[str, Any]:
    """Evaluate saved models on the same cases of ``log`` (full-catalogue ranking, ids matched by
    name) and test every model against the first one, paired over the same users.

    ``exclude_history``: None or ``"auto"`` (the default): the history protocol the models recorded
    when they were fitted (:func:`evaluation_history`); ``"exclude"``, ``"include"`` or a bool
    impose one (with a warning for each model whose epochs were chosen under the other). With
    ``checked_split`` (the split ``cases`` come from) every model is first checked by
    :func:`chronorec.evaluation.leak.check_evaluation`: a leaked evaluation raises
    :class:`~chronorec.evaluation.leak.EvaluationRefused` unless ``allow_leak``.

    Returns the provenance record (command, version, commit, machine) with ``context`` (e.g. the
    protocol, data and split), ``part``, ``ks``, ``exclude_history``, ``history_protocol`` (the decision and
    its reason), ``repeat`` (share of the targets already in the history), ``n_cases``, ``results``
    (one :func:`model_record` per model, labelled by folder name, with its ``leak_check``),
    ``warnings`` and ``significance`` (per model after the first: :func:`~chronorec.evaluation.stats.paired_test`
    of NDCG@K and HR@K at :func:`headline_k`).
    """
    from chronorec.evaluation.leak import check_evaluation
    from chronorec.scoring.history import repeat_stats

    if part not in ("test", "validation"):
        raise ConfigError(f"part must be 'test' or 'validation', not {part!r}")
    dirs = [Path(p) for p in model_dirs]
    models = load_models(dirs)
    names = list(models)
    decision, history_warnings = evaluation_history(exclude_history, models, validation)
    checks = {}
    if checked_split is not None:  # every model checked before any is scored: a refusal costs nothing
        checks = {
            label: check_evaluation(label, m, log, checked_split, cases, part=part, allow_leak=allow_leak)
            for label, m in models.items()
        }
    results: dict[str, Any] = {}
    per_case: dict[str, dict[str, Any]] = {}
    for (label, model), d in zip(models.items(), dirs, strict=True):
        metrics, per_case[label] = evaluate_ranking(
            model.score,
            evalset_for_model(model, log, cases),
            n_items=model.n_items,
            ks=ks,
            exclude_history=decision.exclude,
            return_per_user=True,
        )
        extra = {"leak_check": checks[label]} if label in checks else {}
        results[label] = model_record(model, {part: metrics}, model_dir=str(d), **extra)
    return provenance(
        **context,
        part=part,
        ks=list(ks),
        exclude_history=decision.exclude,
        history_protocol=decision.to_dict(),
        repeat=repeat_stats(cases),
        n_cases=len(cases),
        results=results,
        warnings=history_warnings + [w for c in checks.values() for w in c["warnings"]],
        significance=paired_tests(names, per_case, headline_k(ks)),
    )
