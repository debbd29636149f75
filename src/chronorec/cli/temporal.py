"""``chronorec features``: per-entity temporal features at cut-offs; the event frames the temporal commands read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from chronorec.cli.common import load_config
from chronorec.cli.options import (
    BehaviorColOpt,
    ConfigOpt,
    DataDirOpt,
    DataOpt,
    DatasetOpt,
    ItemColOpt,
    TimeColOpt,
    UserColOpt,
    ValueColOpt,
    data_section,
    field_option,
    grouped,
    option_group,
    section,
)
from chronorec.data import columns as C
from chronorec.workflows.sections import FeaturesConfig

F = FeaturesConfig


def utc_offset_for(dataset: str | None, given: float | None) -> float:
    """The local time offset in hours: the one given, else the named dataset's own, else 0."""
    if given is not None:
        return given
    if dataset is None:
        return 0.0
    from chronorec.datasets.temporal import utc_offset_hours

    return utc_offset_hours(dataset)


def read_frame(cfg: Any, *, behavior_col: str | None, value_col: str | None, category_col: str | None) -> Any:
    """The event frame of the config's data section (:func:`chronorec.workflows.run.load_event_frame`)."""
    from chronorec.workflows.run import load_event_frame

    return load_event_frame(cfg, behavior_col=behavior_col, value_col=value_col, category_col=category_col)


@option_group
class FeaturesArgs:
    """The options of ``features``: the data options, then the ``features`` config section's fields."""

    data: DataOpt = None
    dataset: DatasetOpt = None
    data_dir: DataDirOpt = None
    user_col: UserColOpt = None
    item_col: ItemColOpt = None
    time_col: TimeColOpt = None
    behavior_col: BehaviorColOpt = None
    value_col: ValueColOpt = None
    category_col: Annotated[str | None, field_option(F, "category_col")] = None
    entity: Annotated[str | None, field_option(F, "entity")] = None
    freq: Annotated[str | None, field_option(F, "freq")] = None
    utc_offset: Annotated[float | None, field_option(F, "utc_offset")] = None
    windows: Annotated[str | None, field_option(F, "windows")] = None
    cutoffs: Annotated[list[str] | None, field_option(F, "cutoffs", "--cutoff")] = None
    cutoff_every: Annotated[int | None, field_option(F, "cutoff_every")] = None
    out: Annotated[Path | None, field_option(F, "out")] = None
    series: Annotated[bool | None, field_option(F, "series", "--series/--no-series")] = None


@grouped
def features(opts: FeaturesArgs, config: ConfigOpt = None) -> None:
    """Temporal features per entity and cut-off (Parquet), strictly from events before each cut-off."""
    import time

    from chronorec.temporal.features import CATEGORY, default_cutoffs, feature_table

    cfg = load_config(config, {"data": data_section(opts), "features": section(F, opts)})
    f = cfg.features
    df = read_frame(cfg, behavior_col=cfg.data.behavior_col, value_col=cfg.data.value_col, category_col=f.category_col)
    offset = utc_offset_for(cfg.data.dataset, f.utc_offset)
    col = {"user": C.USER, "item": C.ITEM, "category": CATEGORY}.get(f.entity, f.entity)
    t0 = time.perf_counter()
    cuts = f.cutoffs or default_cutoffs(
        df[C.TIME].to_numpy(), freq=f.freq, utc_offset_hours=offset, every=f.cutoff_every
    )
    table = feature_table(
        df,
        entity=col,
        cutoffs=list(cuts),
        freq=f.freq,
        utc_offset_hours=offset,
        windows=tuple(f.windows),
        progress=True,
    )
    info = _write_features(f, table, df, col, offset, time.perf_counter() - t0)
    typer.echo(
        f"{info['rows']} rows x {info['columns']} columns for {info['entities']} {f.entity}s in {info['seconds']:.2f}s "
        f"-> {Path(f.out)}"
    )


def _write_features(f: Any, table: Any, df: Any, col: str, offset: float, secs: float) -> dict[str, Any]:
    """Write features.parquet (and series.parquet when asked) and features.json; return the latter's content."""
    import json

    from chronorec.temporal.features import activity_series

    target = Path(f.out)
    target.mkdir(parents=True, exist_ok=True)
    table.to_parquet(target / "features.parquet", index=False)
    info = {
        "rows": len(table),
        "columns": table.shape[1],
        "entities": int(table["entity_id"].nunique()),
        "seconds": secs,
    }
    if f.series:
        s = activity_series(df, entity=col, freq=f.freq, utc_offset_hours=offset)
        s.to_parquet(target / "series.parquet", index=False)
        info["series_rows"] = len(s)
    (target / "features.json").write_text(json.dumps(info, indent=2))
    return info
