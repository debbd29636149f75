"""``chronorec calibrate``: fit a model's deployment settings on validation data and report what each knob costs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from chronorec.cli.common import load_config, require_fitted
from chronorec.cli.options import (
    ConfigOpt,
    DataArgs,
    SeedOpt,
    SplitArgs,
    ThreadsOpt,
    grouped,
    option_group,
    run_overrides,
)
from chronorec.errors import DataError


@option_group
class CalibrateArgs:
    """The model and output options of ``calibrate``."""

    model: Annotated[Path, typer.Option("--model", "-m", help="Saved model folder.")]
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Recommendation settings JSON to write (for --settings of recommend/serve)."),
    ] = Path("recommend.json")
    items_table: Annotated[
        Path | None,
        typer.Option("--items", help="Item table (item_id, category, ...) for the interest re-ranking variant."),
    ] = None
    sparse_below: Annotated[
        int, typer.Option("--sparse-below", help="Histories shorter than this are blended (tuned on validation).")
    ] = 5


@grouped
def calibrate(
    opts: CalibrateArgs,
    data: DataArgs,
    split: SplitArgs,
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
    from chronorec.models.registry import load
    from chronorec.training.runtime import set_threads
    from chronorec.workflows.run import load_events, make_split

    cfg = load_config(config, run_overrides(data, split, seed, threads))
    set_threads(cfg.threads)
    m = require_fitted(load(opts.model))
    log = load_events(cfg)
    sp = make_split(log, cfg)
    leak_check = _leak_check(opts.model, m, log, sp)
    _require_validation(cfg, sp)
    _calibrate(cfg, opts, m, log, sp, leak_check)


def _require_validation(cfg: Any, sp: Any) -> None:
    """A one-line refusal when the split leaves no validation case, saying how to get some."""
    from chronorec.workflows.run import data_label

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


def _calibrate(cfg: Any, opts: CalibrateArgs, m: Any, log: Any, sp: Any, leak_check: dict[str, Any]) -> None:
    """Temperature, blend and post-processing on the validation cases; write the settings and the report."""
    from chronorec.recommend import (
        ItemTable,
        RecommendPipeline,
        RecommendSettings,
        evaluate_postprocessing,
        next_item_cases,
        tune_blend,
    )
    from chronorec.workflows.experiment import evalset_for_model

    val = next_item_cases(evalset_for_model(m, log, sp.validation))
    out, stem = opts.out, opts.out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    T, stats, plot = _fit_temperature(m, val, Path(f"{stem}.reliability.png"))
    items = ItemTable.read(opts.items_table, m.items) if opts.items_table else None
    rec = RecommendSettings(temperature=T, calibration=stats)
    pipe = RecommendPipeline(m, items=items, settings=rec)
    blend, blend_table = tune_blend(pipe, val, sparse_below=opts.sparse_below)
    rec = rec.model_copy(update={"blend": blend})
    pipe.settings = rec  # same model and items: keep the pipeline and its cached embeddings
    typer.echo(
        f"blend for histories under {opts.sparse_below} items: popularity {blend.popularity}, content {blend.content}"
    )
    post = evaluate_postprocessing(pipe, val, _variants(items))
    typer.echo("post-processing on validation (what each knob costs):")
    typer.echo(post.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    rec.save(out)
    found = {"calibration": stats, "blend": blend.model_dump(), "blend_grid": blend_table.to_dict(orient="records")}
    found |= {"postprocessing": post.to_dict(orient="records"), "reliability_plot": str(plot)}
    _write_report(cfg, opts.model, sp, val, leak_check, found, Path(f"{stem}.report.json"))
    typer.echo(f"Wrote {out}, {stem}.report.json and {plot}")


def _write_report(cfg: Any, model: Path, sp: Any, val: Any, leak_check: Any, found: dict[str, Any], path: Path) -> None:
    """The calibration report: provenance, the validation cases, the leak check and what was fitted."""
    from chronorec.workflows.experiment import provenance
    from chronorec.workflows.run import data_label, json_default

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
        **found,
    )
    path.write_text(json.dumps(report, indent=2, default=json_default))


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
    from chronorec.evaluation.reliability_curves import plot_reliability
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
