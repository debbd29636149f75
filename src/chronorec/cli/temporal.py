"""CLI commands of the temporal side: ``features`` and ``predict-behavior``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from chronorec.data import columns as C


def _opt(name: str, help: str) -> Any:
    """A typer option (typer is imported only when the CLI resolves its signature)."""
    import typer

    names = name.split("/")[0]
    return typer.Option(name if "/" in name else names, help=help)


def features_command(
    data: Annotated[
        Path | None,
        _opt("--data", "Events file (CSV/Parquet/JSON Lines) read with the column options, or an ingest folder."),
    ] = None,
    dataset: Annotated[
        str | None, _opt("--dataset", "Named data instead of --data: taobao, ml-100k or synthetic.")
    ] = None,
    data_dir: Annotated[
        Path | None, _opt("--data-dir", "Folder of the named datasets (default $CHRONOREC_DATA).")
    ] = None,
    user_col: Annotated[str, _opt("--user-col", "User id column of --data.")] = C.USER,
    item_col: Annotated[str, _opt("--item-col", "Item id column of --data.")] = C.ITEM,
    time_col: Annotated[str, _opt("--time-col", "Timestamp column of --data.")] = C.TIME,
    behavior_col: Annotated[str | None, _opt("--behavior-col", "Behaviour type column of --data.")] = None,
    value_col: Annotated[str | None, _opt("--value-col", "Numeric value column of --data (summed).")] = None,
    category_col: Annotated[
        str | None, _opt("--category-col", "Category column of --data (kept as 'category').")
    ] = None,
    entity: Annotated[str, _opt("--entity", "Entity: user, item or category.")] = "user",
    freq: Annotated[str, _opt("--freq", "Period: hour, day or week.")] = "day",
    utc_offset: Annotated[float, _opt("--utc-offset", "Hours added to UTC for period alignment (taobao: 8).")] = 0.0,
    windows: Annotated[str, _opt("--windows", "Trailing windows in periods, comma-separated.")] = "1,7,28",
    cutoff: Annotated[
        list[str] | None, _opt("--cutoff", "Cut-off time (epoch seconds or ISO, UTC); repeat. Default: every period.")
    ] = None,
    cutoff_every: Annotated[int, _opt("--cutoff-every", "Default cut-offs: every N periods.")] = 1,
    out: Annotated[Path, _opt("--out", "Output folder: features.parquet and series.parquet.")] = Path("runs/features"),
    series: Annotated[bool, _opt("--series/--no-series", "Also write the long-format activity series.")] = True,
) -> None:
    """Temporal features per entity and cut-off (Parquet), strictly from events before each cut-off."""
    import json
    import time

    import typer

    from chronorec.temporal.features import (
        CATEGORY,
        activity_series,
        default_cutoffs,
        feature_table,
        load_temporal_dataset,
        read_event_frame,
    )

    try:
        if dataset is not None:
            df = load_temporal_dataset(dataset, data_dir=data_dir)
            if dataset.lower() == "taobao" and utc_offset == 0.0:
                utc_offset = 8.0
        elif data is not None:
            df = read_event_frame(data, user_col, item_col, time_col, behavior_col, value_col, category_col)
        else:
            raise ValueError("give --data PATH or --dataset NAME")
        col = {"user": C.USER, "item": C.ITEM, "category": CATEGORY}.get(entity, entity)
        wins = tuple(int(x) for x in windows.split(",") if x.strip())
        t0 = time.perf_counter()
        cuts = cutoff or default_cutoffs(
            df[C.TIME].to_numpy(), freq=freq, utc_offset_hours=utc_offset, every=cutoff_every
        )
        table = feature_table(
            df, entity=col, cutoffs=list(cuts), freq=freq, utc_offset_hours=utc_offset, windows=wins, progress=True
        )
        secs = time.perf_counter() - t0
        out.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out / "features.parquet", index=False)
        info = {
            "rows": len(table),
            "columns": table.shape[1],
            "entities": int(table["entity_id"].nunique()),
            "seconds": secs,
        }
        if series:
            s = activity_series(df, entity=col, freq=freq, utc_offset_hours=utc_offset)
            s.to_parquet(out / "series.parquet", index=False)
            info["series_rows"] = len(s)
        (out / "features.json").write_text(json.dumps(info, indent=2))
        typer.echo(
            f"{info['rows']} rows x {info['columns']} columns for {info['entities']} {entity}s in {secs:.2f}s -> {out}"
        )
    except (ValueError, FileNotFoundError, KeyError) as e:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


def predict_behavior_command(
    data: Annotated[Path | None, _opt("--data", "Events file with a behaviour column, or an ingest folder.")] = None,
    dataset: Annotated[str | None, _opt("--dataset", "Named data instead of --data: taobao or synthetic.")] = None,
    data_dir: Annotated[
        Path | None, _opt("--data-dir", "Folder of the named datasets (default $CHRONOREC_DATA).")
    ] = None,
    user_col: Annotated[str, _opt("--user-col", "User id column of --data.")] = C.USER,
    item_col: Annotated[str, _opt("--item-col", "Item id column of --data.")] = C.ITEM,
    time_col: Annotated[str, _opt("--time-col", "Timestamp column of --data.")] = C.TIME,
    behavior_col: Annotated[str, _opt("--behavior-col", "Behaviour type column of --data.")] = C.BEHAVIOR,
    category_col: Annotated[str | None, _opt("--category-col", "Optional category column of --data.")] = None,
    target: Annotated[str, _opt("--target", "Target behaviour of the binary task.")] = "buy",
    horizon_hours: Annotated[float, _opt("--horizon-hours", "Label window H after each cut-off, in hours.")] = 24.0,
    train_cutoffs: Annotated[
        int | None, _opt("--train-cutoffs", "At most this many training cut-offs (default: all the history allows).")
    ] = None,
    step_hours: Annotated[
        float | None, _opt("--step-hours", "Hours between training cut-offs (default H / 4).")
    ] = None,
    test_cutoffs: Annotated[
        int, _opt("--test-cutoffs", "Rolling test cut-offs, one horizon apart; models are refitted per cut-off.")
    ] = 1,
    freq: Annotated[str, _opt("--freq", "Period of the series features: hour, day or week.")] = "day",
    windows: Annotated[str, _opt("--windows", "Trailing feature windows in periods, comma-separated.")] = "1,7,28",
    utc_offset: Annotated[float | None, _opt("--utc-offset", "Local time offset in hours (taobao: 8).")] = None,
    tasks: Annotated[str, _opt("--tasks", "Comma-separated: target, next_type.")] = "target,next_type",
    models: Annotated[
        str, _opt("--models", "Comma-separated: logistic, gbm, gru, lstm, transformer (baselines always run).")
    ] = "logistic,gbm,gru,transformer",
    epochs: Annotated[int, _opt("--epochs", "Maximum epochs of the sequence classifiers.")] = 30,
    max_len: Annotated[int, _opt("--max-len", "Events per sequence-classifier input.")] = 50,
    seed: Annotated[int, _opt("--seed", "Random seed.")] = 0,
    threads: Annotated[int | None, _opt("--threads", "Torch CPU threads.")] = None,
    out: Annotated[Path, _opt("--out", "Output folder: behavior.json and calibration plots.")] = Path("runs/behavior"),
) -> None:
    """Predict the target behaviour within H and the next event type, split by time."""
    import typer

    from chronorec.temporal.behavior import SequenceClassifierConfig, predict_behavior
    from chronorec.temporal.features import load_temporal_dataset, read_event_frame

    try:
        if dataset is not None:
            df = load_temporal_dataset(dataset, data_dir=data_dir, seed=seed)
            off = utc_offset if utc_offset is not None else (8.0 if dataset.lower() == "taobao" else 0.0)
        elif data is not None:
            df = read_event_frame(data, user_col, item_col, time_col, behavior_col, None, category_col)
            off = utc_offset or 0.0
        else:
            raise ValueError("give --data PATH or --dataset NAME")
        res = predict_behavior(
            df,
            tasks=[t.strip() for t in tasks.split(",") if t.strip()],
            target=target,
            horizon_s=int(horizon_hours * 3600),
            n_train_cutoffs=train_cutoffs,
            step_s=int(step_hours * 3600) if step_hours else None,
            test_cutoffs=test_cutoffs,
            freq=freq,
            windows=tuple(int(w) for w in windows.split(",") if w.strip()),
            utc_offset_hours=off,
            models=[m.strip() for m in models.split(",") if m.strip()],
            seq_config=SequenceClassifierConfig(epochs=epochs, max_len=max_len, seed=seed, threads=threads),
            out_dir=out,
            seed=seed,
        )
        typer.echo(f"cases {res['data']['cases']}; results in {out}/behavior.json ({res['seconds']:.1f}s)")
    except (ValueError, FileNotFoundError, KeyError) as e:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
