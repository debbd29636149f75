"""``chronorec predict-behavior``: the target behaviour within a horizon and the next event type, split by time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from chronorec.cli.common import load_config
from chronorec.cli.options import (
    ConfigOpt,
    DataDirOpt,
    DataOpt,
    DatasetOpt,
    ItemColOpt,
    SeedOpt,
    ThreadsOpt,
    TimeColOpt,
    UserColOpt,
    data_section,
    field_option,
    grouped,
    option_group,
    section,
)
from chronorec.cli.temporal import read_frame, utc_offset_for
from chronorec.data import columns as C
from chronorec.workflows.sections import BehaviorConfig

B = BehaviorConfig


@option_group
class BehaviorData:
    """The data options of ``predict-behavior``."""

    data: DataOpt = None
    dataset: DatasetOpt = None
    data_dir: DataDirOpt = None
    user_col: UserColOpt = None
    item_col: ItemColOpt = None
    time_col: TimeColOpt = None
    behavior_col: Annotated[
        str | None, typer.Option("--behavior-col", help="Behaviour type column of --data (default behavior).")
    ] = None


@option_group
class BehaviorArgs:
    """The task and model options of ``predict-behavior`` (``behavior`` config section fields)."""

    category_col: Annotated[str | None, field_option(B, "category_col")] = None
    target: Annotated[str | None, field_option(B, "target")] = None
    horizon: Annotated[str | None, field_option(B, "horizon")] = None
    horizon_hours: Annotated[float | None, field_option(B, "horizon_hours")] = None
    train_cutoffs: Annotated[int | None, field_option(B, "train_cutoffs")] = None
    step: Annotated[str | None, field_option(B, "step")] = None
    step_hours: Annotated[float | None, field_option(B, "step_hours")] = None
    min_history: Annotated[str | None, field_option(B, "min_history")] = None
    test_cutoffs: Annotated[int | None, field_option(B, "test_cutoffs")] = None
    freq: Annotated[str | None, field_option(B, "freq")] = None
    windows: Annotated[str | None, field_option(B, "windows")] = None
    utc_offset: Annotated[float | None, field_option(B, "utc_offset")] = None
    tasks: Annotated[str | None, field_option(B, "tasks")] = None
    models: Annotated[str | None, field_option(B, "models")] = None
    epochs: Annotated[int | None, field_option(B, "epochs")] = None
    max_len: Annotated[int | None, field_option(B, "max_len")] = None


@option_group
class BehaviorOutput:
    """Where ``predict-behavior`` writes, and the saved model it uses (``behavior`` config section fields)."""

    out: Annotated[Path | None, field_option(B, "out")] = None
    save: Annotated[Path | None, field_option(B, "save")] = None
    model: Annotated[Path | None, field_option(B, "model")] = None
    at: Annotated[str | None, field_option(B, "at")] = None
    predictions: Annotated[Path | None, field_option(B, "predictions")] = None
    calibration: Annotated[str | None, field_option(B, "calibration")] = None


@grouped
def predict_behavior(
    data: BehaviorData,
    opts: BehaviorArgs,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    output: BehaviorOutput = None,
    config: ConfigOpt = None,
) -> None:
    """Predict the target behaviour within H and the next event type, split by time: evaluate the
    models (default), fit, calibrate and save one (--save), or write per-user probabilities with a
    saved one (--model)."""
    behavior = section(B, opts) | section(B, output)
    cfg = load_config(config, {"data": data_section(data), "behavior": behavior, "seed": seed, "threads": threads})
    b = cfg.behavior
    if b.model is not None:
        _predict_with_saved(cfg)
        return
    df = read_frame(cfg, behavior_col=cfg.data.behavior_col or C.BEHAVIOR, value_col=None, category_col=b.category_col)
    if b.save is not None:
        _fit_and_save(cfg, df)
        return
    _evaluate_behavior(cfg, df)


def _evaluate_behavior(cfg: Any, df: Any) -> None:
    """Evaluate the behaviour models on the time-split cut-offs; write behavior.json."""
    from chronorec.temporal.behavior import SequenceClassifierConfig
    from chronorec.temporal.behavior import predict_behavior as run

    b = cfg.behavior
    res = run(
        df,
        tasks=list(b.tasks),
        target=b.target,
        **b.lengths(),
        n_train_cutoffs=b.train_cutoffs,
        test_cutoffs=b.test_cutoffs,
        utc_offset_hours=utc_offset_for(cfg.data.dataset, b.utc_offset),
        models=list(b.models),
        seq_config=SequenceClassifierConfig(epochs=b.epochs, max_len=b.max_len),
        threads=cfg.threads,
        out_dir=Path(b.out),
        seed=cfg.seed,
    )
    scale = ", ".join(f"{k} {v}" for k, v in res["data"]["time_scale"].items() if k != "recent")
    typer.echo(f"{scale}; cases {res['data']['cases']}; results in {b.out}/behavior.json ({res['seconds']:.1f}s)")


def _write_table(table: Any, path: Path) -> Path:
    """A per-user table as CSV, or Parquet for a .parquet path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False)
    return path


def _predictions_path(b: Any) -> Path:
    return Path(b.predictions) if b.predictions else Path(b.out) / "predictions.csv"


def _predict_with_saved(cfg: Any) -> None:
    """``--model DIR``: probabilities at ``--at`` (default: the end of the data) for every user with
    an event before it, from ``--data`` / ``--dataset`` or else the events saved with the model. A
    when-model folder (``predict-when --save``) writes P(within H) per horizon, expected hours and
    quantiles per user and behaviour instead (dispatched on the folder's kind)."""
    from chronorec.artifacts import read_manifest
    from chronorec.temporal.behavior.model import load_behavior_model, parse_time
    from chronorec.temporal.when.model import KIND as WHEN_KIND

    b = cfg.behavior
    events = None
    if cfg.data.dataset is not None or cfg.data.path is not None:
        events = read_frame(cfg, behavior_col=cfg.data.behavior_col or C.BEHAVIOR, value_col=None, category_col=None)
    if Path(b.model).is_dir() and (Path(b.model) / "manifest.json").is_file():
        if read_manifest(b.model).get("kind") == WHEN_KIND:
            from chronorec.cli.when import write_when_predictions

            typer.echo(write_when_predictions(b.model, events, b.at, _predictions_path(b)))
            return
    m = load_behavior_model(b.model)
    table = m.predict(events, at=parse_time(b.at))
    path = _write_table(table, _predictions_path(b))
    s = m.settings
    typer.echo(
        f"P({s['target']} within {s['horizon_s'] / 3600:g} h) from {table['at'].iloc[0]} for {len(table)} users "
        f"(mean {table['probability'].mean():.3f}) -> {path}"
    )


def _fit_and_save(cfg: Any, df: Any) -> None:
    """``--save DIR``: fit the first of --models that can be saved (gbm or logistic), calibrate it on
    the validation cut-off, report its test figures and write its predictions at the end of the data."""
    from chronorec.errors import ConfigError
    from chronorec.temporal.behavior.model import SAVED_KINDS, fit_behavior_model

    b = cfg.behavior
    kinds = [k for k in b.models if k in SAVED_KINDS]
    if not kinds:
        raise ConfigError(f"--save fits one of {', '.join(SAVED_KINDS)}: name it in --models")
    m = fit_behavior_model(
        df,
        model=kinds[0],
        target=b.target,
        **b.lengths(),
        n_train_cutoffs=b.train_cutoffs,
        utc_offset_hours=utc_offset_for(cfg.data.dataset, b.utc_offset),
        calibration=b.calibration,
        seed=cfg.seed,
        threads=cfg.threads,
    )
    m.save(b.save)
    _write_saved_report(m, b, kinds[0])
    table = m.predict()
    path = _write_table(table, _predictions_path(b))
    t, r = m.report["test"], m.report["test_uncalibrated"]
    typer.echo(
        f"{kinds[0]} saved to {b.save} (horizon {m.report['time_scale']['horizon']}); test cut-off: ROC-AUC {t['roc_auc']:.3f}, Brier {r['brier']:.4f} -> "
        f"{t['brier']:.4f} calibrated ({b.calibration}), ECE {r['ece']:.3f} -> {t['ece']:.3f}; "
        f"{len(table)} users' probabilities -> {path}"
    )


def _write_saved_report(m: Any, b: Any, kind: str) -> None:
    """The saved model's report (behavior_model.json) and its calibration plot on the test cut-off."""
    import json

    from chronorec.evaluation.reliability_curves import calibration_plot

    out = Path(b.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "behavior_model.json").write_text(json.dumps(m.report, indent=2, default=float))
    calibration_plot(
        {
            f"{kind} ({b.calibration})": (m.holdout["y"], m.holdout["probability"]),
            f"{kind} (uncalibrated)": (m.holdout["y"], m.holdout["score"]),
        },
        out / "calibration_saved_model.png",
        title=f"Test cut-off: P({b.target} within {m.report['time_scale']['horizon']})",
    )
