"""Model commands: ``train``, ``evaluate`` (chronorec.workflows.experiment.compare_models) and ``ensemble``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from chronorec.cli.common import (
    BehaviorColOpt,
    ConfigOpt,
    ContextColOpt,
    CutoffOpt,
    DataDirOpt,
    DataOpt,
    DatasetOpt,
    ItemColOpt,
    MinEventsOpt,
    SeedOpt,
    SplitOpt,
    ThreadsOpt,
    TimeColOpt,
    TimeUnitOpt,
    UserColOpt,
    ValCutoffOpt,
    ValueColOpt,
    data_label,
    field_option,
    json_default,
    load_config,
    load_events,
    make_split,
    parse_value,
    run_overrides,
    section_overrides,
    set_threads,
    timestamp,
)
from chronorec.workflows.sections import EnsembleConfig


# ---------------------------------------------------------------------- train
def _pick_entry(cfg: Any, kind: str | None, name: str | None) -> Any:
    """The config's model entry named by --name, else of --kind, else the first; None if none applies."""
    from chronorec.errors import ConfigError

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


def _model_params(cfg: Any, kind: str | None, name: str | None, param: list[str] | None, run: dict[str, Any]) -> Any:
    """The validated model entry: the config's entry, then --param, then the explicit run options."""
    from chronorec.errors import ConfigError
    from chronorec.models import registry
    from chronorec.workflows.config import model_entry

    entry = _pick_entry(cfg, kind, name)
    params: dict[str, Any] = {"kind": kind or entry.kind, "name": name or (entry.name if entry else None)}
    if entry is not None and (kind is None or entry.kind == kind):
        params.update(entry.params())
    for item in param or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--param {item!r}: expected key=value")
        params[key.strip()] = parse_value(value)
    fields = registry.get(params["kind"]).Config.model_fields
    for key in ("epochs", "resume", "checkpoint_dir"):
        if run[key] is not None:
            if key not in fields:
                raise ConfigError(f"--{key.replace('_', '-')} does not apply to model kind {params['kind']!r}")
            params[key] = str(run[key]) if isinstance(run[key], Path) else run[key]
    # run-wide settings: --seed / --threads / --progress win; the config's top-level seed fills a gap
    if "seed" in fields and (run["seed"] is not None or "seed" not in params):
        params["seed"] = cfg.seed
    if "threads" in fields and cfg.threads is not None:
        params["threads"] = cfg.threads
    if "progress" in fields and run["progress"] is not None:
        params["progress"] = run["progress"]
    return model_entry(params)


def train(
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Model kind: popular, buyagain, itemknn, ease, gru4rec, sasrec, repeat-blend, ..."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder to save the trained model to (default: <output_dir>/models/<name>)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Pick this entry of the config's models list (default: the first, or --kind)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Model parameter as key=value (repeatable), e.g. -p dim=64 -p cell=lstm."),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Maximum training epochs (neural models).")] = None,
    resume: Annotated[
        bool | None,
        typer.Option("--resume/--no-resume", help="Resume from the last checkpoint in --checkpoint-dir."),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint-dir", help="Folder for training checkpoints (neural models).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Train on all events (no held-out split, so no early stopping).")
    ] = False,
    refit_from: Annotated[
        Path | None,
        typer.Option(
            "--refit-from",
            help="Refit the model saved in this folder on all events (implies --full): its settings, the epochs "
            "its validation chose and its history protocol; the model to serve after a split run.",
        ),
    ] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Show training progress.")] = None,
    data: DataOpt = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    behavior_col: BehaviorColOpt = None,
    value_col: ValueColOpt = None,
    context_col: ContextColOpt = None,
    time_unit: TimeUnitOpt = None,
    split: SplitOpt = None,
    cutoff: CutoffOpt = None,
    validation_cutoff: ValCutoffOpt = None,
    min_events: MinEventsOpt = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    nproc_per_node: Annotated[
        int,
        typer.Option(
            "--nproc-per-node",
            help="Train data-parallel in N processes on this machine (torchrun; gloo on CPU, NCCL on GPU); "
            "rank 0 validates, checkpoints and saves. Multi-node: see docs/scale.md.",
        ),
    ] = 1,
    config: ConfigOpt = None,
) -> None:
    """Train one model on the training part of a split (validation for early stopping) and save it."""
    from chronorec.models import registry
    from chronorec.training import distributed

    if nproc_per_node > 1 and not distributed.in_worker():  # start the workers; each runs this command
        distributed.launch(distributed.strip_option(distributed.command_args(), "--nproc-per-node"), nproc_per_node)
        typer.echo(f"Trained in {nproc_per_node} processes; rank 0 saved the model.")
        return

    run = dict(epochs=epochs, resume=resume, checkpoint_dir=checkpoint_dir, seed=seed, progress=progress)
    cfg = load_config(config, run_overrides(locals()))
    if refit_from is not None:  # the saved model's settings first; --param and --epochs still override
        from chronorec.workflows.experiment import refit_settings

        kind, chosen = refit_settings(refit_from)
        param = [f"{k}={json.dumps(v)}" for k, v in chosen.items()] + list(param or [])
        full = True
    entry = _model_params(cfg, kind, name, param, run)
    set_threads(cfg.threads)
    target = out or Path(cfg.output_dir or "runs") / "models" / entry.label
    if refit_from is not None and out is None:  # never over the model it refits
        target = refit_from.with_name(refit_from.name + "-full")
    from chronorec.artifacts import check_target

    check_target(target)  # a file or a foreign folder is refused before training, not after it

    log = load_events(cfg)
    model = registry.get(entry.kind)(**entry.params())
    typer.echo(f"Training {model!r} on {data_label(cfg)} ({len(log)} events, {log.n_users} users, {log.n_items} items)")
    if full:
        model.fit(log).record_split(None)
        protocol = "all events"
    else:
        sp = make_split(log, cfg)
        model.fit(sp.train, validation=sp.validation).record_split(sp)
        protocol = f"{sp.protocol}: {len(sp.train)} training events, validation on {len(sp.validation)} users"
    if not distributed.is_main():  # under torchrun: rank 0 saves and reports
        return distributed.shutdown()
    model.save(target)
    info = model.fit_info or {}
    line = f"Trained {entry.label} ({protocol})"
    if info.get("train_seconds") is not None:
        line += f" in {info['train_seconds']:.1f} s"
    if info.get("best_epoch") is not None:
        line += f", best epoch {info['best_epoch']}"
    if info.get("best_val_ndcg10") is not None:
        line += f", validation NDCG@10 {info['best_val_ndcg10']:.4f} ({model.history_label})"
    chosen = {k: info[k] for k in ("decay", "weight", "temperature") if info.get(k) is not None}
    chosen |= info.get("chosen") or {}  # e.g. TIFU-KNN's hyper-parameters
    if chosen:  # buy-again's decay, a repeat blend's weight and temperature
        line += ", chosen on validation: " + ", ".join(f"{k} {v:g}" for k, v in chosen.items())
    typer.echo(line)
    if model.history_protocol is not None:
        p = model.history_protocol
        typer.echo(
            f"History protocol: {model.history_label} ({p['mode']}: {p['reason']}); recorded with the model, "
            "evaluate, calibrate, recommend and serve use it"
        )
    record = model.training_data
    typer.echo(
        f"Recorded for leak checks: {record['n_events']} training events up to {record['last_event']}, "
        f"split {record['split']['protocol']}, data {record['fingerprint'][:12]}, catalogue {record['catalogue_hash'][:12]}"
    )
    typer.echo(f"Saved the model to {target}/")
    from chronorec.training.curves import write_training_curve

    if (curve := write_training_curve(model, target, title=f"{entry.label} on {data_label(cfg)}")) is not None:
        typer.echo(f"Training curve (loss and validation per epoch): {curve}")
    distributed.shutdown()  # under torchrun: the other ranks wait for the save


# ---------------------------------------------------------------------- evaluate
def evaluate(
    model_dirs: Annotated[
        list[Path] | None,
        typer.Argument(help="Saved model folders to compare (or evaluation.model_dirs in --config)."),
    ] = None,
    data: DataOpt = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    behavior_col: BehaviorColOpt = None,
    value_col: ValueColOpt = None,
    context_col: ContextColOpt = None,
    time_unit: TimeUnitOpt = None,
    split: SplitOpt = None,
    cutoff: CutoffOpt = None,
    validation_cutoff: ValCutoffOpt = None,
    min_events: MinEventsOpt = None,
    ks: Annotated[
        str | None, typer.Option("--ks", help="Cut-offs K as a comma-separated list (default 5,10,20).")
    ] = None,
    history: Annotated[
        str | None,
        typer.Option(
            "--history",
            help="Items of the input history: auto (default: the protocol the models recorded when trained, "
            "the one their validation used: exclude when at most 1% of validation targets repeat a history "
            "item, as on ML-1M and Beauty; include otherwise), or exclude / include to impose one.",
        ),
    ] = None,
    include_history: Annotated[
        bool | None,
        typer.Option("--include-history/--exclude-history", help="Same as --history include / exclude."),
    ] = None,
    allow_leak: Annotated[
        bool,
        typer.Option(
            "--allow-leak",
            help="Score a model on targets at or before its last training event or on another split "
            "(refused by default; the result records the leak).",
        ),
    ] = False,
    part: Annotated[str, typer.Option("--part", help="Which cases to score: test (default) or validation.")] = "test",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="JSON file for the results (default: <output_dir>/evaluate-<time>.json)."),
    ] = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Evaluate saved models on a split of a dataset (full-catalogue ranking) and compare them in one table."""
    from chronorec.errors import ConfigError
    from chronorec.workflows.experiment import compare_models, headline_k, metrics_table

    overrides = run_overrides(locals())
    overrides["evaluation"] = {
        "ks": [int(x) for x in ks.split(",")] if ks else None,
        "history": history if include_history is None else ("include" if include_history else "exclude"),
        "allow_leak": allow_leak or None,
        "model_dirs": [str(p) for p in model_dirs] if model_dirs else None,
    }
    cfg = load_config(config, overrides)
    if part not in ("test", "validation"):
        raise ConfigError("--part must be 'test' or 'validation'")
    if not cfg.evaluation.model_dirs:
        raise ConfigError("no models: give one or more saved model folders")
    set_threads(cfg.threads)
    log = load_events(cfg)
    sp = make_split(log, cfg)
    cases = sp.test if part == "test" else sp.validation
    ev = cfg.evaluation
    if sp.protocol == "next-basket":
        return _evaluate_baskets(cfg, log, sp, part, out, ks is not None)
    payload = compare_models(
        ev.model_dirs,
        log,
        cases,
        ks=ev.ks,
        exclude_history=ev.history if ev.exclude_history is None else ev.exclude_history,
        part=part,
        validation=sp.validation,
        checked_split=sp,
        allow_leak=ev.allow_leak,
        protocol=sp.protocol,
        data=data_label(cfg),
        data_description={"n_events": len(log), "n_users": log.n_users, "n_items": log.n_items, "source": log.source},
        split=cfg.split.model_dump(),
        seed=cfg.seed,
    )
    hist, rep = payload["history_protocol"], payload["repeat"]
    typer.echo(
        f"{sp.protocol} on {data_label(cfg)}: {len(cases)} {part} users, {log.n_items} items, "
        f"full-catalogue ranking, history {hist['used']} ({hist['mode']}: {hist['reason']})"
    )
    typer.echo(
        f"Repeats: {100 * rep['repeat_share']:.1f}% of the {int(rep['n_targets'])} {part} targets are already in the "
        f"user's history ({100 * rep['repeat_cases']:.1f}% of users)"
        + ("; excluded, they can never be hit" if hist["exclude"] and rep["repeat_share"] > 0 else "")
    )
    for warning in payload["warnings"]:
        typer.echo(f"Warning: {warning}", err=True)
    typer.echo(metrics_table(payload["results"], k=headline_k(ev.ks), part=part))
    _echo_paired_tests(payload)
    target = out or Path(cfg.output_dir or "runs") / f"evaluate-{timestamp()}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, default=json_default))
    typer.echo(f"Saved the results to {target}")


def _evaluate_baskets(cfg: Any, log: Any, sp: Any, part: str, out: Path | None, ks_given: bool) -> None:
    """``evaluate --split next-basket``: the next-basket table (chronorec.evaluation.basket)."""
    from chronorec.evaluation.basket import BASKET_KS, basket_table
    from chronorec.workflows.basket import compare_basket_models

    ev = cfg.evaluation
    ks = ev.ks if ks_given else list(BASKET_KS)
    cases = sp.test if part == "test" else sp.validation
    payload = compare_basket_models(
        ev.model_dirs, log, sp, part=part, ks=ks, allow_leak=ev.allow_leak, data=data_label(cfg),
        data_description={"n_events": len(log), "n_users": log.n_users, "n_items": log.n_items, "source": log.source},
        split=cfg.split.model_dump(), seed=cfg.seed,
    )  # fmt: skip
    first = next(iter(payload["results"].values()))[part]
    typer.echo(
        f"next-basket on {data_label(cfg)}: {len(cases)} {part} users (whole last basket, mean "
        f"{first['mean_basket_size']:.1f} items, {100 * first['repeat_target_share']:.1f}% bought before), "
        f"{log.n_items} items, full-catalogue ranking, history included; baskets by {sp.settings['basket']}"
    )
    for warning in payload["warnings"]:
        typer.echo(f"Warning: {warning}", err=True)
    typer.echo(basket_table(payload["results"], ks=ks, part=part))
    _echo_paired_tests(payload)
    target = out or Path(cfg.output_dir or "runs") / f"evaluate-{timestamp()}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, default=json_default))
    typer.echo(f"Saved the results to {target}")


def _echo_paired_tests(payload: dict[str, Any]) -> None:
    significance = payload["significance"]
    if not significance:
        return
    first = next(iter(payload["results"]))
    typer.echo(
        f"Paired tests against {first} over the same {payload['n_cases']} users "
        f"(difference of the means, 95% bootstrap CI, paired t-test and Wilcoxon p):"
    )
    for label, tests in significance.items():
        for metric, t in tests.items():
            typer.echo(
                f"  {label} {metric}: {t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}], "
                f"t p={t['t_test_p']:.2g}, Wilcoxon p={t['wilcoxon_p']:.2g}"
            )


# ---------------------------------------------------------------------- ensemble
E = EnsembleConfig


def ensemble(
    model_dirs: Annotated[
        list[Path] | None,
        typer.Argument(help="Saved model folders fitted on the same data (or ensemble.model_dirs in --config)."),
    ] = None,
    out: Annotated[Path | None, field_option(E, "out", "--out", "-o")] = None,
    weights: Annotated[str | None, field_option(E, "weights")] = None,
    combine: Annotated[str | None, field_option(E, "combine")] = None,
    config: ConfigOpt = None,
) -> None:
    """Combine saved models into one score-level ensemble (evaluate, recommend and serve it like any model)."""
    from chronorec.errors import ConfigError
    from chronorec.models.ensemble import Ensemble
    from chronorec.models.registry import load

    e = load_config(config, {"ensemble": section_overrides(E, locals())}).ensemble
    if not e.model_dirs:
        raise ConfigError("no models: give the saved model folders to combine")
    if e.out is None:
        raise ConfigError("no output folder: give --out DIR")
    if e.weights is not None and len(e.weights) != len(e.model_dirs):
        raise ConfigError(f"{len(e.weights)} weights for {len(e.model_dirs)} models")
    members = [load(d, device="cpu") for d in e.model_dirs]
    Ensemble.from_models(members, weights=e.weights, combine=e.combine).save(e.out)
    typer.echo(f"Saved an ensemble of {len(e.model_dirs)} models to {e.out}")
