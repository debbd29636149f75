"""``chronorec datasets synth``: Taobao-scale synthetic logs; ``chronorec store``: the out-of-core event store.

chronorec datasets synth --events 100M --users 1M --items 4M --out data/synth-100m
chronorec store build data/synth-100m/events --out data/store-100m
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from chronorec.cli.common import load_config, report_errors
from chronorec.cli.options import ConfigOpt, field_option, grouped, option_group, section
from chronorec.workflows.sections import StoreConfig, SynthConfig

datasets_app = typer.Typer(help="Generate data sets (Taobao-scale synthetic logs).", no_args_is_help=True)
Y = SynthConfig
B = StoreConfig


@option_group
class SynthArgs:
    """The options of ``datasets synth``, named like the ``synth`` config section's fields."""

    out: Annotated[Path | None, field_option(Y, "out", "--out", "-o")] = None
    events: Annotated[str | None, field_option(Y, "events")] = None
    users: Annotated[str | None, field_option(Y, "users")] = None
    items: Annotated[str | None, field_option(Y, "items")] = None
    categories: Annotated[int | None, field_option(Y, "categories")] = None
    seed: Annotated[int | None, field_option(Y, "seed")] = None
    chunk_events: Annotated[str | None, field_option(Y, "chunk_events")] = None


@datasets_app.command("synth")
@report_errors
@grouped
def synth(opts: SynthArgs, config: ConfigOpt = None) -> None:
    """Write a synthetic log of the Taobao UserBehavior shape (pv/cart/fav/buy over 9 days) with planted
    structure (category clusters, item successors, funnels), chunk by chunk straight to Parquet."""
    from chronorec.datasets.large import TaobaoShape, parse_count, write_taobao
    from chronorec.errors import ConfigError

    s = load_config(config, {"synth": section(Y, opts)}).synth
    if s.out is None:
        raise ConfigError("no output folder: give --out DIR")
    out = Path(s.out)
    shape = TaobaoShape(
        n_events=parse_count(s.events),
        n_users=parse_count(s.users),
        n_items=parse_count(s.items),
        n_categories=s.categories,
        seed=s.seed,
    )
    meta = write_taobao(shape, out, chunk_events=parse_count(s.chunk_events))
    typer.echo(f"wrote {meta['n_events']:,} events in {len(meta['files'])} files to {out / 'events'}")
    typer.echo(json.dumps(meta["behaviors"]))


store_app = typer.Typer(
    help="The out-of-core event store (DuckDB ingest, memory-mapped sequences).", no_args_is_help=True
)


@option_group
class StoreArgs:
    """The options of ``store build``, named like the ``store`` config section's fields."""

    source: Annotated[
        Path | None, typer.Argument(help="Events: a CSV, Parquet or JSON Lines file, or a folder of Parquet files.")
    ] = None
    out: Annotated[Path | None, field_option(B, "out", "--out", "-o")] = None
    user_col: Annotated[str | None, field_option(B, "user_col")] = None
    item_col: Annotated[str | None, field_option(B, "item_col")] = None
    time_col: Annotated[str | None, field_option(B, "time_col")] = None
    behavior_col: Annotated[str | None, field_option(B, "behavior_col")] = None
    format: Annotated[str | None, field_option(B, "format")] = None
    time_unit: Annotated[str | None, field_option(B, "time_unit")] = None
    dedupe: Annotated[bool | None, field_option(B, "dedupe", "--dedupe/--no-dedupe")] = None
    memory_limit: Annotated[str | None, field_option(B, "memory_limit")] = None
    threads: Annotated[int | None, field_option(B, "threads")] = None


@store_app.command("build")
@report_errors
@grouped
def store_build(opts: StoreArgs, config: ConfigOpt = None) -> None:
    """Ingest a log larger than memory into a Parquet event store plus memory-mapped CSR sequences (DuckDB);
    every command's --data accepts the store folder."""
    from chronorec.data.store import build_store
    from chronorec.errors import ConfigError

    s = load_config(config, {"store": section(B, opts)}).store
    if s.source is None or s.out is None:
        raise ConfigError("give the events to read (SOURCE, or store.source) and --out DIR")
    out = Path(s.out)
    report = build_store(
        Path(s.source), out, user_col=s.user_col, item_col=s.item_col, time_col=s.time_col,
        behavior_col=s.behavior_col or None, fmt=s.format, time_unit=s.time_unit, dedupe=s.dedupe,
        memory_limit=s.memory_limit, threads=s.threads,
    )  # fmt: skip
    typer.echo(
        f"read {report.rows_read:,} rows: kept {report.kept:,}, rejected {report.rejected:,}, "
        f"duplicates {report.duplicates:,}; {report.n_users:,} users, {report.n_items:,} items; "
        f"{report.seconds:.1f} s ({report.rows_read / max(report.seconds, 1e-9):,.0f} rows/s)"
    )
    if report.rejects_path:
        typer.echo(f"rejected rows (line, reason, values): {report.rejects_path}")
    typer.echo(f"Saved the event store to {out}/")
