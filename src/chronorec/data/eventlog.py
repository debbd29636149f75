"""EventLog: a validated, id-mapped, stably sorted behaviour log.

``EventLog.events`` holds internal integer ids only (see ``chronorec.data.columns``):
``user_idx``, ``item_idx``, ``timestamp`` (int64 seconds), optional ``behavior_idx``,
``value`` and context columns, plus ``row`` (the source line number). Events are sorted
stably by (user, timestamp, original order). External ids live in the IdMaps and are
restored in every output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.artifacts import atomic_dir, check_writable
from chronorec.data import columns as C
from chronorec.data.idmap import IdMap
from chronorec.data.ingest import CleanEvents, ColumnSpec, clean_events
from chronorec.data.readers import read_raw
from chronorec.data.sequences import SequenceStore
from chronorec.errors import ConfigError, DataError, IngestError

MARKER = "eventlog.json"
"""The file a complete EventLog save writes last; a folder without it is not an EventLog."""


@dataclass
class EventLog:
    events: pd.DataFrame
    users: IdMap
    items: IdMap
    behaviors: IdMap | None = None
    item_names: pd.Series | None = None  # indexed by internal item id
    context_columns: tuple[str, ...] = ()
    source: str = "<memory>"
    report: Any = None  # chronorec.data.ingest.IngestReport when read from a file
    _store: SequenceStore | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        users: IdMap | None = None,
        items: IdMap | None = None,
        behaviors: IdMap | None = None,
        item_names: pd.Series | dict | None = None,
        context_columns: tuple[str, ...] | list[str] = (),
        source: str = "<memory>",
        report: Any = None,
    ) -> "EventLog":
        """Build from a frame with canonical, already valid columns.

        ``df`` has ``user_id``, ``item_id``, ``timestamp`` (int64 seconds) and optionally
        ``behavior``, ``value`` and context columns. Use ``EventLog.read`` for raw input:
        it validates and quarantines bad rows before calling this.
        """
        for col in (C.USER, C.ITEM, C.TIME):
            if col not in df.columns:
                raise ValueError(f"missing column {col!r}")
        df = df.reset_index(drop=True)
        users = users if users is not None else IdMap(pd.unique(df[C.USER]))
        items = items if items is not None else IdMap(pd.unique(df[C.ITEM]))
        out = pd.DataFrame(
            {
                C.USER_IDX: users.to_internal(df[C.USER].to_numpy(), strict=True),
                C.ITEM_IDX: items.to_internal(df[C.ITEM].to_numpy(), strict=True),
                C.TIME: df[C.TIME].to_numpy().astype(np.int64),
            }
        )
        if C.BEHAVIOR in df.columns:
            behaviors = behaviors if behaviors is not None else IdMap(pd.unique(df[C.BEHAVIOR].astype(str)))
            out[C.BEHAVIOR_IDX] = behaviors.to_internal(df[C.BEHAVIOR].astype(str).to_numpy(), strict=True)
        if C.VALUE in df.columns:
            out[C.VALUE] = df[C.VALUE].to_numpy(dtype=np.float64)
        for col in context_columns:
            out[col] = df[col].fillna("").astype(str).to_numpy()
        out[C.ROW] = df[C.ROW].to_numpy(dtype=np.int64) if C.ROW in df.columns else np.arange(1, len(df) + 1)
        out = out.sort_values([C.USER_IDX, C.TIME, C.ROW], kind="stable").reset_index(drop=True)
        names = None
        if item_names is not None:
            s = pd.Series(item_names) if isinstance(item_names, dict) else item_names
            idx = items.to_internal(s.index.to_numpy())
            names = pd.Series(s.to_numpy()[idx > 0], index=idx[idx > 0]).sort_index()
        return cls(
            events=out,
            users=users,
            items=items,
            behaviors=behaviors,
            item_names=names,
            context_columns=tuple(context_columns),
            source=source,
            report=report,
        )

    @classmethod
    def from_sequences(
        cls, sequences: dict[Any, list[Any]] | list[tuple[Any, list[Any]]], *, source: str = "<memory>", **kwargs: Any
    ) -> "EventLog":
        """Build from ordered per-user item lists; timestamps become positions 0, 1, 2, ..."""
        pairs = list(sequences.items()) if isinstance(sequences, dict) else list(sequences)
        lens = np.array([len(s) for _, s in pairs], dtype=np.int64)
        df = pd.DataFrame(
            {
                C.USER: np.repeat(np.array([u for u, _ in pairs], dtype=object), lens),
                C.ITEM: np.concatenate([np.asarray(s) for _, s in pairs]) if pairs else np.zeros(0, np.int64),
                C.TIME: np.concatenate([np.arange(n) for n in lens]) if pairs else np.zeros(0, np.int64),
            }
        )
        if pairs and all(isinstance(u, (int, np.integer)) for u, _ in pairs):
            df[C.USER] = df[C.USER].astype(np.int64)
        return cls.from_frame(df, source=source, **kwargs)

    @classmethod
    def read(cls, source: Any, **kwargs: Any) -> "EventLog":
        """Read and validate a CSV / Parquet / JSON Lines file or a pandas/polars DataFrame.

        See :func:`read_events` for the options (column mapping, timestamp unit, rejects file,
        deduplication, k-core).
        """
        return read_events(source, **kwargs)

    @classmethod
    def from_clean(cls, clean: CleanEvents) -> "EventLog":
        """Build from the output of :func:`chronorec.data.ingest.clean_events`, completing its report."""
        report = clean.report
        log = cls.from_frame(
            clean.frame,
            context_columns=clean.context_columns,
            item_names=clean.item_names,
            source=clean.source,
            report=report,
        )
        report.n_users, report.n_items = log.n_users, log.n_items
        if not report.balanced:  # pragma: no cover - internal consistency guard
            raise AssertionError(report.summary())
        return log

    # ------------------------------------------------------------------ views
    @property
    def n_users(self) -> int:
        return self.users.size

    @property
    def n_items(self) -> int:
        return self.items.size

    def __len__(self) -> int:
        return len(self.events)

    def sequences(self) -> SequenceStore:
        """Per-user CSR sequences (cached)."""
        if self._store is None:
            ev = self.events
            extra = {c: pd.factorize(ev[c])[0].astype(np.int64) + 1 for c in self.context_columns}
            self._store = SequenceStore.from_arrays(
                ev[C.USER_IDX].to_numpy(),
                ev[C.ITEM_IDX].to_numpy(),
                n_users=self.n_users,
                n_items=self.n_items,
                timestamps=ev[C.TIME].to_numpy(),
                behaviors=ev[C.BEHAVIOR_IDX].to_numpy() if C.BEHAVIOR_IDX in ev.columns else None,
                extra=extra,
            )
        return self._store

    def with_events(self, events: pd.DataFrame) -> "EventLog":
        """A log over a subset of the events, with the same id maps (so ids stay comparable)."""
        return EventLog(
            events=events.reset_index(drop=True),
            users=self.users,
            items=self.items,
            behaviors=self.behaviors,
            item_names=self.item_names,
            context_columns=self.context_columns,
            source=self.source,
        )

    def item_name(self, internal: np.ndarray) -> np.ndarray:
        """Names for internal item ids (the external id as text where no name is known)."""
        ext = self.items.to_external(internal).astype(str)
        if self.item_names is None:
            return ext
        names = self.item_names.reindex(np.asarray(internal)).to_numpy()
        return np.where(pd.isna(names), ext, names).astype(str)

    def to_external_frame(self) -> pd.DataFrame:
        """The events with external ids, in the log's stable order."""
        ev = self.events
        out = pd.DataFrame(
            {
                C.USER: self.users.to_external(ev[C.USER_IDX].to_numpy()),
                C.ITEM: self.items.to_external(ev[C.ITEM_IDX].to_numpy()),
                C.TIME: ev[C.TIME].to_numpy(),
            }
        )
        if self.behaviors is not None and C.BEHAVIOR_IDX in ev.columns:
            out[C.BEHAVIOR] = self.behaviors.to_external(ev[C.BEHAVIOR_IDX].to_numpy())
        for col in [C.VALUE, *self.context_columns]:
            if col in ev.columns:
                out[col] = ev[col].to_numpy()
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the log to a folder: events.parquet (internal ids), the id maps, ``eventlog.json``
        and, for a log read from a file, ``ingest_report.json`` and (if rows were rejected and not
        saved elsewhere) ``rejects.csv``.

        The folder is written aside and renamed into place (:func:`chronorec.artifacts.atomic_dir`):
        a failed or killed save leaves the previous folder as it was, and the new folder holds only
        what this save wrote (``eventlog.json`` lists it). A file, or a non-empty folder that is not
        an EventLog, is refused with a :class:`~chronorec.errors.ConfigError`.
        """
        final = Path(directory)
        elsewhere = getattr(self.report, "rejects_path", None)
        if elsewhere is not None and final.resolve() in Path(elsewhere).resolve().parents:
            raise ConfigError(
                f"the rejects file {elsewhere} is inside {final}, which the save replaces as a whole; read "
                f"without rejects_path (the save writes {final / 'rejects.csv'} itself) or put it elsewhere"
            )
        check_save_target(final)
        with atomic_dir(final, marker=MARKER) as d:
            rejects_here = self._write(d, final)
        if rejects_here:
            self.report.rejects_path = str(final / "rejects.csv")
        return final

    def _write(self, d: Path, final: Path) -> bool:
        """Write every file into ``d`` (the marker last); whether a rejects.csv was written."""
        self.events.to_parquet(d / "events.parquet", index=False)
        self.users.save(d / "users.parquet")
        self.items.save(d / "items.parquet")
        if self.behaviors is not None:
            self.behaviors.save(d / "behaviors.parquet")
        if self.item_names is not None:
            pd.DataFrame({"internal_id": self.item_names.index, "name": self.item_names.to_numpy()}).to_parquet(
                d / "item_names.parquet", index=False
            )
        report = self.report if hasattr(self.report, "to_dict") else None
        rejects = getattr(report, "rejects", None)
        rejects_here = report is not None and report.rejects_path is None and rejects is not None and len(rejects) > 0
        if rejects_here:
            rejects.to_csv(d / "rejects.csv", index=False)
        if report is not None:
            info = report.to_dict() | ({"rejects_path": str(final / "rejects.csv")} if rejects_here else {})
            (d / "ingest_report.json").write_text(json.dumps(info, indent=2, default=_json_default))
        meta = {
            "source": self.source,
            "n_events": len(self),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "context_columns": list(self.context_columns),
            "files": sorted(p.name for p in d.iterdir()),
        }
        (d / MARKER).write_text(json.dumps(meta, indent=2))
        return rejects_here

    @classmethod
    def load(cls, directory: str | Path) -> "EventLog":
        """Read a folder written by :meth:`save`; only the files its ``eventlog.json`` lists are read.
        A folder written by :func:`chronorec.data.store.build_store` opens memory-mapped instead."""
        d = Path(directory)
        if not (d / MARKER).exists() and (d / "store.json").exists():  # an out-of-core event store
            return StoredEventLog.open(d)
        try:
            meta = json.loads((d / MARKER).read_text())
        except FileNotFoundError:
            raise DataError(f"{d}: no {MARKER}; not a folder written by `chronorec ingest` / EventLog.save") from None
        except (OSError, ValueError) as e:
            raise DataError(f"{d / MARKER} is unreadable or not JSON ({e}); ingest the events again") from e
        listed = meta.get("files")  # folders from before the list: whatever is there

        def has(name: str) -> bool:
            return name in listed if listed is not None else (d / name).exists()

        try:
            names = None
            if has("item_names.parquet"):
                t = pd.read_parquet(d / "item_names.parquet")
                names = pd.Series(t["name"].to_numpy(), index=t["internal_id"].to_numpy())
            return cls(
                events=pd.read_parquet(d / "events.parquet"),
                users=IdMap.load(d / "users.parquet"),
                items=IdMap.load(d / "items.parquet"),
                behaviors=IdMap.load(d / "behaviors.parquet") if has("behaviors.parquet") else None,
                item_names=names,
                context_columns=tuple(meta.get("context_columns", ())),
                source=meta.get("source", str(d)),
            )
        except (OSError, ValueError, KeyError) as e:  # pyarrow's errors derive from these
            raise DataError(f"{d}: a file of the EventLog is missing or corrupt ({e}); ingest the events again") from e


class StoredEventLog(EventLog):
    """The EventLog API over an out-of-core event store (:mod:`chronorec.data.store`): ``sequences()`` is
    memory-mapped; ``events`` is read from the store's Parquet parts on first use (small stores only)."""

    @classmethod
    def open(cls, directory: str | Path) -> "StoredEventLog":
        from chronorec.data.store import open_store

        store = open_store(directory)
        log = cls(events=None, users=store.id_map("users"), items=store.id_map("items"),
                  behaviors=store.id_map("behaviors"), source=str(directory), _store=store.sequences())  # fmt: skip
        log.event_store = store
        return log

    @property
    def events(self) -> pd.DataFrame:
        if self._events is None and getattr(self, "event_store", None) is not None:
            self._events = self.event_store.read_events()
        return self._events

    @events.setter
    def events(self, value: pd.DataFrame | None) -> None:
        self._events = value

    def __len__(self) -> int:
        return self.event_store.n_events if self._events is None else len(self._events)


def check_save_target(directory: str | Path) -> None:
    """Raise :class:`~chronorec.errors.ConfigError` if :meth:`EventLog.save` would refuse ``directory``:
    an existing file, a non-empty folder that is not an EventLog, or a path under a file. Callers
    check before a long read instead of failing after it."""
    p = Path(directory)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{p} exists and is a file, not a folder; choose another output folder")
    check_writable(p)
    if p.is_dir() and any(p.iterdir()) and not (p / MARKER).exists():
        raise ConfigError(
            f"{p} is a non-empty folder that is not an EventLog (no {MARKER}): refusing to replace it; "
            "choose another output folder"
        )
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{parent} is a file, so {p} cannot be created; choose another output folder")
            break


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def read_events(  # noqa: PLR0913 - one keyword per ingest option, as on the command line
    source: Any,
    *,
    user_col: str | int = C.USER,
    item_col: str | int = C.ITEM,
    time_col: str | int | None = C.TIME,
    behavior_col: str | int | None = None,
    value_col: str | int | None = None,
    context_cols: Sequence[str | int] = (),
    item_name_col: str | int | None = None,
    basket_col: str | int | None = None,
    session_col: str | int | None = None,
    time_unit: str = "auto",
    fmt: str | None = None,
    rejects_path: str | Path | None = None,
    dedupe: bool = True,
    min_user_events: int = 0,
    min_item_events: int = 0,
    sep: str | None = None,
    header: bool = True,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8-sig",
    max_reject_share: float = 0.5,
    timezone: str | None = None,
    recipe: Any = None,
    reject_time_outliers: bool = False,
) -> EventLog:
    """Read, validate and clean a behaviour log into an :class:`EventLog`.

    Args:
        source: path to a CSV / TSV (``sep`` auto-detected among ``,`` tab ``;`` ``|``), Parquet or
            JSON Lines file (``.jsonl``, ``.ndjson``, ``.json``; a JSON array also works), optionally
            ``.gz`` / ``.xz`` / ``.bz2`` / ``.zip`` compressed; or a pandas / polars DataFrame or a
            pyarrow Table.
        user_col, item_col: the caller's names for the user and item id columns (or 0-based
            positions). Integer-like ids become int64 external ids, other ids stripped text.
        time_col: the timestamp column: epoch seconds / milliseconds (numbers or numeric text),
            ISO-8601 or other date-time text, or datetimes; converted to int64 UTC epoch seconds.
            Naive date-times are taken as UTC. ``None``: no time column, the source line number
            is used as the timestamp (file order).
        behavior_col: optional behaviour type column (e.g. click / cart / buy), stored as text.
        value_col: optional numeric column (rating, price, quantity), stored as float64.
        context_cols: extra columns kept as text context (missing values become ``""``).
        item_name_col: optional column with item names (the first name seen per item is used).
        basket_col, session_col: optional basket / order id (``InvoiceNo``) and session id columns,
            kept as the context columns ``basket`` and ``session`` (the next-basket split groups by
            ``basket``). A JSON basket file ``{user: [[item, ...], ...]}`` needs no column options.
        time_unit: ``"auto"`` (median magnitude above 1e11 means milliseconds, above 1e14
            microseconds, above 1e17 nanoseconds) or ``"s"``, ``"ms"``, ``"us"``, ``"ns"``.
        fmt: ``"csv"``, ``"parquet"`` or ``"jsonl"`` to override detection by file suffix.
        rejects_path: where to write rejected rows (CSV, or Parquet if it ends in ``.parquet``),
            with columns ``line``, ``reason`` and the raw source values. Without it rejected rows
            are only kept in ``log.report.rejects`` and a warning is logged.
        dedupe: remove exact duplicate events (same user, item, timestamp, behaviour, value and
            context), keeping the first.
        min_user_events, min_item_events: iterative k-core thresholds (0 = off).
        sep: CSV separator (default: detected). ``r"\\s+"`` means runs of whitespace.
        header: whether a CSV file has a header line. Without one, columns are named ``"0"``,
            ``"1"``, ... (or by ``names``) and can be referred to by position.
        names: column names to use instead of the file's header (or for a header-less file).
        encoding: text encoding of CSV / JSON files (``utf-8-sig`` accepts a byte-order mark).
        max_reject_share: raise if more than this share of rows is rejected (default 0.5).
        timezone: IANA zone of naive date-times (e.g. ``"Europe/London"``); they are converted to
            UTC. Default: naive date-times are UTC (the report says how many were read so).
        recipe: a data recipe (a bundled name such as ``"online-retail"``, a YAML path or a
            :class:`~chronorec.data.recipes.Recipe`): its columns, reading options and row rules.
            Options left at their defaults take the recipe's values.
        reject_time_outliers: reject rows whose timestamp is negative, before 1990 or in the future
            (more than a day after now). Default: keep them; the report counts them with examples.

    Returns:
        An EventLog whose ``report`` is an :class:`IngestReport`.

    Raises:
        IngestError: missing file or column, no data rows, too many bad rows, nothing left after
            filtering. Messages name the file, the offending lines and the option that fixes it.
    """
    o = {k: v for k, v in locals().items() if k not in ("source", "recipe")}
    if recipe is not None:
        from chronorec.data.recipes import load_recipe, with_recipe_defaults

        recipe = load_recipe(recipe)
        o = with_recipe_defaults(recipe, o, read_events)
    if (
        rejects_path is not None
        and isinstance(source, (str, Path))
        and Path(rejects_path).resolve() == Path(source).resolve()
    ):
        raise IngestError(f"rejects_path {rejects_path} is the input file itself; name another file for the rejects")
    raw = read_raw(source, fmt=o["fmt"], sep=o["sep"], header=o["header"], names=o["names"], encoding=o["encoding"])
    columns = ColumnSpec(*(o[k] for k in ("user_col", "item_col", "time_col", "behavior_col", "value_col")))
    columns = replace(columns, context_cols=tuple(o["context_cols"]), item_name_col=o["item_name_col"])
    columns = replace(columns, basket_col=o["basket_col"], session_col=o["session_col"])
    if raw.kind in ("baskets", "sequences"):  # {user: [[item, ...], ...]}: the basket index (position) is the time
        columns = replace(columns, user_col=C.USER, item_col=C.ITEM, time_col=None)
        columns = replace(columns, basket_col=C.BASKET if raw.kind == "baskets" else None)
    clean = clean_events(
        raw,
        columns,
        rejects_path=rejects_path,
        recipe=recipe,
        **{k: o[k] for k in ("time_unit", "dedupe", "min_user_events", "min_item_events", "header", "timezone")},
        max_reject_share=max_reject_share,
        reject_time_outliers=reject_time_outliers,
    )
    return EventLog.from_clean(clean)
