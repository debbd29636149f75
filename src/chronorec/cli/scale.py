"""``chronorec datasets synth``: Taobao-scale synthetic logs; ``chronorec store``: the out-of-core event store.

chronorec datasets synth --events 100M --users 1M --items 4M --out data/synth-100m
chronorec store build data/synth-100m/events --out data/store-100m
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from chronorec.cli.common import report_errors

datasets_app = typer.Typer(help="Generate data sets (Taobao-scale synthetic logs).", no_args_is_help=True)


@datasets_app.command("synth")
@report_errors
def synth(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write: events/part-*.parquet, items.parquet, synth.json.")
    ],
    events: Annotated[str, typer.Option("--events", help="Number of events, e.g. 100M, 10M, 250K.")] = "1M",
    users: Annotated[str, typer.Option("--users", help="Number of users, e.g. 1M.")] = "10K",
    items: Annotated[str, typer.Option("--items", help="Number of items, e.g. 4M.")] = "40K",
    categories: Annotated[int, typer.Option("--categories", help="Item categories (0: one per 400 items).")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the output depends only on it and the sizes.")] = 0,
    chunk_events: Annotated[
        str, typer.Option("--chunk-events", help="Events held in memory at once (one Parquet file each).")
    ] = "2M",
) -> None:
    """Write a synthetic log of the Taobao UserBehavior shape (pv/cart/fav/buy over 9 days) with planted
    structure (category clusters, item successors, funnels), chunk by chunk straight to Parquet."""
    from chronorec.datasets.large import TaobaoShape, parse_count, write_taobao

    shape = TaobaoShape(
        n_events=parse_count(events),
        n_users=parse_count(users),
        n_items=parse_count(items),
        n_categories=categories,
        seed=seed,
    )
    meta = write_taobao(shape, out, chunk_events=parse_count(chunk_events))
    typer.echo(f"wrote {meta['n_events']:,} events in {len(meta['files'])} files to {out / 'events'}")
    typer.echo(json.dumps(meta["behaviors"]))


store_app = typer.Typer(
    help="The out-of-core event store (DuckDB ingest, memory-mapped sequences).", no_args_is_help=True
)


@store_app.command("build")
@report_errors
def store_build(
    source: Annotated[
        Path, typer.Argument(help="Events: a CSV, Parquet or JSON Lines file, or a folder of Parquet files.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Store folder to write (replaced atomically).")],
    user_col: Annotated[str, typer.Option("--user-col", help="User id column.")] = "user_id",
    item_col: Annotated[str, typer.Option("--item-col", help="Item id column.")] = "item_id",
    time_col: Annotated[
        str, typer.Option("--time-col", help="Timestamp column (epoch numbers or date-time text).")
    ] = "timestamp",
    behavior_col: Annotated[
        str | None, typer.Option("--behavior-col", help="Behaviour column ('' for none).")
    ] = "behavior",
    fmt: Annotated[str | None, typer.Option("--format", help="csv, parquet or jsonl (default: from the name).")] = None,
    time_unit: Annotated[str, typer.Option("--time-unit", help="auto, s, ms, us or ns.")] = "auto",
    dedupe: Annotated[bool, typer.Option("--dedupe/--no-dedupe", help="Drop exact duplicate events.")] = True,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="DuckDB's memory limit; beyond it sorts spill to disk.")
    ] = "2GB",
    threads: Annotated[int | None, typer.Option("--threads", help="DuckDB threads (default: all cores).")] = None,
) -> None:
    """Ingest a log larger than memory into a Parquet event store plus memory-mapped CSR sequences (DuckDB);
    every command's --data accepts the store folder."""
    from chronorec.data.store import build_store

    report = build_store(
        source, out, user_col=user_col, item_col=item_col, time_col=time_col, behavior_col=behavior_col or None,
        fmt=fmt, time_unit=time_unit, dedupe=dedupe, memory_limit=memory_limit, threads=threads,
    )  # fmt: skip
    typer.echo(
        f"read {report.rows_read:,} rows: kept {report.kept:,}, rejected {report.rejected:,}, "
        f"duplicates {report.duplicates:,}; {report.n_users:,} users, {report.n_items:,} items; "
        f"{report.seconds:.1f} s ({report.rows_read / max(report.seconds, 1e-9):,.0f} rows/s)"
    )
    if report.rejects_path:
        typer.echo(f"rejected rows (line, reason, values): {report.rejects_path}")
    typer.echo(f"Saved the event store to {out}/")
