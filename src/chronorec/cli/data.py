"""``chronorec ingest``: read and validate an events file into an EventLog folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from chronorec.cli.common import load_config
from chronorec.cli.options import (
    BehaviorColOpt,
    ConfigOpt,
    ContextColOpt,
    ItemColOpt,
    TimeColOpt,
    TimeUnitOpt,
    UserColOpt,
    ValueColOpt,
    data_section,
    grouped,
    option_group,
)


@option_group
class IngestArgs:
    """The options of ``ingest``: the source, the output folder, the column mapping and the row rules."""

    source: Annotated[
        Path,
        typer.Argument(
            help="Events file: CSV/TSV, Parquet, JSON Lines or a JSON basket file {user: [[item, ...], ...]} "
            "(optionally .gz/.xz/.bz2/.zip)."
        ),
    ]
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write the EventLog to (events.parquet, id maps, report).")
    ]
    user_col: UserColOpt = None
    item_col: ItemColOpt = None
    time_col: TimeColOpt = None
    behavior_col: BehaviorColOpt = None
    value_col: ValueColOpt = None
    context_col: ContextColOpt = None
    item_name_col: Annotated[str | None, typer.Option("--item-name-col", help="Optional column with item names.")] = (
        None
    )
    basket_col: Annotated[
        str | None,
        typer.Option(
            "--basket-col",
            help="Basket / order / invoice id column (e.g. InvoiceNo, ordernumber), kept as 'basket' for the "
            "next-basket split. A basket file {user: [[item, ...], ...]} needs no column options.",
        ),
    ] = None
    session_col: Annotated[
        str | None,
        typer.Option("--session-col", help="Session id column (e.g. user_session, session_id), kept as 'session'."),
    ] = None
    time_unit: TimeUnitOpt = None
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, parquet or jsonl (default: from the file name).")
    ] = None
    sep: Annotated[
        str | None, typer.Option("--sep", help="CSV separator (default: detected among , tab ; |); '\\t' is a tab.")
    ] = None
    header: Annotated[
        bool | None,
        typer.Option("--header/--no-header", help="Whether the CSV starts with a header line (default: it does)."),
    ] = None
    names: Annotated[
        str | None,
        typer.Option("--names", help="Comma-separated column names, e.g. user,item,rating,time (for --no-header)."),
    ] = None
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Text encoding, e.g. latin-1 (default: UTF-8, BOM allowed).")
    ] = None
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            help="IANA zone of timestamps without an offset, e.g. Europe/London; converted to UTC "
            "(default: read as UTC, and the report says so).",
        ),
    ] = None
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            help="Data recipe: a bundled name (online-retail, taobao) or a YAML file with columns, "
            "behaviours and row rules. Options given here win over the recipe's.",
        ),
    ] = None
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help="Where to write rejected rows, also when the ingest fails; outside --out "
            "(default: <out>/rejects.csv, written with the EventLog).",
        ),
    ] = None
    reject_time_outliers: Annotated[
        bool | None,
        typer.Option(
            "--reject-time-outliers/--keep-time-outliers",
            help="Reject rows whose timestamp is negative, before 1990 or in the future "
            "(default: keep them; the report counts them with examples).",
        ),
    ] = None
    dedupe: Annotated[
        bool | None, typer.Option("--dedupe/--no-dedupe", help="Drop exact duplicate events (default: on).")
    ] = None
    min_user_events: Annotated[
        int | None, typer.Option("--min-user-events", help="k-core: drop users with fewer events (0 = off).")
    ] = None
    min_item_events: Annotated[
        int | None, typer.Option("--min-item-events", help="k-core: drop items with fewer events (0 = off).")
    ] = None

    def section(self) -> dict[str, Any]:
        """The ``data`` config section these options give (the source file as its path)."""
        over = data_section(self) | {"path": str(self.source)}
        names = [n.strip() for n in self.names.split(",")] if self.names else None
        rules = {"reject_time_outliers": self.reject_time_outliers, "dedupe": self.dedupe}
        rules |= {"min_user_events": self.min_user_events, "min_item_events": self.min_item_events}
        return over | rules | {
            "item_name_col": self.item_name_col, "basket_col": self.basket_col, "session_col": self.session_col,
            "format": self.fmt, "sep": _unescape(self.sep), "header": self.header, "names": names,
            "encoding": self.encoding, "timezone": self.timezone, "recipe": self.recipe,
        }  # fmt: skip


@grouped
def ingest(opts: IngestArgs, config: ConfigOpt = None) -> None:
    """Read and validate an events file, quarantine bad rows, and write an EventLog folder plus a report."""
    from chronorec.data import read_events
    from chronorec.errors import DataError

    cfg = load_config(config, {"data": opts.section()})
    _check_out(opts.out, opts.rejects)  # before the read: a bad --out fails now, not after it
    log = read_events(opts.source, rejects_path=opts.rejects, **cfg.data.read_options())
    if len(log) == 0:  # an empty EventLog is never what was meant: say where the rows went, write nothing
        raise DataError(f"{opts.source}: no events left to write. {_summary(log.report)}")
    log.save(opts.out)  # atomic: events, id maps, ingest_report.json and rejects.csv together, or nothing
    typer.echo(_summary(log.report))
    typer.echo(f"Wrote the EventLog ({len(log)} events, {log.n_users} users, {log.n_items} items) to {opts.out}/")


def _summary(report: Any) -> str:
    return report.summary() if hasattr(report, "summary") else str(report)


def _check_out(out: Path, rejects: Path | None) -> None:
    from chronorec.data.eventlog import check_save_target
    from chronorec.errors import ConfigError

    check_save_target(out)
    if rejects is not None and rejects.is_dir():
        raise ConfigError(f"--rejects {rejects} is a folder; name a file, e.g. {rejects / 'rejects.csv'}")
    if rejects is not None and out.resolve() in rejects.resolve().parents:
        raise ConfigError(
            f"--rejects {rejects} is inside --out {out}, which each ingest replaces as a whole; "
            f"leave --rejects out (rejected rows then go to {out}/rejects.csv) or name a file elsewhere"
        )


def _unescape(sep: str | None) -> str | None:
    """``\\t`` typed on a command line means a tab."""
    return {"\\t": "\t", "tab": "\t"}.get(sep, sep) if sep is not None else None
