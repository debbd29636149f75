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
