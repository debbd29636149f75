"""``chronorec ingest``: read and validate an events file into an EventLog folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from chronorec.cli.common import (
    BehaviorColOpt,
    ConfigOpt,
    ContextColOpt,
    ItemColOpt,
    TimeColOpt,
    TimeUnitOpt,
    UserColOpt,
    ValueColOpt,
    data_overrides,
    json_default,
    load_config,
)


def ingest(
    source: Annotated[
        Path, typer.Argument(help="Events file: CSV/TSV, Parquet or JSON Lines (optionally .gz/.xz/.bz2/.zip).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write the EventLog to (events.parquet, id maps, report).")
    ],
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    behavior_col: BehaviorColOpt = None,
    value_col: ValueColOpt = None,
    context_col: ContextColOpt = None,
    item_name_col: Annotated[
        str | None, typer.Option("--item-name-col", help="Optional column with item names.")
    ] = None,
    time_unit: TimeUnitOpt = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, parquet or jsonl (default: from the file name).")
    ] = None,
    sep: Annotated[str | None, typer.Option("--sep", help="CSV separator (default: detected among , tab ; |).")] = None,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Where to write rejected rows (default: <out>/rejects.csv).")
    ] = None,
    dedupe: Annotated[
        bool | None, typer.Option("--dedupe/--no-dedupe", help="Drop exact duplicate events (default: on).")
    ] = None,
    min_user_events: Annotated[
        int | None, typer.Option("--min-user-events", help="k-core: drop users with fewer events (0 = off).")
    ] = None,
    min_item_events: Annotated[
        int | None, typer.Option("--min-item-events", help="k-core: drop items with fewer events (0 = off).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Read and validate an events file, quarantine bad rows, and write an EventLog folder plus a report."""
    from chronorec.data import read_events

    over = data_overrides({**locals(), "data": source})
    over.update(
        item_name_col=item_name_col,
        format=fmt,
        sep=sep,
        dedupe=dedupe,
        min_user_events=min_user_events,
        min_item_events=min_item_events,
    )
    cfg = load_config(config, {"data": over})
    rejects_path = rejects if rejects is not None else out / "rejects.csv"
    out.mkdir(parents=True, exist_ok=True)
    log = read_events(source, rejects_path=rejects_path, **cfg.data.read_options())
    log.save(out)
    report = log.report
    typer.echo(report.summary() if hasattr(report, "summary") else str(report))
    if hasattr(report, "to_dict"):
        (out / "ingest_report.json").write_text(json.dumps(report.to_dict(), indent=2, default=json_default))
    typer.echo(f"Wrote the EventLog ({len(log)} events, {log.n_users} users, {log.n_items} items) to {out}/")
