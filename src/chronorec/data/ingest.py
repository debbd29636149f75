"""Read raw behaviour logs into a validated :class:`~chronorec.data.eventlog.EventLog`.

``read_events`` accepts CSV (separator auto-detected), Parquet and JSON Lines files, optionally
compressed (``.gz``, ``.xz``, ``.bz2``, ``.zip``), as well as pandas / polars DataFrames and
pyarrow Tables. The caller names their columns; the result uses the canonical names of
``chronorec.data.columns``.

Nothing is dropped silently. Every input row ends up in exactly one of four places, and the
:class:`IngestReport` checks that ``rows_read == rows_kept + rows_rejected + duplicates_removed +
kcore_removed``:

* kept in the EventLog;
* rejected (missing user/item, missing or unparseable timestamp, non-numeric value, ...):
  written with its source line number, the reason and its raw values to the rejects file;
* removed as an exact duplicate of an earlier row;
* removed by k-core filtering.

Line numbers are 1-based physical lines of the source file: for a CSV with a header the first
data row is line 2. For DataFrames, Parquet and JSON arrays they are the 0-based row position + 1.
Blank lines are skipped (and counted as ``blank_lines``), not treated as rows.
"""

from __future__ import annotations

import bz2
import csv
import difflib
import gzip
import io
import json
import logging
import lzma
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.data.clean import kcore_filter, remove_duplicates
from chronorec.data.eventlog import EventLog
from chronorec.errors import IngestError

__all__ = ["IngestError", "IngestReport", "read_events", "detect_format", "detect_separator"]

logger = logging.getLogger(__name__)

_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".xz": "xz", ".bz2": "bz2", ".zip": "zip"}
_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".dat": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_SEP_CANDIDATES = (",", "\t", ";", "|")
_TIME_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
# Same strings pandas treats as missing by default (used by the slow, exact CSV reader).
_NA_STRINGS = frozenset(
    "#N/A,#N/A N/A,#NA,-1.#IND,-1.#QNAN,-NaN,-nan,1.#IND,1.#QNAN,<NA>,N/A,NA,NULL,NaN,None,n/a,nan,null".split(",")
) | {""}
_INT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.0*)?")
_MAX_ABS_SECONDS = 10**11  # about year 5138: anything larger is a wrong time unit, not a date
_REASON_FIX = {
    "missing user": "check that --user-col (user_col=) names the user id column, currently {user_col!r}",
    "missing item": "check that --item-col (item_col=) names the item id column, currently {item_col!r}",
    "missing timestamp": "check that --time-col (time_col=) names the time column, currently {time_col!r}",
    "bad timestamp": (
        "pass --time-unit (time_unit='s' or 'ms') or --time-col (time_col=) naming the time column, "
        "currently {time_col!r}; timestamps must be epoch seconds/milliseconds or ISO-8601 date-times"
    ),
    "missing behavior": "check that --behavior-col (behavior_col=) names the behaviour column, currently {behavior_col!r}",
    "bad value": "check that --value-col (value_col=) names a numeric column, currently {value_col!r}",
    "wrong number of fields": "pass --sep (sep=) with the right separator, detected {sep!r}, or quote fields that contain it",
    "invalid JSON": "fix or remove the malformed lines; every line must be one JSON object",
}


# ----------------------------------------------------------------------------- report
@dataclass
class IngestReport:
    """What happened to every row of one input.

    ``rows_read == rows_kept + rows_rejected + duplicates_removed + kcore_removed`` always holds
    for a report attached to an EventLog. ``rejects`` holds the rejected rows in memory (also
    written to ``rejects_path`` when one was given); it is left out of :meth:`to_dict`.
    """

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_rejected: int = 0
    duplicates_removed: int = 0
    kcore_removed: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    rejects_path: str | None = None
    blank_lines: int = 0
    time_unit: str | None = None
    n_users: int = 0
    n_items: int = 0
    min_user_events: int = 0
    min_item_events: int = 0
    rejects: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def balanced(self) -> bool:
        """Whether every read row is accounted for."""
        return self.rows_read == self.rows_kept + self.rows_rejected + self.duplicates_removed + self.kcore_removed

    def summary(self) -> str:
        """A short human-readable account, ending with the row-count check."""
        unit = f" (time unit: {self.time_unit})" if self.time_unit else ""
        lines = [f"Read {self.rows_read:,} rows from {self.source}{unit}."]
        lines.append(f"  kept        {self.rows_kept:>12,}  ({self.n_users:,} users, {self.n_items:,} items)")
        rej = f"  rejected    {self.rows_rejected:>12,}"
        if self.rejects_by_reason:
            rej += "  (" + ", ".join(f"{k}: {v:,}" for k, v in self.rejects_by_reason.items()) + ")"
        if self.rejects_path:
            rej += f" -> {self.rejects_path}"
        elif self.rows_rejected:
            rej += " (not saved: pass --rejects / rejects_path= to keep them)"
        lines.append(rej)
        lines.append(f"  duplicates  {self.duplicates_removed:>12,}")
        kc = f"  k-core      {self.kcore_removed:>12,}"
        if self.min_user_events > 1 or self.min_item_events > 1:
            kc += f"  (min_user_events={self.min_user_events}, min_item_events={self.min_item_events})"
        lines.append(kc)
        if self.blank_lines:
            lines.append(f"  ({self.blank_lines:,} blank lines skipped, not counted as rows)")
        check = "OK" if self.balanced else "MISMATCH"
        lines.append(
            f"Check: {self.rows_read:,} read = {self.rows_kept:,} kept + {self.rows_rejected:,} rejected"
            f" + {self.duplicates_removed:,} duplicates + {self.kcore_removed:,} k-core: {check}"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields (without the in-memory ``rejects`` frame)."""
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_rejected": self.rows_rejected,
            "duplicates_removed": self.duplicates_removed,
            "kcore_removed": self.kcore_removed,
            "rejects_by_reason": dict(self.rejects_by_reason),
            "rejects_path": self.rejects_path,
            "blank_lines": self.blank_lines,
            "time_unit": self.time_unit,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "min_user_events": self.min_user_events,
            "min_item_events": self.min_item_events,
            "balanced": self.balanced,
        }


# ----------------------------------------------------------------------------- raw input
@dataclass
class _Raw:
    frame: pd.DataFrame  # source columns, raw values
    lines: np.ndarray  # int64 line number per frame row
    source: str
    is_file: bool
    sep: str | None = None
    blank_lines: int = 0
    parse_rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, raw text)


def detect_format(path: str | Path, fmt: str | None = None) -> tuple[str | None, str | None]:
    """``(format, compression)`` of a file from its suffixes; ``fmt`` overrides the format.

    Formats: ``csv`` (also ``.tsv``, ``.txt``, ``.dat``), ``parquet`` and ``jsonl`` (``.jsonl``,
    ``.ndjson``, ``.json``). The format is ``None`` when the suffix does not tell; the reader then
    looks at the content (a JSON object or array, the Parquet magic bytes, else CSV).
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        compression = _COMPRESSIONS[suffixes.pop()]
    if fmt is not None:
        f = fmt.lower().lstrip(".")
        f = {"json": "jsonl", "ndjson": "jsonl", "tsv": "csv", "pq": "parquet"}.get(f, f)
        if f not in ("csv", "parquet", "jsonl"):
            raise IngestError(f"{path}: unknown format {fmt!r}; use --format csv, parquet or jsonl")
        return f, compression
    return (_FORMATS.get(suffixes[-1]) if suffixes else None), compression


def _sniff_format(data: bytes, member: str | None) -> str:
    if member is not None:
        suffixes = [s.lower() for s in Path(member).suffixes]
        if suffixes and suffixes[-1] in _FORMATS:
            return _FORMATS[suffixes[-1]]
    if data[:4] == b"PAR1":
        return "parquet"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head[:1] in (b"{", b"[") else "csv"


def _read_bytes(path: Path, compression: str | None) -> tuple[bytes, str | None]:
    """Decompressed file content and, for a .zip, the name of the data file inside."""
    if compression is None:
        return path.read_bytes(), None
    if compression == "gzip":
        return gzip.decompress(path.read_bytes()), None
    if compression == "xz":
        return lzma.decompress(path.read_bytes()), None
    if compression == "bz2":
        return bz2.decompress(path.read_bytes()), None
    with zipfile.ZipFile(path) as zf:
        members = [n for n in zf.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
        if len(members) != 1:
            raise IngestError(f"{path}: a .zip must hold exactly one data file, found {members}")
        return zf.read(members[0]), members[0]


def detect_separator(text: str, *, max_lines: int = 50) -> str:
    """Pick the CSV separator among ``,``, tab, ``;`` and ``|`` from the first lines of ``text``.

    The winner splits every sampled line into the same number (> 1) of fields, honouring quotes;
    ties go to the most fields. Falls back to whitespace (``r"\\s+"``) when none of them occurs but
    spaces do, else to ``,``.
    """
    sample = [ln for ln in text.splitlines()[: max_lines * 2] if ln.strip()][:max_lines]
    if not sample:
        return ","
    best, best_fields = None, 1
    for sep in _SEP_CANDIDATES:
        counts = {len(r) for r in csv.reader(sample, delimiter=sep)}
        if len(counts) == 1 and (n := counts.pop()) > best_fields:
            best, best_fields = sep, n
    if best is not None:
        return best
    # no consistent candidate: the one with most fields on the header line
    first = sample[0]
    counts = {sep: first.count(sep) for sep in _SEP_CANDIDATES}
    sep = max(counts, key=lambda s: counts[s])
    if counts[sep] > 0:
        return sep
    return r"\s+" if " " in first.strip() else ","


def _read_csv(path: Path, data: bytes, *, sep: str | None, header: bool, names, encoding: str) -> _Raw:
    text_head = data[:65536].decode(encoding, errors="replace")
    if sep is None:
        sep = detect_separator(text_head)
    if not data.strip():
        return _Raw(pd.DataFrame(), np.zeros(0, np.int64), str(path), True, sep)
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    first_line = 1 if header else 0
    kwargs: dict[str, Any] = {
        "sep": sep,
        "header": 0 if header else None,
        "dtype": str,
        "skip_blank_lines": False,
        "encoding": encoding,
    }
    if names is not None:
        kwargs["names"] = list(names)
    try:
        frame = pd.read_csv(io.BytesIO(data), **kwargs)
    except pd.errors.EmptyDataError:
        return _Raw(pd.DataFrame(), np.zeros(0, np.int64), str(path), True, sep)
    except UnicodeDecodeError as e:
        raise IngestError(f"{path}: cannot decode as {encoding} ({e}); pass encoding=, e.g. 'latin-1'") from e
    except pd.errors.ParserError:
        frame = None  # malformed rows: the exact reader below rejects them with their line numbers
    if frame is not None and len(frame) == n_lines - first_line:
        frame.columns = [str(c).strip() for c in frame.columns]
        lines = np.arange(1 + first_line, len(frame) + 1 + first_line, dtype=np.int64)
        blank = _blank_rows(frame)
        raw = _Raw(frame, lines, str(path), True, sep)
        if blank.any():
            raw.blank_lines = int(blank.sum())
            raw.frame, raw.lines = frame.loc[~blank].reset_index(drop=True), lines[~blank]
        return raw
    return _read_csv_exact(path, data.decode(encoding), sep=sep, header=header, names=names)


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=bool)
    return frame.isna().all(axis=1).to_numpy()


def _read_csv_exact(path: Path, text: str, *, sep: str, header: bool, names) -> _Raw:
    """Slow reader with exact line numbers (quoted newlines) and per-row field-count checks."""
    if sep == r"\s+":
        records = ((i + 1, ln.split()) for i, ln in enumerate(text.splitlines()))
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)

        def _gen():
            prev = 0
            for rec in reader:
                yield prev + 1, rec
                prev = reader.line_num

        records = _gen()
    columns: list[str] | None = [str(c) for c in names] if names is not None else None
    need_header = header
    rows: list[list[Any]] = []
    lines: list[int] = []
    rejects: list[tuple[int, str, str]] = []
    blank = 0
    for start, rec in records:
        if not rec or (len(rec) == 1 and not rec[0].strip()):
            blank += 0 if need_header else 1
            continue
        if need_header:
            need_header = False
            if columns is None:
                columns = [c.strip() for c in rec]
            continue
        if columns is None:
            columns = [str(i) for i in range(len(rec))]
        if len(rec) > len(columns):
            reason = f"wrong number of fields (expected {len(columns)}, got {len(rec)})"
            rejects.append((start, reason, (" " if sep == r"\s+" else sep).join(rec)))
            continue
        rec = rec + [None] * (len(columns) - len(rec))
        rows.append([None if (v is None or v in _NA_STRINGS) else v for v in rec])
        lines.append(start)
    frame = pd.DataFrame(rows, columns=columns, dtype=str) if columns else pd.DataFrame()
    return _Raw(frame, np.asarray(lines, dtype=np.int64), str(path), True, sep, blank, rejects)


def _read_jsonl(path: Path, data: bytes, *, encoding: str) -> _Raw:
    text = data.decode(encoding)
    if text.lstrip().startswith("["):  # a JSON array of records
        try:
            frame = pd.read_json(io.StringIO(text), orient="records", dtype=False)
        except ValueError as e:
            raise IngestError(f"{path}: not a valid JSON array of records ({e})") from e
        return _Raw(frame, np.arange(1, len(frame) + 1, dtype=np.int64), str(path), True)
    all_lines = text.splitlines()
    keep = [i for i, ln in enumerate(all_lines) if ln.strip()]
    blank = len(all_lines) - len(keep)
    if not keep:
        return _Raw(pd.DataFrame(), np.zeros(0, np.int64), str(path), True, blank_lines=blank)
    body = "\n".join(all_lines[i] for i in keep)
    try:
        frame = pd.read_json(io.StringIO(body), lines=True, dtype=False)
        if len(frame) == len(keep):
            return _Raw(frame, np.asarray(keep, dtype=np.int64) + 1, str(path), True, blank_lines=blank)
    except ValueError:
        pass
    # exact path: parse line by line so malformed lines are rejected with their line number
    records, lines, rejects = [], [], []
    for i in keep:
        ln = all_lines[i]
        try:
            obj = json.loads(ln)
        except ValueError as e:
            rejects.append((i + 1, f"invalid JSON ({e.msg})", ln))
            continue
        if not isinstance(obj, dict):
            rejects.append((i + 1, "invalid JSON (not an object)", ln))
            continue
        records.append(obj)
        lines.append(i + 1)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return _Raw(frame, np.asarray(lines, dtype=np.int64), str(path), True, blank_lines=blank, parse_rejects=rejects)


def _load(source: Any, *, fmt, sep, header, names, encoding) -> _Raw:
    mod = type(source).__module__ or ""
    if isinstance(source, pd.DataFrame):
        frame = source
        name = "<pandas DataFrame>"
    elif mod.startswith("polars"):
        if hasattr(source, "collect") and not hasattr(source, "to_pandas"):
            source = source.collect()  # LazyFrame
        frame = source.to_pandas()
        name = "<polars DataFrame>"
    elif mod.startswith("pyarrow") and hasattr(source, "to_pandas"):
        frame = source.to_pandas()
        name = "<pyarrow Table>"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise IngestError(f"file {path} does not exist")
        if path.is_dir():
            raise IngestError(f"{path} is a directory; pass the data file itself")
        kind, compression = detect_format(path, fmt)
        if kind == "parquet" and compression is None:
            data, member = b"", None
        else:
            data, member = _read_bytes(path, compression)
            kind = kind or _sniff_format(data, member)
        if kind == "parquet":
            try:
                frame = pd.read_parquet(io.BytesIO(data) if data else path)
            except Exception as e:  # pyarrow raises several types for bad files
                raise IngestError(f"{path}: cannot read as Parquet ({e}); pass --format if it is another format") from e
            frame = frame.reset_index(drop=True)
            return _Raw(frame, np.arange(1, len(frame) + 1, dtype=np.int64), str(path), True)
        if kind == "jsonl":
            return _read_jsonl(path, data, encoding=encoding)
        return _read_csv(path, data, sep=sep, header=header, names=names, encoding=encoding)
    else:
        raise IngestError(
            f"cannot read events from a {type(source).__name__}; pass a file path or a pandas/polars DataFrame"
        )
    frame = frame.reset_index(drop=True)
    if names is not None:
        frame.columns = list(names)
    return _Raw(frame, np.arange(1, len(frame) + 1, dtype=np.int64), name, False)


# ----------------------------------------------------------------------------- conversions
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


def _to_datetime_utc(s: pd.Series) -> pd.Series:
    """Parse date-time text/objects to UTC (naive values are taken as UTC); failures are NaT."""
    out = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
    retry = out.isna().to_numpy() & s.notna().to_numpy()
    if retry.any():
        out = out.copy()
        out[retry] = pd.to_datetime(s[retry], utc=True, errors="coerce", format="mixed")
    return out


def _datetime_seconds(dt: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    ok = dt.notna().to_numpy()
    secs = np.zeros(len(dt), dtype=np.int64)
    if ok.any():
        delta = (dt[ok] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        secs[ok] = delta.to_numpy(dtype=np.int64)
    return secs, ok


def _epoch_seconds(v: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Numeric epochs (float64, NaN = missing) in ``unit`` to int64 seconds (floored)."""
    ok = np.isfinite(v)
    secs = np.zeros(len(v), dtype=np.int64)
    if ok.any():
        scaled = np.floor(v[ok] / _TIME_UNITS[unit])
        in_range = np.abs(scaled) <= _MAX_ABS_SECONDS
        idx = np.flatnonzero(ok)
        ok[idx[~in_range]] = False
        secs[idx[in_range]] = scaled[in_range].astype(np.int64)
    return secs, ok


def _auto_unit(v: np.ndarray) -> str:
    finite = np.abs(v[np.isfinite(v)])
    if finite.size == 0:
        return "s"
    med = float(np.median(finite))
    if med < 1e11:
        return "s"
    if med < 1e14:
        return "ms"
    if med < 1e17:
        return "us"
    return "ns"


def parse_timestamps(s: pd.Series, *, time_unit: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """Convert a timestamp column to int64 UTC epoch seconds.

    Accepts numeric epochs (seconds, milliseconds, ...; ``time_unit="auto"`` picks the unit from the
    median magnitude: above 1e11 means milliseconds), numeric text, ISO-8601 / other date-time text
    (naive times are taken as UTC) and datetime columns. Returns ``(seconds, ok mask, unit used)``;
    rows where ``ok`` is False could not be parsed (their seconds are 0).
    """
    if time_unit not in ("auto", *_TIME_UNITS):
        raise IngestError(f"time_unit must be 'auto', 's', 'ms', 'us' or 'ns', not {time_unit!r}")
    s = s.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(s):
        dt = s.dt.tz_localize("UTC") if getattr(s.dt, "tz", None) is None else s.dt.tz_convert("UTC")
        secs, ok = _datetime_seconds(dt)
        return secs, ok, "datetime"
    if pd.api.types.is_bool_dtype(s):
        return np.zeros(len(s), np.int64), np.zeros(len(s), bool), "s"
    if pd.api.types.is_numeric_dtype(s):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        unit = _auto_unit(v) if time_unit == "auto" else time_unit
        secs, ok = _epoch_seconds(v, unit)
        return secs, ok, unit
    # text or objects: numbers are epochs, the rest date-times
    num = pd.to_numeric(s.map(lambda x: x.strip() if isinstance(x, str) else x), errors="coerce")
    v = num.to_numpy(dtype=np.float64, na_value=np.nan)
    is_num = np.isfinite(v)
    unit = (_auto_unit(v) if time_unit == "auto" else time_unit) if is_num.any() else "datetime"
    secs, ok = _epoch_seconds(np.where(is_num, v, np.nan), unit if is_num.any() else "s")
    rest = ~is_num & s.notna().to_numpy()
    if rest.any():
        dsecs, dok = _datetime_seconds(_to_datetime_utc(s[rest]))
        idx = np.flatnonzero(rest)
        secs[idx[dok]] = dsecs[dok]
        ok[idx[dok]] = True
        if not is_num.any():
            unit = "datetime"
        elif dok.any():
            unit = f"{unit}+datetime"
    return secs, ok, unit


# ----------------------------------------------------------------------------- helpers
def _resolve(raw: _Raw, col: Any, role: str, option: str, *, header: bool) -> str:
    cols = [str(c) for c in raw.frame.columns]
    if str(col) in cols:
        return str(col)
    if isinstance(col, int) and 0 <= col < len(cols):
        return cols[col]
    present = ", ".join(repr(c) for c in cols) if cols else "(none)"
    msg = f"{raw.source}: no column {col!r} for the {role}. Columns present: {present}."
    close = difflib.get_close_matches(str(col), cols, n=1, cutoff=0.6)
    lower = [c for c in cols if c.lower() == str(col).lower()]
    if lower or close:
        msg += f" Did you mean {(lower or close)[0]!r}?"
    msg += f" Pass --{option} (or {option.replace('-', '_')}=) with the name of the {role} column."
    if raw.is_file and header and cols and all(_INT_TEXT.fullmatch(c.strip()) or _looks_numeric(c) for c in cols):
        msg += " The first line looks like data, not a header: pass --no-header (header=False) and name columns by position."
    if len(cols) == 1 and raw.sep is not None:
        msg += f" Only one column was found with separator {raw.sep!r}: pass --sep (sep=) with the right separator."
    raise IngestError(msg)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _raw_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Raw values as text ('' for missing), for the rejects file and messages."""
    out = {}
    for c in frame.columns:
        s = frame[c]
        out[str(c)] = s.astype(object).where(s.notna(), "").map(str).to_numpy()
    return pd.DataFrame(out, index=range(len(frame)))


def _format_rows(rejects: pd.DataFrame, value_cols: list[str], limit: int = 5) -> str:
    parts = []
    for _, r in rejects.head(limit).iterrows():
        vals = ", ".join(f"{c}={r[c]!r}" for c in value_cols if c in r.index and r[c] != "")
        if "raw" in r.index and r["raw"]:
            vals = (vals + ", " if vals else "") + f"raw={r['raw']!r}"
        parts.append(f"  line {int(r['line'])}: {r['reason']}: {vals}")
    return "\n".join(parts)


def _write_rejects(rejects: pd.DataFrame, path: str | Path) -> str:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() in (".parquet", ".pq"):
        rejects.to_parquet(p, index=False)
    else:
        rejects.to_csv(p, index=False)
    return str(p)


# ----------------------------------------------------------------------------- main entry
def read_events(
    source: Any,
    *,
    user_col: str | int = C.USER,
    item_col: str | int = C.ITEM,
    time_col: str | int | None = C.TIME,
    behavior_col: str | int | None = None,
    value_col: str | int | None = None,
    context_cols: Sequence[str | int] = (),
    item_name_col: str | int | None = None,
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

    Returns:
        An EventLog whose ``report`` is an :class:`IngestReport`.

    Raises:
        IngestError: missing file or column, no data rows, too many bad rows, nothing left after
            filtering. Messages name the file, the offending lines and the option that fixes it.
    """
    raw = _load(source, fmt=fmt, sep=sep, header=header, names=names, encoding=encoding)
    return _ingest(
        raw,
        user_col=user_col,
        item_col=item_col,
        time_col=time_col,
        behavior_col=behavior_col,
        value_col=value_col,
        context_cols=context_cols,
        item_name_col=item_name_col,
        time_unit=time_unit,
        rejects_path=rejects_path,
        dedupe=dedupe,
        min_user_events=min_user_events,
        min_item_events=min_item_events,
        header=header,
        max_reject_share=max_reject_share,
    )


def ingest_frame(frame: pd.DataFrame, *, source: str, lines: np.ndarray | None = None, **options: Any) -> EventLog:
    """Like :func:`read_events` for a frame already read from ``source`` (used by dataset loaders).

    ``lines`` gives each row's source line number (default: row position + 1); ``options`` are the
    column / cleaning keywords of :func:`read_events`.
    """
    frame = frame.reset_index(drop=True)
    ln = np.arange(1, len(frame) + 1, dtype=np.int64) if lines is None else np.asarray(lines, dtype=np.int64)
    raw = _Raw(frame, ln, str(source), True)
    options.setdefault("header", False)
    return _ingest(raw, **options)


def _ingest(
    raw: _Raw,
    *,
    user_col: str | int = C.USER,
    item_col: str | int = C.ITEM,
    time_col: str | int | None = C.TIME,
    behavior_col: str | int | None = None,
    value_col: str | int | None = None,
    context_cols: Sequence[str | int] = (),
    item_name_col: str | int | None = None,
    time_unit: str = "auto",
    rejects_path: str | Path | None = None,
    dedupe: bool = True,
    min_user_events: int = 0,
    min_item_events: int = 0,
    header: bool = True,
    max_reject_share: float = 0.5,
    item_names: pd.Series | None = None,
) -> EventLog:
    if time_unit not in ("auto", *_TIME_UNITS):
        raise IngestError(f"time_unit must be 'auto', 's', 'ms', 'us' or 'ns', not {time_unit!r}")
    frame = raw.frame
    frame.columns = [str(c) for c in frame.columns]
    n_read = len(frame) + len(raw.parse_rejects)
    report = IngestReport(
        source=raw.source,
        rows_read=n_read,
        blank_lines=raw.blank_lines,
        min_user_events=min_user_events,
        min_item_events=min_item_events,
    )
    if n_read == 0:
        what = f"file {raw.source}" if raw.is_file else f"input {raw.source}"
        raise IngestError(f"{what} has no data rows")

    ucol = _resolve(raw, user_col, "user ids", "user-col", header=header)
    icol = _resolve(raw, item_col, "item ids", "item-col", header=header)
    tcol = _resolve(raw, time_col, "timestamps", "time-col", header=header) if time_col is not None else None
    bcol = (
        _resolve(raw, behavior_col, "behaviour types", "behavior-col", header=header)
        if behavior_col is not None
        else None
    )
    vcol = _resolve(raw, value_col, "values", "value-col", header=header) if value_col is not None else None
    ccols = [_resolve(raw, c, "context values", "context-col", header=header) for c in context_cols]
    ncol = (
        _resolve(raw, item_name_col, "item names", "item-name-col", header=header)
        if item_name_col is not None
        else None
    )
    for c in ccols:
        if c in C.RESERVED:
            raise IngestError(f"{raw.source}: context column {c!r} clashes with a reserved column name; rename it")

    n = len(frame)
    checks: list[tuple[str, np.ndarray]] = [
        ("missing user", _missing(frame[ucol])),
        ("missing item", _missing(frame[icol])),
    ]
    if tcol is not None:
        t_missing = _missing(frame[tcol])
        secs, t_ok, unit = parse_timestamps(frame[tcol], time_unit=time_unit)
        checks += [("missing timestamp", t_missing), ("bad timestamp", ~t_ok & ~t_missing)]
        report.time_unit = unit
    else:
        secs, report.time_unit = raw.lines.copy(), "line number"
    if bcol is not None:
        checks.append(("missing behavior", _missing(frame[bcol])))
    if vcol is not None:
        vs = frame[vcol]
        if _is_text(vs):
            vs = vs.map(lambda x: x.strip() if isinstance(x, str) else x)
        values = pd.to_numeric(vs, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        checks.append(("bad value", ~np.isfinite(values)))

    bad = np.zeros(n, dtype=bool)
    for _, m in checks:
        bad |= m
    rejects = _build_rejects(raw, checks, bad)
    report.rows_rejected = len(rejects)
    report.rejects = rejects
    if len(rejects):
        counts = rejects["reason"].str.split(";").str[0].str.replace(r" \(.*$", "", regex=True).value_counts(sort=False)
        report.rejects_by_reason = {str(k): int(v) for k, v in counts.items()}
    if rejects_path is not None:
        report.rejects_path = _write_rejects(rejects, rejects_path)
    elif len(rejects):
        logger.warning("%s: %d rows rejected (pass rejects_path= to save them)", raw.source, len(rejects))

    share = len(rejects) / n_read
    if share > max_reject_share or len(rejects) == n_read:
        opts = {"user_col": user_col, "item_col": item_col, "time_col": time_col}
        opts |= {"behavior_col": behavior_col, "value_col": value_col, "sep": raw.sep}
        _raise_too_many(raw, rejects, share, max_reject_share, report, opts)

    keep = ~bad
    df = pd.DataFrame(
        {
            C.USER: _normalize_ids(frame.loc[keep, ucol]),
            C.ITEM: _normalize_ids(frame.loc[keep, icol]),
            C.TIME: secs[keep],
        }
    )
    if bcol is not None:
        df[C.BEHAVIOR] = _normalize_ids(frame.loc[keep, bcol]).astype(str).to_numpy()
    if vcol is not None:
        df[C.VALUE] = values[keep]
    for c in ccols:
        s = frame.loc[keep, c]
        ok = s.notna().to_numpy()
        txt = np.full(len(s), "", dtype=object)
        if ok.any():
            txt[ok] = _normalize_ids(s[ok]).astype(str).to_numpy()
        df[c] = txt
    df[C.ROW] = raw.lines[keep]
    names_src = frame.loc[keep, ncol].reset_index(drop=True) if ncol is not None else None

    if dedupe:
        df, report.duplicates_removed = remove_duplicates(df)
    if min_user_events > 1 or min_item_events > 1:
        before = len(df)
        df, report.kcore_removed = kcore_filter(df, min_user_events=min_user_events, min_item_events=min_item_events)
        if len(df) == 0:
            raise IngestError(
                f"{raw.source}: k-core filtering (min_user_events={min_user_events}, "
                f"min_item_events={min_item_events}) removed all {before:,} events; "
                "lower --min-user-events / --min-item-events"
            )
    if names_src is not None:
        nm = pd.DataFrame({"item": df[C.ITEM].to_numpy(), "name": names_src.to_numpy()[df.index.to_numpy()]})
        nm = nm[nm["name"].notna()].drop_duplicates("item", keep="first")
        item_names = pd.Series(nm["name"].astype(str).to_numpy(), index=nm["item"].to_numpy())
    df = df.reset_index(drop=True)
    report.rows_kept = len(df)
    log = EventLog.from_frame(df, context_columns=tuple(ccols), item_names=item_names, source=raw.source, report=report)
    report.n_users, report.n_items = log.n_users, log.n_items
    if not report.balanced:  # pragma: no cover - internal consistency guard
        raise AssertionError(report.summary())
    return log


def _build_rejects(raw: _Raw, checks: list[tuple[str, np.ndarray]], bad: np.ndarray) -> pd.DataFrame:
    idx = np.flatnonzero(bad)
    reasons = []
    for i in idx:
        reasons.append("; ".join(label for label, m in checks if m[i]))
    vals = _raw_text(raw.frame.iloc[idx])
    out = pd.DataFrame({"line": raw.lines[idx], "reason": np.asarray(reasons, dtype=object)})
    out = pd.concat([out, vals], axis=1) if len(vals.columns) else out
    if raw.parse_rejects:
        extra = pd.DataFrame(raw.parse_rejects, columns=["line", "reason", "raw"])
        out["raw"] = ""
        out = pd.concat([out, extra], ignore_index=True).sort_values("line", kind="stable").reset_index(drop=True)
        for c in vals.columns:
            out[c] = out[c].fillna("")
    out["line"] = out["line"].astype(np.int64)
    return out


def _raise_too_many(
    raw: _Raw, rejects: pd.DataFrame, share: float, limit: float, report: IngestReport, opts: dict[str, Any]
) -> None:
    n_bad, n_read = len(rejects), report.rows_read
    top = max(report.rejects_by_reason, key=lambda k: report.rejects_by_reason[k]) if report.rejects_by_reason else ""
    fix = _REASON_FIX.get(top, "check the column options").format(**opts)
    value_cols = [c for c in rejects.columns if c not in ("line", "reason", "raw")]
    saved = f" All rejected rows were written to {report.rejects_path}." if report.rejects_path else ""
    by_reason = ", ".join(f"{k}: {v:,}" for k, v in report.rejects_by_reason.items())
    raise IngestError(
        f"{raw.source}: {n_bad:,} of {n_read:,} rows ({share:.0%}) are bad, more than the allowed "
        f"{limit:.0%} ({by_reason}). First {min(5, n_bad)}:\n{_format_rows(rejects, value_cols)}\n"
        f"Fix: {fix}.{saved}"
    )
