"""``chronorec predict-when``: when will each user next perform each behaviour, split by time.

Evaluate the learned time-to-event model against Kaplan-Meier, Cox, a random survival forest and the
per-horizon classifiers (default), fit and save it (``--save``), or write per-user probabilities,
expected time and quantiles with a saved one (``--model``; ``predict-behavior --model`` does the same
for a when-model folder). The ``when:`` section of a ``--config`` file holds these options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

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
from chronorec.data import columns as C
from chronorec.temporal.when.config import WhenConfig

W = WhenConfig


@option_group
class WhenData:
    """The data options of ``predict-when``."""

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
class WhenArgs:
    """The task, cut-off and model options (``when`` config section fields)."""

    category_col: Annotated[str | None, field_option(W, "category_col")] = None
    target: Annotated[str | None, field_option(W, "target")] = None
    behaviors: Annotated[str | None, field_option(W, "behaviors")] = None
    test_cutoff: Annotated[str | None, field_option(W, "test_cutoff")] = None
    validation_hours: Annotated[float | None, field_option(W, "validation_hours")] = None
    test_window_hours: Annotated[float | None, field_option(W, "test_window_hours")] = None
    step_hours: Annotated[float | None, field_option(W, "step_hours")] = None
    train_cutoffs: Annotated[int | None, field_option(W, "train_cutoffs")] = None
    min_history_hours: Annotated[float | None, field_option(W, "min_history_hours")] = None
    freq: Annotated[str | None, field_option(W, "freq")] = None
    windows: Annotated[str | None, field_option(W, "windows")] = None
    utc_offset: Annotated[float | None, field_option(W, "utc_offset")] = None
    horizons_hours: Annotated[str | None, field_option(W, "horizons_hours", "--horizons")] = None
    baselines: Annotated[str | None, field_option(W, "baselines")] = None
    epochs: Annotated[int | None, field_option(W, "epochs")] = None
    max_len: Annotated[int | None, field_option(W, "max_len")] = None
    ensemble: Annotated[int | None, field_option(W, "ensemble")] = None
    bootstrap: Annotated[int | None, field_option(W, "bootstrap")] = None


@option_group
class WhenOutput:
    """Where ``predict-when`` writes, and the saved model it uses."""

    out: Annotated[Path | None, field_option(W, "out")] = None
    save: Annotated[Path | None, field_option(W, "save")] = None
    model: Annotated[Path | None, field_option(W, "model")] = None
    at: Annotated[str | None, field_option(W, "at")] = None
    predictions: Annotated[Path | None, field_option(W, "predictions")] = None


def load_when_config(config: Path | None, overrides: dict[str, Any], when: dict[str, Any]) -> tuple[Any, WhenConfig]:
    """(the shared config tree, the ``when`` section): the file's values with the command line's on top."""
    from pydantic import ValidationError

    from chronorec.errors import ConfigError
    from chronorec.workflows.run_config import format_validation_error, merge, parse_config, read_config_file

    raw = read_config_file(config) if config else {}
    section_raw = raw.pop("when", None) or {}
    data_over = overrides.get("data") or {}
    if isinstance(raw.get("data"), dict):  # a source given on the command line replaces the file's
        drop = {"dataset"} if data_over.get("path") else {"path"} if data_over.get("dataset") else set()
        raw["data"] = {k: v for k, v in raw["data"].items() if k not in drop}
    source = str(config) if config else "command line"
    cfg = parse_config(merge(raw, overrides), source=source)
    try:
        return cfg, WhenConfig.model_validate(merge(section_raw, when))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, f"{source} (when)")) from None


@grouped
def predict_when(
    data: WhenData,
    opts: WhenArgs,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    output: WhenOutput = None,
    config: ConfigOpt = None,
) -> None:
    """When will each user next buy (or cart, view...): P(within H) for any H, expected time and quantiles
    from one censored time-to-event model, evaluated against survival baselines on a held-out cut-off
    (default), fitted and saved (--save), or used (--model DIR --at T)."""
    over = {"data": data_section(data), "seed": seed, "threads": threads}
    cfg, w = load_when_config(config, over, section(W, opts) | section(W, output))
    if w.model is not None:
        events = None
        if cfg.data.dataset is not None or cfg.data.path is not None:
            events = _read(cfg, w)
        path = Path(w.predictions) if w.predictions else Path(w.out) / "predictions.csv"
        typer.echo(write_when_predictions(w.model, events, w.at, path))
        return
    df = _read(cfg, w)
    if w.save is not None:
        _fit_and_save(cfg, w, df)
        return
    _evaluate(cfg, w, df)


def _read(cfg: Any, w: WhenConfig) -> Any:
    from chronorec.cli.temporal import read_frame

    return read_frame(
        cfg, behavior_col=cfg.data.behavior_col or C.BEHAVIOR, value_col=None, category_col=w.category_col
    )


def _run(cfg: Any) -> Any:
    from chronorec.training.settings import RunSettings

    return RunSettings(seed=cfg.seed, threads=cfg.threads, progress=True)


def _evaluate(cfg: Any, w: WhenConfig, df: Any) -> None:
    """Evaluate on the time-split cut-offs; write when.json, the plots and the test predictions."""
    from chronorec.cli.temporal import utc_offset_for
    from chronorec.temporal.when.protocol import run_when

    off = utc_offset_for(cfg.data.dataset, w.utc_offset)
    log = lambda m: typer.echo(m, err=True)  # noqa: E731 - progress lines on stderr
    res = run_when(df, w, utc_offset_hours=off, run=_run(cfg), out_dir=w.out, log=log)
    for name, r in res["results"].items():
        typer.echo(f"{name:10s} C-index {r['cindex_harrell']:.4f}" +
                   (f"  IBS {r['integrated_brier']:.4f}" if "integrated_brier" in r else ""))  # fmt: skip
    bar = res["bar"]
    if bar.get("best_survival_baseline"):
        lo, hi = bar["ci95"]
        typer.echo(
            f"learned - {bar['best_survival_baseline']}: {bar['difference']:+.4f} (95 % CI {lo:+.4f} .. {hi:+.4f}); "
            f"results in {w.out}/when.json ({res['seconds']:.0f}s)"
        )


def _fit_and_save(cfg: Any, w: WhenConfig, df: Any) -> None:
    from chronorec.cli.temporal import utc_offset_for
    from chronorec.temporal.when.protocol import fit_and_save

    off = utc_offset_for(cfg.data.dataset, w.utc_offset)
    m = fit_and_save(df, w, save=w.save, utc_offset_hours=off, run=_run(cfg))
    t = m.report["test"]
    path = Path(w.predictions) if w.predictions else Path(w.out) / "predictions.csv"
    typer.echo(f"saved to {w.save}; test cut-off: C-index {t['cindex_harrell']:.4f}, IBS {t['integrated_brier']:.4f}")
    typer.echo(write_when_predictions(w.save, None, None, path))


def write_when_predictions(model_dir: Any, events: Any, at: str | None, path: Path) -> str:
    """Per-user P(within H), expected hours and quantiles of a saved when-model at ``at`` (default the
    end of the data) written to ``path``; returns the line to print."""
    from chronorec.temporal.when.model import load_when_model
    from chronorec.temporal.when.protocol import parse_time, write_table

    m = load_when_model(model_dir)
    table = m.predict(events, at=parse_time(at))
    out = write_table(table, path)
    target = table[table["behavior"] == m.settings["target"]]
    cols = [c for c in table.columns if c.startswith("p_within_")]
    means = ", ".join(f"{c} {target[c].mean():.3f}" for c in cols)
    return (
        f"when ({m.settings['target']} and {len(m.behaviors) - 1} other behaviour(s)) from {table['at'].iloc[0]} for "
        f"{target[C.USER].nunique()} users (mean {means}) -> {out}"
    )
