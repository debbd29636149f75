"""The library's use cases: load events, split them, pick a model's settings, train, evaluate.

Each function takes the validated config tree (:mod:`chronorec.workflows.run_config`) or one of its
sections and returns plain results; the command line parses options into a config, calls one of
these and prints what it returns, and the demo, the benchmark runner and the experiment helpers
call the same functions instead of their own copies. Named datasets are resolved in one place
(:func:`resolve_dataset`), so ``--dataset NAME`` means the same data for every command.

The steps every use case shares (loading, splitting, fitting on a split) are in
:mod:`chronorec.workflows.steps`, which the experiment helpers use too, and are re-exported here.
Nothing here prints: lines meant for a person come back in the results (``TrainResult.lines``,
``EvaluateResult.lines``) and progress goes to the ``chronorec`` logger.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chronorec.errors import ConfigError
from chronorec.workflows.steps import (
    data_label,
    describe_log,
    fit_on_split,
    json_default,
    load_event_frame,
    load_events,
    make_split,
    parse_value,
    resolve_dataset,
)

__all__ = [
    "EvaluateResult",
    "TrainResult",
    "data_label",
    "describe_log",
    "evaluate",
    "fit_on_split",
    "json_default",
    "load_event_frame",
    "load_events",
    "make_split",
    "model_entry",
    "paired_test_lines",
    "parse_value",
    "pick_entry",
    "resolve_dataset",
    "train",
    "train_summary",
    "train_target",
]


def pick_entry(cfg: Any, kind: str | None, name: str | None) -> Any:
    """The config's model entry named ``name``, else the first of ``kind``, else the first; None if none applies."""
    entries = list(cfg.models)
    if name is not None:
        entry = next((m for m in entries if m.label == name), None)
        if entry is None:
            raise ConfigError(f"no model named {name!r} in the config; names: {[m.label for m in entries]}")
        return entry
    if kind is not None:
        return next((m for m in entries if m.kind == kind), None)
    if entries:
        return entries[0]
    raise ConfigError("which model? give --kind (popular, itemknn, ease, gru4rec, sasrec) or a config with models")


RUN_KEYS = ("epochs", "resume", "checkpoint_dir", "seed", "progress")
"""The run settings :func:`model_entry` maps onto a model's parameters (None: not given)."""


def model_entry(
    cfg: Any, kind: str | None, name: str | None, params: list[str] | None, run: dict[str, Any] | None = None
) -> Any:
    """The validated model entry to train: the config's entry (:func:`pick_entry`), then the
    ``key=value`` ``params``, then the explicit ``run`` settings (epochs, resume, checkpoint_dir,
    seed, progress; None or absent: not given) and the config's seed and threads."""
    from chronorec.models import registry
    from chronorec.workflows.run_config import model_entry as validate_entry

    run = {key: None for key in RUN_KEYS} | (run or {})
    entry = pick_entry(cfg, kind, name)
    merged: dict[str, Any] = {"kind": kind or entry.kind, "name": name or (entry.name if entry else None)}
    if entry is not None and (kind is None or entry.kind == kind):
        merged.update(entry.params())
    for item in params or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--param {item!r}: expected key=value")
        merged[key.strip()] = parse_value(value)
    fields = registry.get(merged["kind"]).Config.model_fields
    for key in ("epochs", "resume", "checkpoint_dir"):
        if run[key] is not None:
            if key not in fields:
                raise ConfigError(f"--{key.replace('_', '-')} does not apply to model kind {merged['kind']!r}")
            merged[key] = str(run[key]) if isinstance(run[key], Path) else run[key]
    # run-wide settings: --seed / --threads / --progress win; the config's top-level seed fills a gap
    if "seed" in fields and (run["seed"] is not None or "seed" not in merged):
        merged["seed"] = cfg.seed
    if "threads" in fields and cfg.threads is not None:
        merged["threads"] = cfg.threads
    if "progress" in fields and run["progress"] is not None:
        merged["progress"] = run["progress"]
    return validate_entry(merged)


# ---------------------------------------------------------------------- train
@dataclass
class TrainResult:
    """What :func:`train` did: the fitted model, its entry, where it was saved and the lines that say so."""

    model: Any
    entry: Any
    target: Path
    saved: bool = True
    """False on a data-parallel worker other than rank 0, which neither saves nor reports."""
    curve: Path | None = None
    lines: list[str] = field(default_factory=list)


def train_target(cfg: Any, entry: Any, out: Path | None, refit_from: Path | None = None) -> Path:
    """Where the trained model goes: ``out``, else next to the model it refits (never over it), else
    ``<output_dir>/models/<label>``; a file or a foreign folder is refused now, before training."""
    from chronorec.artifacts import check_target

    target = out or Path(cfg.output_dir or "runs") / "models" / entry.label
    if refit_from is not None and out is None:
        target = refit_from.with_name(refit_from.name + "-full")
    check_target(target)
    return target


def train(  # noqa: PLR0913 - the train command's settings, one keyword each
    cfg: Any,
    *,
    kind: str | None = None,
    name: str | None = None,
    params: list[str] | None = None,
    run: dict[str, Any] | None = None,
    out: Path | None = None,
    full: bool = False,
    refit_from: Path | None = None,
    on_start: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train one model and save it: load the config's data, fit on the training part of its split
    (validation for early stopping) or, with ``full``, on all events, record the split, save, and draw
    the training curve.

    ``refit_from``: refit the model saved there on all events (implies ``full``), with its settings,
    the epochs its validation chose and its history protocol; ``params`` still override them.
    ``on_start`` gets the line saying what is being trained, before the fit. Under torchrun only
    rank 0 saves; the other ranks get a result with ``saved=False``.
    """
    from chronorec.models import registry
    from chronorec.training import distributed
    from chronorec.training.runtime import set_threads

    if refit_from is not None:  # the saved model's settings first; params and epochs still override
        from chronorec.workflows.experiment import refit_settings

        kind, chosen = refit_settings(refit_from)
        params = [f"{k}={json.dumps(v)}" for k, v in chosen.items()] + list(params or [])
        full = True
    entry = model_entry(cfg, kind, name, params, run)
    set_threads(cfg.threads)
    target = train_target(cfg, entry, out, refit_from)
    log = load_events(cfg)
    model = registry.get(entry.kind)(**entry.params())
    if on_start is not None:
        on_start(
            f"Training {model!r} on {data_label(cfg)} ({len(log)} events, {log.n_users} users, {log.n_items} items)"
        )
    sp = None if full else make_split(log, cfg)
    fit_on_split(model, sp, log)
    if not distributed.is_main():  # under torchrun: rank 0 saves and reports
        distributed.shutdown()
        return TrainResult(model, entry, target, saved=False)
    model.save(target)
    result = TrainResult(model, entry, target, lines=train_summary(model, entry, sp, target))
    from chronorec.training.curves import write_training_curve

    result.curve = write_training_curve(model, target, title=f"{entry.label} on {data_label(cfg)}")
    if result.curve is not None:
        result.lines.append(f"Training curve (loss and validation per epoch): {result.curve}")
    distributed.shutdown()  # under torchrun: the other ranks wait for the save
    return result


def train_summary(model: Any, entry: Any, split: Any, target: Path) -> list[str]:
    """The lines that report a trained model: its fit, history protocol, leak-check record and folder."""
    if split is None:
        protocol = "all events"
    else:
        protocol = f"{split.protocol}: {len(split.train)} training events, validation on {len(split.validation)} users"
    info = model.fit_info or {}
    line = f"Trained {entry.label} ({protocol})"
    if info.get("train_seconds") is not None:
        line += f" in {info['train_seconds']:.1f} s"
    if info.get("best_epoch") is not None:
        line += f", best epoch {info['best_epoch']}"
    if info.get("best_val_ndcg10") is not None:
        metric = info.get("validation_metric") or "NDCG@10"  # next-basket splits: the Reality Check's NDCG
        line += f", validation {metric} {info['best_val_ndcg10']:.4f} ({model.history_label})"
    chosen = {k: info[k] for k in ("decay", "weight", "temperature") if info.get(k) is not None}
    chosen |= info.get("chosen") or {}  # e.g. TIFU-KNN's hyper-parameters
    if chosen:  # buy-again's decay, a repeat blend's weight and temperature
        line += ", chosen on validation: " + ", ".join(f"{k} {v:g}" for k, v in chosen.items())
    lines = [line]
    if model.history_protocol is not None:
        p = model.history_protocol
        lines.append(
            f"History protocol: {model.history_label} ({p['mode']}: {p['reason']}); recorded with the model, "
            "evaluate, calibrate, recommend and serve use it"
        )
    record = model.training_data
    lines.append(
        f"Recorded for leak checks: {record['n_events']} training events up to {record['last_event']}, "
        f"split {record['split']['protocol']}, data {record['fingerprint'][:12]}, catalogue {record['catalogue_hash'][:12]}"
    )
    lines.append(f"Saved the model to {target}/")
    return lines


# ---------------------------------------------------------------------- evaluate
@dataclass
class EvaluateResult:
    """What :func:`evaluate` measured: the results payload, the JSON file it was saved to, and the
    lines that report it as ``(text, to_stderr)`` in order (warnings go to stderr)."""

    payload: dict[str, Any]
    target: Path
    lines: list[tuple[str, bool]] = field(default_factory=list)


def evaluate(cfg: Any, *, part: str = "test", out: Path | None = None, ks_given: bool = True) -> EvaluateResult:
    """Evaluate the config's saved models (``evaluation.model_dirs``) on a split of its data, full-catalogue
    ranking, compared in one table with paired tests (:func:`chronorec.workflows.experiment.compare_models`;
    the next-basket split: :func:`chronorec.workflows.basket.compare_basket_models`), and save the
    results as JSON (``out``, default ``<output_dir>/evaluate-<time>.json``).

    ``ks_given``: whether ``evaluation.ks`` was asked for (the next-basket table has its own default cut-offs).
    """
    from chronorec.training.runtime import set_threads
    from chronorec.workflows.experiment import compare_models, headline_k, metrics_table

    if part not in ("test", "validation"):
        raise ConfigError("--part must be 'test' or 'validation'")
    if not cfg.evaluation.model_dirs:
        raise ConfigError("no models: give one or more saved model folders")
    set_threads(cfg.threads)
    log = load_events(cfg)
    sp = make_split(log, cfg)
    if sp.protocol == "next-basket":
        return _evaluate_baskets(cfg, log, sp, part, out, ks_given)
    cases = sp.test if part == "test" else sp.validation
    ev = cfg.evaluation
    payload = compare_models(
        ev.model_dirs, log, cases, ks=ev.ks, exclude_history=ev.history if ev.exclude_history is None else ev.exclude_history,
        part=part, validation=sp.validation, checked_split=sp, allow_leak=ev.allow_leak, protocol=sp.protocol,
        data=data_label(cfg), data_description=describe_log(log), split=cfg.split.model_dump(), seed=cfg.seed,
    )  # fmt: skip
    hist, rep = payload["history_protocol"], payload["repeat"]
    lines = [
        f"{sp.protocol} on {data_label(cfg)}: {len(cases)} {part} users, {log.n_items} items, "
        f"full-catalogue ranking, history {hist['used']} ({hist['mode']}: {hist['reason']})",
        f"Repeats: {100 * rep['repeat_share']:.1f}% of the {int(rep['n_targets'])} {part} targets are already in the "
        f"user's history ({100 * rep['repeat_cases']:.1f}% of users)"
        + ("; excluded, they can never be hit" if hist["exclude"] and rep["repeat_share"] > 0 else ""),
    ]
    table = metrics_table(payload["results"], k=headline_k(ev.ks), part=part)
    return _evaluation_saved(cfg, payload, out, lines, table)


def _evaluate_baskets(cfg: Any, log: Any, sp: Any, part: str, out: Path | None, ks_given: bool) -> EvaluateResult:
    """:func:`evaluate` on the next-basket split: the next-basket table (chronorec.evaluation.basket)."""
    from chronorec.evaluation.basket import basket_table
    from chronorec.scoring.basket_metrics import BASKET_KS
    from chronorec.workflows.basket import compare_basket_models

    ev = cfg.evaluation
    ks = ev.ks if ks_given else list(BASKET_KS)
    cases = sp.test if part == "test" else sp.validation
    payload = compare_basket_models(
        ev.model_dirs, log, sp, part=part, ks=ks, allow_leak=ev.allow_leak, data=data_label(cfg),
        data_description=describe_log(log), split=cfg.split.model_dump(), seed=cfg.seed,
    )  # fmt: skip
    first = next(iter(payload["results"].values()))[part]
    line = (
        f"next-basket on {data_label(cfg)}: {len(cases)} {part} users (whole last basket, mean "
        f"{first['mean_basket_size']:.1f} items, {100 * first['repeat_target_share']:.1f}% bought before), "
        f"{log.n_items} items, full-catalogue ranking, history included; baskets by {sp.settings['basket']}"
    )
    return _evaluation_saved(cfg, payload, out, [line], basket_table(payload["results"], ks=ks, part=part))


def _evaluation_saved(
    cfg: Any, payload: dict[str, Any], out: Path | None, head: list[str], table: str
) -> EvaluateResult:
    """Save an evaluation's payload as JSON and gather its report: head lines, warnings, table, paired tests."""
    target = out or Path(cfg.output_dir or "runs") / f"evaluate-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, default=json_default))
    lines = [(line, False) for line in head] + [(f"Warning: {w}", True) for w in payload["warnings"]]
    lines += [(line, False) for line in [table, *paired_test_lines(payload), f"Saved the results to {target}"]]
    return EvaluateResult(payload, target, lines)


def paired_test_lines(payload: dict[str, Any]) -> list[str]:
    """The paired tests of an evaluation against its first model, one line per model and metric."""
    significance = payload["significance"]
    if not significance:
        return []
    first = next(iter(payload["results"]))
    lines = [
        f"Paired tests against {first} over the same {payload['n_cases']} users "
        f"(difference of the means, 95% bootstrap CI, paired t-test and Wilcoxon p):"
    ]
    for label, tests in significance.items():
        for metric, t in tests.items():
            lines.append(
                f"  {label} {metric}: {t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}], "
                f"t p={t['t_test_p']:.2g}, Wilcoxon p={t['wilcoxon_p']:.2g}"
            )
    return lines
