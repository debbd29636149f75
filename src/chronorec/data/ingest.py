"""Validate and clean raw behaviour events: the step between :mod:`chronorec.data.readers` and
:class:`~chronorec.data.eventlog.EventLog` (whose ``read_events`` / ``EventLog.read`` run both).

``read_events`` accepts CSV (separator auto-detected), Parquet and JSON Lines files, optionally
compressed (``.gz``, ``.xz``, ``.bz2``, ``.zip``), as well as pandas / polars DataFrames and
pyarrow Tables. The caller names their columns; the result uses the canonical names of
``chronorec.data.columns``.

Nothing is dropped silently. Every input row ends up in exactly one of these places, and the
:class:`IngestReport` checks that ``rows_read == rows_kept + rows_rejected + duplicates_removed +
kcore_removed + sum(rules_removed)``:

* kept in the EventLog;
* removed by a named rule of a data recipe (:mod:`chronorec.data.recipes`), counted under its name;
* rejected (missing user/item, missing or unparseable timestamp, non-numeric value, ...):
  written with its source line number, the reason and its raw values to the rejects file;
* removed as an exact duplicate of an earlier row;
* removed by k-core filtering.

Line numbers are 1-based physical lines of the source file: for a CSV with a header the first
data row is line 2. For DataFrames, Parquet and JSON arrays they are the 0-based row position + 1.
Blank lines are skipped (and counted as ``blank_lines``), not treated as rows.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.data.clean import kcore_filter, remove_duplicates
from chronorec.data.readers import RawTable, detect_format, detect_separator, non_scalar, read_raw
from chronorec.data.recipes import Recipe, check_timezone, net_cancellations, prepare_rows
from chronorec.data.rejects import build_rejects, raise_too_many, write_rejects
from chronorec.data.report import IngestReport
from chronorec.data.timestamps import TIME_UNITS, parse_timestamps, time_checks
from chronorec.errors import IngestError

__all__ = [
    "CleanEvents",
    "ColumnSpec",
    "IngestError",
    "IngestReport",
    "clean_events",
    "detect_format",
    "detect_separator",
    "parse_timestamps",
    "read_raw",
]

logger = logging.getLogger(__name__)

_INT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.0*)?")


@dataclass(frozen=True)
class ColumnSpec:
    """The caller's names (or 0-based positions) of the event columns."""

    user_col: str | int = C.USER
    item_col: str | int = C.ITEM
    time_col: str | int | None = C.TIME
    behavior_col: str | int | None = None
    value_col: str | int | None = None
    context_cols: Sequence[str | int] = ()
    item_name_col: str | int | None = None
    basket_col: str | int | None = None
    session_col: str | int | None = None


@dataclass
class CleanEvents:
    """Valid events in canonical columns, ready for ``EventLog.from_frame``, and their report."""

    frame: pd.DataFrame
    report: IngestReport
    context_columns: tuple[str, ...]
    item_names: pd.Series | None
    source: str


@dataclass
class _Resolved:
    """The source column names behind each role (None where the role is not used)."""

    user: str
    item: str
    time: str | None
    behavior: str | None
    value: str | None
    context: list[str]
    name: str | None
    basket: str | None = None
    session: str | None = None

    def groups(self) -> list[tuple[str, str]]:
        """``(canonical name, source column)`` of the basket and session columns given."""
        pairs = ((C.BASKET, self.basket), (C.SESSION, self.session))
        return [(name, src) for name, src in pairs if src is not None]


def clean_events(  # noqa: PLR0913 - one keyword per ingest option, as read_events
    raw: RawTable,
    columns: ColumnSpec = ColumnSpec(),
    *,
    time_unit: str = "auto",
    rejects_path: str | Path | None = None,
    dedupe: bool = True,
    min_user_events: int = 0,
    min_item_events: int = 0,
    header: bool = True,
    max_reject_share: float = 0.5,
    item_names: pd.Series | None = None,
    timezone: str | None = None,
    recipe: Recipe | None = None,
    reject_time_outliers: bool = False,
) -> CleanEvents:
    """Apply the ``recipe``'s row rules, validate ``raw`` row by row, quarantine bad rows, net
    cancellations, deduplicate and k-core filter.

    Every row is accounted for in the returned report (see the module docstring). ``timezone``
    is the zone of naive date-times (default: UTC). Raises :class:`IngestError` for a missing
    column, no data rows, too many bad rows (over ``max_reject_share``) or nothing left after
    k-core filtering.
    """
    if time_unit not in ("auto", *TIME_UNITS):
        raise IngestError(f"time_unit must be 'auto', 's', 'ms', 'us' or 'ns', not {time_unit!r}")
    raw.frame.columns = [str(c) for c in raw.frame.columns]
    n_read = len(raw.frame) + len(raw.parse_rejects)
    report = IngestReport(
        source=raw.source,
        rows_read=n_read,
        blank_lines=raw.blank_lines,
        min_user_events=min_user_events,
        min_item_events=min_item_events,
        timezone=timezone,
    )
    if n_read == 0:
        what = f"file {raw.source}" if raw.is_file else f"input {raw.source}"
        raise IngestError(f"{what} has no data rows")
    if timezone is not None:
        check_timezone(timezone)
    raw, columns, net_lines = _apply_recipe(raw, columns, recipe, report)
    cols = _resolve_columns(raw, columns, header=header)
    report.columns = {k: v for k, v in vars(cols).items() if v not in (None, [])}
    checks, secs, values = _row_checks(raw, cols, time_unit, report, timezone, reject_time_outliers)
    if recipe is not None and recipe.behaviors and cols.behavior is not None:
        known = ~raw.frame[cols.behavior].isin(recipe.behavior_names()).to_numpy()
        checks.append(("unknown behavior", ~_missing(raw.frame[cols.behavior]) & known))
    bad = np.zeros(len(raw.frame), dtype=bool)
    for _, m in checks:
        bad |= m
    _record_rejects(raw, checks, bad, report, rejects_path)
    share = report.rows_rejected / n_read
    if share > max_reject_share or report.rows_rejected == n_read:
        opts = {"user_col": columns.user_col, "item_col": columns.item_col, "time_col": columns.time_col}
        opts |= {"behavior_col": columns.behavior_col, "value_col": columns.value_col, "sep": raw.sep}
        opts |= {"basket_col": columns.basket_col, "session_col": columns.session_col}
        raise_too_many(raw, report.rejects, share, max_reject_share, report, opts)
    df, names_src = _canonical_frame(raw, cols, ~bad, secs, values)
    if net_lines is not None:
        marked = np.isin(df[C.ROW].to_numpy(), net_lines[0])
        df, removed, report.net_unmatched = net_cancellations(df, marked, net_lines[1])
        report.rules_removed.update(removed)
    df = _filter(df, raw.source, report, dedupe, min_user_events, min_item_events)
    if names_src is not None:
        item_names = _first_names(df, names_src)
    df = df.reset_index(drop=True)
    report.rows_kept = len(df)
    context = (*cols.context, *(name for name, _ in cols.groups()))
    return CleanEvents(df, report, context, item_names, raw.source)


def _apply_recipe(
    raw: RawTable, columns: ColumnSpec, recipe: Recipe | None, report: IngestReport
) -> tuple[RawTable, ColumnSpec, tuple[np.ndarray, str] | None]:
    """The rows the recipe's rules keep (the others counted by rule name in ``report``), with
    behaviours mapped or set by rules; and the source lines a ``net`` rule marks, with its name."""
    if recipe is None:
        return raw, columns, None
    bcol = columns.behavior_col
    bcol = _resolve(raw, bcol, "behaviour types", "behavior-col", header=True) if bcol is not None else None
    p = prepare_rows(raw.frame, raw.lines, recipe, bcol)
    report.recipe, report.rules_removed, report.rules_values = recipe.source, p.removed, p.values
    report.rules_tagged = p.tagged
    if p.behavior_col is not None:
        columns = replace(columns, behavior_col=p.behavior_col)
    return replace(raw, frame=p.frame, lines=p.lines), columns, p.net


_ALIASES = {C.USER: ("user", "userid"), C.ITEM: ("item", "itemid"), C.TIME: ("time", "ts")}


def _alias(raw: RawTable, col: Any) -> Any:
    """A default column name that is absent takes its common short form (``user``, ``item``, ``time``)."""
    if col not in _ALIASES or str(col) in raw.frame.columns:
        return col
    low = {str(c).lower(): str(c) for c in raw.frame.columns}
    return next((low[a] for a in _ALIASES[col] if a in low), col)


def _resolve_columns(raw: RawTable, spec: ColumnSpec, *, header: bool) -> _Resolved:
    spec = replace(spec, user_col=_alias(raw, spec.user_col), item_col=_alias(raw, spec.item_col))
    spec = replace(spec, time_col=_alias(raw, spec.time_col))

    def opt(col: Any, role: str, option: str) -> str | None:
        return _resolve(raw, col, role, option, header=header) if col is not None else None

    ccols = [_resolve(raw, c, "context values", "context-col", header=header) for c in spec.context_cols]
    for c in ccols:
        if c in C.RESERVED:
            raise IngestError(f"{raw.source}: context column {c!r} clashes with a reserved column name; rename it")
    resolved = _Resolved(
        user=_resolve(raw, spec.user_col, "user ids", "user-col", header=header),
        item=_resolve(raw, spec.item_col, "item ids", "item-col", header=header),
        time=opt(spec.time_col, "timestamps", "time-col"),
        behavior=opt(spec.behavior_col, "behaviour types", "behavior-col"),
        value=opt(spec.value_col, "values", "value-col"),
        context=ccols,
        name=opt(spec.item_name_col, "item names", "item-name-col"),
        basket=opt(spec.basket_col, "basket ids", "basket-col"),
        session=opt(spec.session_col, "session ids", "session-col"),
    )
    for name, _ in resolved.groups():
        if name in ccols:
            raise IngestError(
                f"{raw.source}: context column {name!r} clashes with --{name}-col, which keeps its column as "
                f"{name!r}; drop one of the two"
            )
    roles = {"user_col": resolved.user, "item_col": resolved.item, "time_col": resolved.time}
    roles |= {"basket_col": resolved.basket, "session_col": resolved.session}
    C.check_distinct(roles, raw.source)
    return resolved


def _row_checks(
    raw: RawTable,
    cols: _Resolved,
    time_unit: str,
    report: IngestReport,
    timezone: str | None = None,
    reject_time_outliers: bool = False,
) -> tuple[list[tuple[str, np.ndarray]], np.ndarray, np.ndarray | None]:
    """``(reason, bad-row mask)`` per check, the timestamps in seconds, and the numeric values."""
    frame = raw.frame
    checks: list[tuple[str, np.ndarray]] = [
        ("missing user", _missing(frame[cols.user])),
        ("missing item", _missing(frame[cols.item])),
        ("bad user id", non_scalar(frame[cols.user])),
        ("bad item id", non_scalar(frame[cols.item])),
    ]
    if cols.time is not None:
        t_missing = _missing(frame[cols.time])
        tp, t_checks = time_checks(
            frame[cols.time], raw.lines, time_unit=time_unit, timezone=timezone,
            reject_outliers=reject_time_outliers, report=report, source=raw.source,
        )  # fmt: skip
        secs, t_ok = tp.seconds, tp.ok
        checks += [("missing timestamp", t_missing), *t_checks]
        report.naive_timestamps = _naive_count(frame[cols.time], t_ok)
    else:  # file order, or the basket index of a basket file
        secs = raw.lines.copy() if raw.order is None else raw.order.copy()
        report.time_unit = raw.order_label
    if cols.behavior is not None:
        checks += [
            ("missing behavior", _missing(frame[cols.behavior])),
            ("bad behavior", non_scalar(frame[cols.behavior])),
        ]
    values = None
    if cols.value is not None:
        vs = frame[cols.value]
        if _is_text(vs):
            vs = vs.map(lambda x: x.strip() if isinstance(x, str) else x)
        values = pd.to_numeric(vs, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        checks.append(("bad value", ~np.isfinite(values)))
    for name, src in cols.groups():
        checks += [(f"missing {name}", _missing(frame[src])), (f"bad {name} id", non_scalar(frame[src]))]
    return checks, secs, values


def _record_rejects(
    raw: RawTable,
    checks: list[tuple[str, np.ndarray]],
    bad: np.ndarray,
    report: IngestReport,
    rejects_path: str | Path | None,
) -> None:
    rejects = build_rejects(raw, checks, bad)
    report.rows_rejected = len(rejects)
    report.rejects = rejects
    if len(rejects):
        counts = rejects["reason"].str.split(";").str[0].str.replace(r" \(.*$", "", regex=True).value_counts(sort=False)
        report.rejects_by_reason = {str(k): int(v) for k, v in counts.items()}
    if rejects_path is not None:
        report.rejects_path = write_rejects(rejects, rejects_path)
    elif len(rejects):
        logger.warning("%s: %d rows rejected (in report.rejects; EventLog.save writes them)", raw.source, len(rejects))


def _canonical_frame(
    raw: RawTable, cols: _Resolved, keep: np.ndarray, secs: np.ndarray, values: np.ndarray | None
) -> tuple[pd.DataFrame, pd.Series | None]:
    """The kept rows in canonical columns, and the raw item names of those rows (if asked for)."""
    frame = raw.frame
    df = pd.DataFrame(
        {
            C.USER: _normalize_ids(frame.loc[keep, cols.user]),
            C.ITEM: _normalize_ids(frame.loc[keep, cols.item]),
            C.TIME: secs[keep],
        }
    )
    if cols.behavior is not None:
        df[C.BEHAVIOR] = _normalize_ids(frame.loc[keep, cols.behavior]).astype(str).to_numpy()
    if values is not None:
        df[C.VALUE] = values[keep]
    for c in cols.context:
        s = frame.loc[keep, c]
        ok = s.notna().to_numpy()
        txt = np.full(len(s), "", dtype=object)
        if ok.any():
            txt[ok] = _normalize_ids(s[ok]).astype(str).to_numpy()
        df[c] = txt
    for name, src in cols.groups():  # never missing: rejected above
        df[name] = _normalize_ids(frame.loc[keep, src]).astype(str).to_numpy()
    df[C.ROW] = raw.lines[keep]
    names_src = frame.loc[keep, cols.name].reset_index(drop=True) if cols.name is not None else None
    return df, names_src


def _filter(
    df: pd.DataFrame, source: str, report: IngestReport, dedupe: bool, min_user_events: int, min_item_events: int
) -> pd.DataFrame:
    if dedupe:
        df, report.duplicates_removed = remove_duplicates(df)
    if min_user_events > 1 or min_item_events > 1:
        before = len(df)
        df, report.kcore_removed = kcore_filter(df, min_user_events=min_user_events, min_item_events=min_item_events)
        if len(df) == 0:
            raise IngestError(
                f"{source}: k-core filtering (min_user_events={min_user_events}, "
                f"min_item_events={min_item_events}) removed all {before:,} events; "
                "lower --min-user-events / --min-item-events"
            )
    return df


def _first_names(df: pd.DataFrame, names_src: pd.Series) -> pd.Series:
    """The first name seen per item, indexed by external item id."""
    nm = pd.DataFrame({"item": df[C.ITEM].to_numpy(), "name": names_src.to_numpy()[df.index.to_numpy()]})
    nm = nm[nm["name"].notna()].drop_duplicates("item", keep="first")
    return pd.Series(nm["name"].astype(str).to_numpy(), index=nm["item"].to_numpy())


# ----------------------------------------------------------------------------- helpers
_OFFSET = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?|UTC|GMT)\s*$"


def _naive_count(s: pd.Series, ok: np.ndarray) -> int:
    """Parsed date-times without an offset or zone (numeric epochs are UTC by definition)."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return int(ok.sum()) if getattr(s.dt, "tz", None) is None else 0
    if not _is_text(s):
        return 0
    text = s.astype(str).str.strip().where(np.asarray(ok), "")  # only parsed rows: no over-long text
    numeric = pd.to_numeric(text, errors="coerce").notna().to_numpy()
    aware = text.str.contains(_OFFSET, regex=True).to_numpy(dtype=bool)
    return int((np.asarray(ok) & ~numeric & ~aware).sum())


def _is_text(s: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)


def _missing(s: pd.Series) -> np.ndarray:
    miss = s.isna().to_numpy()
    if _is_text(s):
        miss = miss | (s.astype(str).str.strip() == "").to_numpy()
    return miss


def _normalize_ids(s: pd.Series) -> pd.Series:
    """Integer-like ids become int64, everything else stripped text.

    Text ids are int64 when every one is canonical integer text (``"12"``, ``"-3"``, ``"17850.0"``;
    not ``"007"``, which stays text so that ``"007"`` and ``"7"`` remain distinct).
    """
    s = s.reset_index(drop=True)
    if pd.api.types.is_bool_dtype(s):
        return s.astype(str)
    if pd.api.types.is_integer_dtype(s):
        return s.astype(np.int64)
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy(dtype=np.float64)
        if np.all(np.isfinite(v)) and np.all(v == np.floor(v)) and np.all(np.abs(v) < 2**53):
            return pd.Series(v.astype(np.int64))
        return s.astype(str)
    t = s.astype(str).str.strip()
    if len(t) and t.str.fullmatch(_INT_TEXT).all():
        return t.str.replace(r"\.0*$", "", regex=True).astype(np.int64)
    return t


def _resolve(raw: RawTable, col: Any, role: str, option: str, *, header: bool) -> str:
    cols = [str(c) for c in raw.frame.columns]
    if str(col) in cols:
        return str(col)
    if isinstance(col, int) and 0 <= col < len(cols):
        return cols[col]
    present = ", ".join(repr(c) for c in cols[:_MAX_NAMES]) if cols else "(none)"
    if len(cols) > _MAX_NAMES:  # a JSON object read as one row of thousands of "columns"
        present += f", ... ({len(cols):,} columns in all)"
    msg = f"{raw.source}: no column {col!r} for the {role}. Columns present: {present}."
    close = difflib.get_close_matches(str(col), cols, n=1, cutoff=0.6)
    lower = [c for c in cols if c.lower() == str(col).lower()]
    if lower or close:
        msg += f" Did you mean {(lower or close)[0]!r}?"
    msg += f" Pass --{option} (or {option.replace('-', '_')}=) with the name of the {role} column."
    if len(cols) > _MAX_NAMES and len(raw.frame) <= 1:
        raise IngestError(
            msg + " The file holds one record with many keys: a basket file must be one JSON object "
            "{user: [[item, ...], ...]} (baskets as lists of items); events need one row per event."
        )
    if raw.is_file and header and cols and all(_INT_TEXT.fullmatch(c.strip()) or _looks_numeric(c) for c in cols):
        msg += (
            " The first line looks like data, not a header: pass --no-header (header=False) with --names"
            " (names=[...]), or name columns by position."
        )
    if len(cols) == 1 and raw.sep is not None:
        msg += f" Only one column was found with separator {raw.sep!r}: pass --sep (sep=) with the right separator."
    raise IngestError(msg)


_MAX_NAMES = 20  # column names listed in a message


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
