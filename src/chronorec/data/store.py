"""Out-of-core event store: a log larger than memory, ingested by DuckDB into Parquet + memory-mapped CSR.

:func:`build_store` streams a CSV / Parquet / JSON Lines file or a folder of Parquet files through DuckDB
(bounded by ``memory_limit``; DuckDB spills its sorts and hash tables to ``out/.work``) and writes::

    out/store.json             sizes, dtypes, the ingest accounting (rows read = kept + rejected + duplicates)
    out/events/part-NNNNN.parquet  the clean events with internal ids, sorted by (user, time, source order);
                               each part holds a contiguous range of users (the partitioning)
    out/sequences/offsets.npy  CSR offsets (n_users + 2, int64), as SequenceStore
    out/sequences/items.npy    internal item ids (int32), timestamps.npy (int64), behaviors.npy (int8)
    out/users.parquet, items.parquet, behaviors.parquet   id maps (internal id = rank of the external id)
    out/rejects.csv            rejected rows: line, reason and the raw values

:func:`open_store` maps the arrays with ``numpy.load(mmap_mode="r")``: training and evaluation read
pages, never the whole log. ``EventLog.load`` of a store folder gives the one EventLog API over it
(:class:`chronorec.data.eventlog.StoredEventLog`): ``sequences()`` is the memory-mapped store and
``events`` is read from the Parquet parts only if asked for (a small log).

Why DuckDB (benchmarks/scale.py, docs/scale.md): its sort, aggregation and joins spill to disk under a
memory limit, so peak memory stays flat as the log grows; polars' streaming engine was measured beside it.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.data.idmap import IdMap
from chronorec.data.sequences import SequenceStore
from chronorec.data.store_check import file_records, verify_store
from chronorec.errors import ConfigError, DataError, IngestError

STORE_MARKER = "store.json"
BATCH_ROWS = 1 << 20
PART_ROWS = 1 << 23  # events per Parquet part (about 8M; parts split between users)
DTYPES = {"offsets": "int64", "items": "int32", "timestamps": "int64", "behaviors": "int8"}


@dataclass
class StoreReport:
    source: str
    rows_read: int = 0
    kept: int = 0
    rejected: int = 0
    duplicates: int = 0
    n_users: int = 0
    n_items: int = 0
    rejects_path: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    engine: str = "duckdb"
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase of the build

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.kept + self.rejected + self.duplicates

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"balanced": self.balanced}


# ---------------------------------------------------------------------- reading the source
def _run(con, sql: str) -> None:
    """Run a statement to completion (DuckDB refuses new work while a result is unfinished)."""
    con.execute(sql).fetchall()


def _sql_str(s: str | Path) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _sql_ident(name: str) -> str:
    """A column name as a quoted SQL identifier (a quote inside it doubled): a name is never SQL."""
    return '"' + str(name).replace('"', '""') + '"'


def source_relation(source: str | Path, fmt: str | None = None) -> tuple[str, str, str, int]:
    """(FROM clause, line expression, order key expression, header lines) of a file or folder."""
    p = Path(source)
    if not p.exists():
        raise IngestError(f"{p}: no such file or folder")
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*.parquet"))
        if not files:
            raise IngestError(f"{p}: a folder source must hold .parquet files (none found)")
        rel = f"read_parquet([{', '.join(map(_sql_str, files))}], file_row_number=true)"
        return rel, "file_row_number + 1", "file_index * 1099511627776 + file_row_number", 0
    kind = fmt or {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}.get(
        p.suffix.lower(), "csv"
    )
    if kind == "parquet":
        return f"read_parquet({_sql_str(p)}, file_row_number=true)", "file_row_number + 1", "file_row_number", 0
    if kind == "jsonl":
        rel = f"(SELECT row_number() OVER () AS __n, * FROM read_json({_sql_str(p)}, format='newline_delimited'))"
        return rel, "__n", "__n", 0
    if kind != "csv":
        raise ConfigError(f"format {fmt!r}: expected csv, parquet or jsonl")
    rel = f"(SELECT row_number() OVER () AS __n, * FROM read_csv({_sql_str(p)}, header=true, all_varchar=true))"
    return rel, "__n + 1", "__n", 1


def _time_expr(con, rel: str, col: str, unit: str) -> str:
    """SQL turning the time column into int64 epoch seconds (NULL when missing or unparseable)."""
    typ = str(con.execute(f"DESCRIBE SELECT {col} FROM {rel}").fetchall()[0][1]).upper()
    if "TIMESTAMP" in typ or typ == "DATE":
        return f"CAST(epoch({col}) AS BIGINT)"
    num = f"TRY_CAST({col} AS DOUBLE)"
    if unit == "auto":
        med = con.execute(f"SELECT median(abs({num})) FROM (SELECT {col} FROM {rel} LIMIT 100000)").fetchall()[0][0]
        unit = "s" if med is None or med < 1e11 else "ms" if med < 1e14 else "us" if med < 1e17 else "ns"
    div = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    parsed = f"TRY_CAST(epoch(TRY_CAST({col} AS TIMESTAMP)) AS BIGINT)" if "CHAR" in typ else "NULL"
    return f"COALESCE(CAST(floor({num} / {div}) AS BIGINT), {parsed})"


def _id_expr(col: str, typ: str) -> str:
    return f"NULLIF(trim({col}), '')" if "CHAR" in typ.upper() else col


# ---------------------------------------------------------------------- building
def build_store(  # noqa: PLR0913 - one keyword per ingest option
    source: str | Path,
    out: str | Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    behavior_col: str | None = "behavior",
    fmt: str | None = None,
    time_unit: str = "auto",
    dedupe: bool = True,
    memory_limit: str = "2GB",
    threads: int | None = None,
    engine: str = "duckdb",
) -> StoreReport:
    """Ingest ``source`` into an event store at ``out`` (see the module); return its report."""
    if engine != "duckdb":
        raise ConfigError(f"engine {engine!r}: the store is built with duckdb (polars was measured, see docs/scale.md)")
    try:
        import duckdb
    except ImportError:
        raise ConfigError("the event store needs DuckDB: pip install 'chronorec[duckdb]'") from None

    from chronorec.artifacts import atomic_dir

    t0 = time.perf_counter()
    final = Path(out)
    report = StoreReport(source=str(source))
    has_b = behavior_col is not None
    with atomic_dir(final, marker=STORE_MARKER) as out:  # a failed build leaves the previous store as it was
        work = out / ".work"
        work.mkdir()
        con = duckdb.connect(str(work / "work.duckdb"))
        try:
            _run(con, f"SET memory_limit={_sql_str(memory_limit)}; SET temp_directory={_sql_str(work / 'spill')}")
            if threads:
                _run(con, f"SET threads={int(threads)}")
            _stage_clean(con, source, fmt, (user_col, item_col, time_col, behavior_col), time_unit, dedupe, report)
            _write_rejects(con, out, report)
            report.phases["read_validate_dedupe"] = time.perf_counter() - t0
            _write_maps(con, out, has_b, report)
            report.phases["id_maps"] = time.perf_counter() - t0 - sum(report.phases.values())
            _write_sorted(con, out, has_b, report)
            report.phases["sort_sequences_parts"] = time.perf_counter() - t0 - sum(report.phases.values())
        finally:
            con.close()
            shutil.rmtree(work, ignore_errors=True)
        report.seconds = time.perf_counter() - t0
        if report.rejects_path:
            report.rejects_path = str(final / "rejects.csv")
        if not report.balanced:  # pragma: no cover - internal consistency guard
            raise AssertionError(report.to_dict())
        _write_meta(out, report, has_b)
    return report


def _stage_clean(con, source, fmt, cols, time_unit: str, dedupe: bool, report: StoreReport) -> None:
    """Table ``checked`` (every row with its reject reason) and ``clean`` (valid, deduplicated)."""
    user_col, item_col, time_col, behavior_col = (None if c is None else _sql_ident(c) for c in cols)
    rel, line, order, _ = source_relation(source, fmt)
    names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
    types = dict(r[:2] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall())
    for c in cols:
        if c is not None and c not in names:
            raise IngestError(f"{source}: no column {c!r} (columns: {[n for n in names if not n.startswith('__')]})")
    t = _time_expr(con, rel, time_col, time_unit)
    u, i = _id_expr(user_col, types[cols[0]]), _id_expr(item_col, types[cols[1]])
    b = f"CAST({behavior_col} AS VARCHAR)" if behavior_col else "NULL"
    _run(con, f"""CREATE TABLE checked AS SELECT {u} AS u, {i} AS i, {t} AS t, {b} AS b,
        {line} AS line, {order} AS ord,
        CASE WHEN {u} IS NULL THEN 'missing user' WHEN {i} IS NULL THEN 'missing item'
             WHEN {t} IS NULL THEN 'missing or unparseable timestamp' END AS reason
        FROM {rel}""")  # fmt: skip
    _run(con, "SET preserve_insertion_order=false")  # line numbers are taken: order no longer matters
    report.rows_read = con.execute("SELECT count(*) FROM checked").fetchall()[0][0]
    report.reasons = dict(
        con.execute("SELECT reason, count(*) FROM checked WHERE reason IS NOT NULL GROUP BY 1").fetchall()
    )
    report.rejected = sum(report.reasons.values())
    if report.rows_read == 0:
        raise IngestError(f"{source}: no data rows")
    key = "GROUP BY u, i, t, b" if dedupe else "GROUP BY u, i, t, b, ord"
    _run(con, f"CREATE TABLE clean AS SELECT u, i, t, b, min(ord) AS ord FROM checked WHERE reason IS NULL {key}")
    report.kept = con.execute("SELECT count(*) FROM clean").fetchall()[0][0]
    report.duplicates = report.rows_read - report.rejected - report.kept
    if report.kept == 0:
        raise IngestError(f"{source}: every row was rejected ({report.reasons})")


def _write_rejects(con, out: Path, report: StoreReport) -> None:
    if report.rejected:
        path = out / "rejects.csv"
        _run(con, f"COPY (SELECT line, reason, CAST(u AS VARCHAR) AS user, CAST(i AS VARCHAR) AS item, t AS timestamp "
                    f"FROM checked WHERE reason IS NOT NULL ORDER BY line) TO {_sql_str(path)} (HEADER)")  # fmt: skip
        report.rejects_path = str(path)
    _run(con, "DROP TABLE checked")


def _write_maps(con, out: Path, behaviors: bool, report: StoreReport) -> None:
    """Id maps: internal id = rank of the external id (1..n); written as IdMap's Parquet."""
    for name, col in [("users", "u"), ("items", "i")] + ([("behaviors", "b")] if behaviors else []):
        _run(con, f"CREATE TABLE map_{col} AS SELECT {col} AS external_id, "
                    f"CAST(row_number() OVER (ORDER BY {col}) AS BIGINT) AS internal_id FROM (SELECT DISTINCT {col} FROM clean)")  # fmt: skip
        _run(con, f"COPY (SELECT internal_id, external_id FROM map_{col} ORDER BY internal_id) "
                    f"TO {_sql_str(out / (name + '.parquet'))} (FORMAT parquet)")  # fmt: skip
    report.n_users = con.execute("SELECT count(*) FROM map_u").fetchall()[0][0]
    report.n_items = con.execute("SELECT count(*) FROM map_i").fetchall()[0][0]
    if report.n_items >= 2**31 - 1:
        raise DataError(f"{report.n_items} items do not fit the store's int32 item ids")


def _write_sorted(con, out: Path, behaviors: bool, report: StoreReport) -> None:
    """Stream the clean events sorted by (user, time, source order) into the CSR arrays and the Parquet parts."""
    bcol = "CAST(mb.internal_id AS TINYINT)" if behaviors else "CAST(0 AS TINYINT)"
    bjoin = "JOIN map_b mb ON c.b IS NOT DISTINCT FROM mb.external_id" if behaviors else ""
    query = f"""SELECT mu.internal_id AS user_idx, CAST(mi.internal_id AS INTEGER) AS item_idx, c.t AS timestamp,
        {bcol} AS behavior_idx FROM clean c JOIN map_u mu ON c.u = mu.external_id
        JOIN map_i mi ON c.i = mi.external_id {bjoin} ORDER BY user_idx, timestamp, c.ord"""  # fmt: skip
    writer = CsrWriter(out, report.kept, report.n_users)
    reader = con.sql(query).to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        writer.add(batch)
    writer.close()


class CsrWriter:
    """Writes sorted batches into the CSR .npy arrays and the Parquet parts.

    The arrays are appended with plain writes after a .npy header of the known length (not through a
    memory map, whose dirty pages would count in this process's memory as the log grows)."""

    def __init__(self, out: Path, n_events: int, n_users: int):
        from numpy.lib import format as npy

        seq = out / "sequences"
        seq.mkdir(parents=True, exist_ok=True)
        (out / "events").mkdir(exist_ok=True)
        self.out, self.pos, self.part, self.part_rows, self.writer = out, 0, 0, 0, None
        self.files = {}
        for k in ("items", "timestamps", "behaviors"):
            f = open(seq / f"{k}.npy", "wb")  # noqa: SIM115 - closed in close()
            header = {"descr": npy.dtype_to_descr(np.dtype(DTYPES[k])), "fortran_order": False, "shape": (n_events,)}
            npy.write_array_header_1_0(f, header)
            self.files[k] = f
        self.counts = np.zeros(n_users + 2, dtype=np.int64)
        self.last_user = 0

    def add(self, batch) -> None:
        import pyarrow.parquet as pq

        cols = {name: batch.column(name).to_numpy(zero_copy_only=False) for name in batch.schema.names}
        n = len(cols["user_idx"])
        for src, dst in (("item_idx", "items"), ("timestamp", "timestamps"), ("behavior_idx", "behaviors")):
            self.files[dst].write(np.ascontiguousarray(cols[src], dtype=DTYPES[dst]).tobytes())
        self.counts += np.bincount(cols["user_idx"], minlength=len(self.counts))[: len(self.counts)]
        self.pos += n
        # a new part once the current one is full, at a user boundary (each part: a contiguous user range)
        if self.writer is not None and self.part_rows >= PART_ROWS and cols["user_idx"][0] != self.last_user:
            self.writer.close()
            self.writer, self.part, self.part_rows = None, self.part + 1, 0
        if self.writer is None:
            path = self.out / "events" / f"part-{self.part:05d}.parquet"
            self.writer = pq.ParquetWriter(path, batch.schema, compression="zstd")
        self.writer.write_batch(batch)
        self.part_rows += n
        self.last_user = int(cols["user_idx"][-1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        for f in self.files.values():
            f.close()
        if self.pos != sum(self.counts):  # pragma: no cover - internal consistency guard
            raise AssertionError(f"wrote {self.pos} events, counted {sum(self.counts)}")
        offsets = np.zeros(len(self.counts), dtype=np.int64)
        np.cumsum(self.counts[:-1], out=offsets[1:])
        np.save(self.out / "sequences" / "offsets.npy", offsets)


def _write_meta(out: Path, report: StoreReport, behaviors: bool) -> None:
    meta = {
        "format": "chronorec-event-store/1",
        "n_events": report.kept,
        "n_users": report.n_users,
        "n_items": report.n_items,
        "behaviors": behaviors,
        "dtypes": DTYPES,
        "parts": sorted(p.name for p in (out / "events").glob("*.parquet")),
        "report": report.to_dict(),
        "files": file_records(out, skip=(STORE_MARKER,)),
    }
    (out / STORE_MARKER).write_text(json.dumps(meta, indent=2, default=str))


# ---------------------------------------------------------------------- reading
def is_store(directory: str | Path) -> bool:
    return (Path(directory) / STORE_MARKER).exists()


@dataclass
class EventStore:
    """An event store folder: its metadata and memory-mapped CSR sequences."""

    path: Path
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)  # verified at open

    @property
    def n_events(self) -> int:
        return int(self.meta["n_events"])

    def sequences(self) -> SequenceStore:
        """The CSR arrays, memory-mapped (nothing is read until a page is touched), checked by
        :func:`~chronorec.data.store_check.verify_store` first."""
        arr = self.arrays if self.arrays is not None else verify_store(self.path, self.meta)
        n = self.n_events
        return SequenceStore(
            offsets=arr["offsets"],
            items=arr["items"][:n],
            n_items=int(self.meta["n_items"]),
            timestamps=arr["timestamps"][:n],
            behaviors=arr["behaviors"][:n] if self.meta.get("behaviors") else None,
        )

    def id_map(self, name: str) -> IdMap | None:
        path = self.path / f"{name}.parquet"
        return IdMap.load(path) if path.exists() else None

    def read_events(self):
        """The events as a pandas frame in EventLog's layout (reads every part: small stores only)."""
        import pandas as pd

        from chronorec.data import columns as C

        try:
            frame = pd.read_parquet(self.path / "events")
        except (OSError, ValueError) as e:  # pyarrow's errors derive from these
            raise DataError(f"{self.path}: its Parquet parts do not read ({type(e).__name__}); rebuild it") from e
        out = pd.DataFrame({C.USER_IDX: frame["user_idx"].to_numpy(np.int64),
                            C.ITEM_IDX: frame["item_idx"].to_numpy(np.int64),
                            C.TIME: frame["timestamp"].to_numpy(np.int64)})  # fmt: skip
        if self.meta.get("behaviors"):
            out[C.BEHAVIOR_IDX] = frame["behavior_idx"].to_numpy(np.int64)
        out[C.ROW] = np.arange(1, len(out) + 1)
        return out


def open_store(directory: str | Path) -> EventStore:
    d = Path(directory)
    try:
        meta = json.loads((d / STORE_MARKER).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{d}: not a readable event store ({e}); build it with `chronorec store build`") from e
    if not isinstance(meta, dict):
        raise DataError(f"{d}: store.json is not an object; rebuild it with `chronorec store build`")
    return EventStore(d, meta, verify_store(d, meta))


__all__ = ["EventStore", "StoreReport", "build_store", "is_store", "open_store"]
