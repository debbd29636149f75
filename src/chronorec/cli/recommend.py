"""Recommendation commands: ``recommend`` (the serving pipeline, in batch) and ``calibrate``."""

from __future__ import annotations

import json
import sys
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
    json_default,
    load_config,
    load_events,
    make_split,
    require_fitted,
    run_overrides,
    set_threads,
    split_ids,
    typed_ids,
)
from chronorec.errors import ConfigError, DataError


def _read_user_file(path: Path) -> list[Any]:
    import pandas as pd

    from chronorec.data import columns as C

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix in (".csv", ".tsv"):
        df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str)
    else:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    col = C.USER if C.USER in df.columns else df.columns[0]
    return df[col].tolist()


def recommend(
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Saved model folder (from `chronorec train`).")
    ] = None,
    users: Annotated[
        list[str] | None, typer.Option("--users", "-u", help="User ids, comma-separated and/or repeated.")
    ] = None,
    users_file: Annotated[
        Path | None,
        typer.Option("--users-file", help="File of user ids: one per line, or a CSV/Parquet with a user_id column."),
    ] = None,
    history: Annotated[
        list[str] | None,
        typer.Option("--history", help="Recommend for a live history instead: item ids oldest first, comma-separated."),
    ] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", help="Number of recommendations per user (default 10).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this .csv or .parquet file (default: print CSV).")
    ] = None,
    include_seen: Annotated[
        bool | None,
        typer.Option(
            "--include-seen/--exclude-seen",
            help="Allow items the user already interacted with (default: the model's: included for buyagain, "
            "repeat-blend and models trained on repeating targets, excluded otherwise).",
        ),
    ] = None,
    items_table: Annotated[
        Path | None,
        typer.Option(
            "--items", help="Item table for filters / re-ranking (item_id, category, available, price, name)."
        ),
    ] = None,
    rec_settings: Annotated[
        Path | None,
        typer.Option(
            "--settings", help="chronorec.recommend.pipeline settings JSON (temperature, filters, rerank, blend)."
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Add why each item: the history items behind it, or what it is popular in."),
    ] = False,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            help="Context of the request as key=value (repeatable), e.g. device=mobile, time=1718000000, behavior=buy; "
            "used by models trained with context, otherwise reported as ignored.",
        ),
    ] = None,
    calibrated: Annotated[
        bool, typer.Option("--calibrated", help="Report calibrated probabilities as score (default: raw model score).")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Top-K recommendations for users (from their training histories) or for a live history.

    Goes through the same pipeline as `chronorec serve` (chronorec.recommend.pipeline: filters, re-ranking, blending).
    """
    from chronorec.models.registry import load

    cfg = load_config(
        config,
        {
            "recommend": {
                "model": str(model) if model else None,
                "users": split_ids(users) or None,
                "users_file": str(users_file) if users_file else None,
                "k": k,
                "out": str(out) if out else None,
                "exclude_seen": None if include_seen is None else not include_seen,
            }
        },
    )
    r = cfg.recommend
    if r.model is None:
        raise ConfigError("no model: give --model DIR")
    from chronorec.recommend import ItemTable, RecommendOptions, RecommendPipeline, RecommendSettings

    m = require_fitted(load(r.model))
    rec = RecommendSettings.load(rec_settings) if rec_settings else RecommendSettings()
    pipe = RecommendPipeline(m, items=ItemTable.read(items_table, m.items) if items_table else None, settings=rec)
    filters = rec.filters if r.exclude_seen is None else rec.filters.model_copy(update={"exclude_seen": r.exclude_seen})
    opts = RecommendOptions(k=r.k, filters=filters, explain=explain)
    _echo_seen(pipe, filters.exclude_seen)
    score_kind = "probability" if calibrated else "raw"
    ctx = _parse_context(context)
    if history:
        items = typed_ids(split_ids(history), m.items)
        labels, lists = pipe.recommend_lists(
            histories=[items],
            options=opts,
            user_ids=["<history>"],
            contexts=None if ctx is None else [ctx],
            probabilities=calibrated,
        )
    else:
        ids: list[Any] = list(r.users)
        if r.users_file:
            ids += _read_user_file(Path(r.users_file))
        if not ids:
            raise ConfigError("no users: give --users, --users-file or --history")
        ids = typed_ids(ids, m.users)
        contexts = None if ctx is None else [ctx] * len(ids)
        labels, lists = by_history_length(pipe, ids, options=opts, contexts=contexts, probabilities=calibrated)
    _echo_warnings(lists)
    _write_recommendations(pipe.to_frame(labels, lists, score=score_kind), r.out)


def by_history_length(pipe: Any, ids: list[Any], **kw: Any) -> tuple[list[Any], list[Any]]:
    """``pipe.recommend_lists(ids, **kw)`` scored in order of history length, answered in the given order.

    A forward pass pads its batch to the longest history, so batches of similar lengths spare most
    of the padding (as the evaluation pass does); each user's list does not depend on its batch.
    """
    import numpy as np

    lengths = pipe.model.store.lengths[pipe.model.users.to_internal(ids)]  # user 0 (unknown): length 0
    order = np.argsort(lengths, kind="stable")
    ctx = kw.pop("contexts", None)
    labels, lists = pipe.recommend_lists(
        [ids[i] for i in order], contexts=None if ctx is None else [ctx[i] for i in order], **kw
    )
    back = np.argsort(order, kind="stable")
    return [labels[i] for i in back], [lists[i] for i in back]


def _echo_seen(pipe: Any, asked: bool | None) -> None:
    """Say on stderr when the lists keep items the user already has without being asked to (a
    repeat model's default), and why; the usual default (excluded) and explicit flags go unsaid."""
    if asked is not None:
        return
    exclude, why = pipe.default_exclude_seen
    if not exclude:
        typer.secho(f"note: items the user already has are included ({why}; --exclude-seen to drop them)", err=True)


def _parse_context(values: list[str] | None) -> dict[str, Any] | None:
    """``--context key=value`` options as a request context (None: none given)."""
    if not values:
        return None
    out: dict[str, Any] = {}
    for item in split_ids(values):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--context {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def _echo_warnings(lists: Any) -> None:
    """The service's warnings for a batch: each distinct one once, with how many lists it concerns."""
    from chronorec.recommend.frames import summarise_warnings

    unknown_users = [x for x in lists if any("is unknown to the model; cold-start" in w for w in x.warnings)]
    for x in unknown_users:  # one line for all of them instead of one per user
        x.warnings = [w for w in x.warnings if "is unknown to the model; cold-start" not in w]
    if unknown_users:
        typer.secho(
            f"warning: {len(unknown_users)} of {len(lists)} users are unknown to the model; they get popular items "
            "(source=popularity: raw scores are training counts, not model scores)",
            err=True,
        )
    for w in summarise_warnings(lists):
        typer.secho(f"warning: {w}", err=True)


def _write_recommendations(recs: Any, out: str | None) -> None:
    """To a .csv / .parquet file, or as CSV to stdout."""
    if not out:
        recs.to_csv(sys.stdout, index=False)
        return
    target = Path(out)
    if target.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--out {target}: use a .csv or .parquet file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".parquet":
        recs.to_parquet(target, index=False)
    else:
        recs.to_csv(target, index=False)
    typer.echo(f"Wrote {len(recs)} recommendations for {recs['user_id'].nunique()} users to {target}")


# ---------------------------------------------------------------------- calibrate
def calibrate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Saved model folder.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Recommendation settings JSON to write (for --settings of recommend/serve)."),
    ] = Path("recommend.json"),
    items_table: Annotated[
        Path | None,
        typer.Option("--items", help="Item table (item_id, category, ...) for the interest re-ranking variant."),
    ] = None,
    sparse_below: Annotated[
        int, typer.Option("--sparse-below", help="Histories shorter than this are blended (tuned on validation).")
    ] = 5,
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
    config: ConfigOpt = None,
) -> None:
    """Fit the deployment settings of a model on VALIDATION data and show what each knob costs.

    Calibrates the softmax temperature (NLL of the next item; reliability plot before/after),
    tunes the popularity/content blend for sparse histories, and evaluates the post-processing
    variants (plain, diversity re-ranking, interest re-ranking with --items): NDCG@10, HR@10,
    coverage, intra-list diversity and novelty. Writes the settings JSON (--out) and, next to it,
    <out>.report.json and <out>.reliability.png.

    Use the split the model was trained on (leave-one-out, or --split temporal with the same
    --cutoff and --validation-cutoff): like evaluate, calibrate refuses validation data the model
    was trained on. On a time split each validation user counts once, with the first item after
    the validation cut-off (the next item of its history).
    """
    overrides = run_overrides(locals())
    from chronorec.models.registry import load
    from chronorec.recommend import (
        ItemTable,
        RecommendPipeline,
        RecommendSettings,
        evaluate_postprocessing,
        next_item_cases,
        tune_blend,
    )
    from chronorec.workflows.experiment import evalset_for_model, provenance

    cfg = load_config(config, overrides)
    set_threads(cfg.threads)
    m = require_fitted(load(model))
    log = load_events(cfg)
    sp = make_split(log, cfg)
    leak_check = _leak_check(model, m, log, sp)
    if not len(sp.validation):
        raise DataError(
            f"{data_label(cfg)}: the {sp.protocol} split has no validation case to calibrate on"
            + (
                " (its validation window is empty: give --validation-cutoff before --cutoff, as the model was "
                "trained with)"
                if sp.protocol == "global-temporal"
                else f" (no user has {cfg.split.min_events} events: lower --min-events)"
            )
        )
    val = next_item_cases(evalset_for_model(m, log, sp.validation))
    stem = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    T, stats, plot = _fit_temperature(m, val, Path(f"{stem}.reliability.png"))
    items = ItemTable.read(items_table, m.items) if items_table else None
    rec = RecommendSettings(temperature=T, calibration=stats)
    pipe = RecommendPipeline(m, items=items, settings=rec)
    blend, blend_table = tune_blend(pipe, val, sparse_below=sparse_below)
    rec = rec.model_copy(update={"blend": blend})
    pipe.settings = rec  # same model and items: keep the pipeline and its cached embeddings
    typer.echo(
        f"blend for histories under {sparse_below} items: popularity {blend.popularity}, content {blend.content}"
    )
    post = evaluate_postprocessing(pipe, val, _variants(items))
    typer.echo("post-processing on validation (what each knob costs):")
    typer.echo(post.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    rec.save(out)
    report = provenance(
        model=str(model),
        data=data_label(cfg),
        protocol=sp.protocol,
        split=sp.describe(),
        part="validation",
        validation_cases={
            "n_cases": len(val),
            "n_targets": int(len(sp.validation.target_items)),
            "targets": "first after the cut-off per user" if not sp.validation.single_target else "one per user",
        },
        leak_check=leak_check,
        calibration=stats,
        blend=blend.model_dump(),
        blend_grid=blend_table.to_dict(orient="records"),
        postprocessing=post.to_dict(orient="records"),
        reliability_plot=str(plot),
    )
    Path(f"{stem}.report.json").write_text(json.dumps(report, indent=2, default=json_default))
    typer.echo(f"Wrote {out}, {stem}.report.json and {plot}")


def _leak_check(path: Path, model: Any, log: Any, split: Any) -> dict[str, Any]:
    """``chronorec evaluate``'s leak check of the validation part, which calibrate must not have
    trained on: a one-line refusal naming the split to use (no override: a temperature fitted on
    training data would be fitted to memorised events)."""
    from chronorec.evaluation.leak import check_evaluation, model_records, split_options

    trained = next((r["split"] for r in model_records(model) if r.get("split")), None)
    if trained is not None and trained.get("protocol") == "all events":
        fix = (
            "it was trained on all events (train --full or --refit-from), so no held-out data is left to "
            "calibrate on: calibrate the model trained on a split (the one it was refit from) on that split, "
            "and serve this one with --settings of the JSON that writes"
        )
    else:
        options = split_options(trained)
        fix = "calibrate on the split it was trained on" + (f": {options}" if options else "")
    check = check_evaluation(
        str(path), model, log, split, split.validation, part="validation", fix=fix, action="calibration"
    )
    for warning in check["warnings"]:
        typer.echo(f"Warning: {warning}", err=True)
    return check


def _fit_temperature(model: Any, val: Any, plot_path: Path) -> tuple[float, dict[str, Any], Any]:
    """The softmax temperature fitted on validation, its before/after figures and the reliability plot."""
    from chronorec.evaluation.calibration import plot_reliability
    from chronorec.recommend import calibrate_temperature

    cal = calibrate_temperature(model, val)
    T = float(cal["temperature"])
    stats = {k: float(v) for k, v in cal.items() if k in ("nll_before", "nll_after", "ece_before", "ece_after")}
    stats["n_cases"], stats["n_skipped"] = int(cal["n_cases"]), int(cal["n_skipped"])
    typer.echo(
        f"temperature {T:.4g}: validation NLL {stats['nll_before']:.4f} -> {stats['nll_after']:.4f}, "
        f"ECE {stats['ece_before']:.4f} -> {stats['ece_after']:.4f} ({stats['n_cases']} cases, one per user; NLL "
        f"over the {stats['n_cases'] - stats['n_skipped']} whose next item is known to the model and not in the "
        "excluded history)"
    )
    plot = plot_reliability(
        {"T = 1": cal["curve_before"], f"T = {T:.3g}": cal["curve_after"]},
        plot_path,
        title=f"{model.kind}: top-1 reliability on validation",
    )
    return T, stats, plot


def _variants(items: Any) -> dict[str, Any]:
    """The post-processing variants calibrate compares: plain, diversity re-ranking, interest re-ranking."""
    from chronorec.recommend import RecommendOptions, RerankOptions

    variants = {"plain": RecommendOptions()}
    for w in (0.2, 0.5):
        variants[f"diversity {w}"] = RecommendOptions(rerank=RerankOptions(diversity_weight=w))
    if items is not None and items.has_categories:
        variants["interest 0.3"] = RecommendOptions(rerank=RerankOptions(interest_weight=0.3))
    return variants
