"""Raw readers: CSV (separator detected), Parquet and JSON Lines files, optionally compressed, and
pandas / polars / pyarrow frames, into a :class:`RawTable` of source columns and line numbers.

Nothing is validated here beyond what a file format itself requires: a line with the wrong number
of fields or invalid JSON is kept aside in ``parse_rejects`` with its line number, for the report.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.errors import IngestError

__all__ = ["RawTable", "detect_format", "detect_separator", "read_csv_bytes", "read_raw"]

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
# Same strings pandas treats as missing by default (used by the slow, exact CSV reader).
_NA_STRINGS = frozenset(
    "#N/A,#N/A N/A,#NA,-1.#IND,-1.#QNAN,-NaN,-nan,1.#IND,1.#QNAN,<NA>,N/A,NA,NULL,NaN,None,n/a,nan,null".split(",")
) | {""}


@dataclass
class RawTable:
    """Source columns with raw values, and the source line number of each row."""

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


def read_csv_bytes(path: Path, data: bytes, *, sep: str | None, header: bool, names, encoding: str) -> RawTable:
    text_head = data[:65536].decode(encoding, errors="replace")
    if sep is None:
        sep = detect_separator(text_head)
    if not data.strip():
        return RawTable(pd.DataFrame(), np.zeros(0, np.int64), str(path), True, sep)
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
        return RawTable(pd.DataFrame(), np.zeros(0, np.int64), str(path), True, sep)
    except UnicodeDecodeError as e:
        raise IngestError(f"{path}: cannot decode as {encoding} ({e}); pass encoding=, e.g. 'latin-1'") from e
    except pd.errors.ParserError:
        frame = None  # malformed rows: the exact reader below rejects them with their line numbers
    if frame is not None and len(frame) == n_lines - first_line:
        frame.columns = [str(c).strip() for c in frame.columns]
        lines = np.arange(1 + first_line, len(frame) + 1 + first_line, dtype=np.int64)
        blank = _blank_rows(frame)
        raw = RawTable(frame, lines, str(path), True, sep)
        if blank.any():
            raw.blank_lines = int(blank.sum())
            raw.frame, raw.lines = frame.loc[~blank].reset_index(drop=True), lines[~blank]
        return raw
    return _read_csv_exact(path, data.decode(encoding), sep=sep, header=header, names=names)


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=bool)
    return frame.isna().all(axis=1).to_numpy()


def _read_csv_exact(path: Path, text: str, *, sep: str, header: bool, names) -> RawTable:
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
    return RawTable(frame, np.asarray(lines, dtype=np.int64), str(path), True, sep, blank, rejects)


def _read_jsonl(path: Path, data: bytes, *, encoding: str) -> RawTable:
    text = data.decode(encoding)
    if text.lstrip().startswith("["):  # a JSON array of records
        try:
            frame = pd.read_json(io.StringIO(text), orient="records", dtype=False)
        except ValueError as e:
            raise IngestError(f"{path}: not a valid JSON array of records ({e})") from e
        return RawTable(frame, np.arange(1, len(frame) + 1, dtype=np.int64), str(path), True)
    all_lines = text.splitlines()
    keep = [i for i, ln in enumerate(all_lines) if ln.strip()]
    blank = len(all_lines) - len(keep)
    if not keep:
        return RawTable(pd.DataFrame(), np.zeros(0, np.int64), str(path), True, blank_lines=blank)
    body = "\n".join(all_lines[i] for i in keep)
    try:
        frame = pd.read_json(io.StringIO(body), lines=True, dtype=False)
        if len(frame) == len(keep):
            return RawTable(frame, np.asarray(keep, dtype=np.int64) + 1, str(path), True, blank_lines=blank)
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
    return RawTable(frame, np.asarray(lines, dtype=np.int64), str(path), True, blank_lines=blank, parse_rejects=rejects)


def read_raw(
    source: Any,
    *,
    fmt: str | None = None,
    sep: str | None = None,
    header: bool = True,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8-sig",
) -> RawTable:
    """Read a file (by path) or a pandas / polars / pyarrow frame; see ``read_events`` for the options."""
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source), fmt=fmt, sep=sep, header=header, names=names, encoding=encoding)
    frame, name = _frame_of(source)
    frame = frame.reset_index(drop=True)
    if names is not None:
        frame.columns = list(names)
    return RawTable(frame, np.arange(1, len(frame) + 1, dtype=np.int64), name, False)


def _frame_of(source: Any) -> tuple[pd.DataFrame, str]:
    """A pandas frame and a display name for an in-memory table (pandas, polars, pyarrow)."""
    mod = type(source).__module__ or ""
    if isinstance(source, pd.DataFrame):
        return source, "<pandas DataFrame>"
    if mod.startswith("polars"):
        if hasattr(source, "collect") and not hasattr(source, "to_pandas"):
            source = source.collect()  # LazyFrame
        return source.to_pandas(), "<polars DataFrame>"
    if mod.startswith("pyarrow") and hasattr(source, "to_pandas"):
        return source.to_pandas(), "<pyarrow Table>"
    raise IngestError(
        f"cannot read events from a {type(source).__name__}; pass a file path or a pandas/polars DataFrame"
    )


def _read_file(
    path: Path, *, fmt: str | None, sep: str | None, header: bool, names: Sequence[str] | None, encoding: str
) -> RawTable:
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
        return RawTable(frame, np.arange(1, len(frame) + 1, dtype=np.int64), str(path), True)
    if kind == "jsonl":
        return _read_jsonl(path, data, encoding=encoding)
    return read_csv_bytes(path, data, sep=sep, header=header, names=names, encoding=encoding)
