"""Raw readers: CSV (separator detected), Parquet and JSON Lines files, optionally compressed, and
pandas / polars / pyarrow frames, into a :class:`RawTable` of source columns and line numbers.

Nothing is validated here beyond what a file format itself requires: a line with the wrong number
of fields or invalid JSON is kept aside in ``parse_rejects`` with its line number, for the report.
A file that cannot be read at all (missing, a link loop, truncated or mislabelled compression,
binary data, undecodable text) raises :class:`~chronorec.errors.IngestError` with one line naming
the file and the fix, never a decoder's own exception.
"""

from __future__ import annotations

import bz2
import csv
import errno
import gzip
import io
import json
import lzma
import os
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data.baskets import keyed_object, read_keyed
from chronorec.data.text_checks import check_encoding, check_header, check_separator
from chronorec.errors import IngestError

__all__ = ["RawTable", "detect_format", "detect_separator", "non_scalar", "read_csv_bytes", "read_raw", "shorten"]

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
_MAGIC = {"gzip": (b"\x1f\x8b",), "xz": (b"\xfd7zXZ\x00",), "bz2": (b"BZh",), "zip": (b"PK\x03\x04", b"PK\x05\x06")}
_SUFFIX_OF = {"gzip": ".gz", "xz": ".xz", "bz2": ".bz2", "zip": ".zip"}
_BINARY_KINDS = (
    (b"PAR1", "a Parquet file: name it .parquet or pass --format parquet"),
    (b"SQLite format 3\x00", "an SQLite database: export the events table to CSV or Parquet first"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
)
_DECODE_ERRORS = (EOFError, OSError, lzma.LZMAError, zlib.error, zipfile.BadZipFile, ValueError)
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
    order: np.ndarray | None = None  # implicit time per row where the file has no time column (basket index)
    order_label: str = "line number"  # what ``order`` (or, without it, the line number) is, for the report
    kind: str = (
        "rows"  # "baskets": {user: [[item, ...], ...]} (user_id, item_id, basket); "sequences": {user: [item, ...]}
    )


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
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IngestError(f"{path} cannot be read ({e.strerror or e}); check the path and its permissions") from e
    if compression is None:
        return data, None
    if not data.startswith(_MAGIC[compression]):
        raise IngestError(
            f"{path} is named {_SUFFIX_OF[compression]} but is not {compression}-compressed (it is {_looks_like(data)}); "
            f"rename it to match its content, e.g. {path.with_suffix('').name}"
        )
    try:
        if compression == "gzip":
            return gzip.decompress(data), None
        if compression == "xz":
            return lzma.decompress(data), None
        if compression == "bz2":
            return bz2.decompress(data), None
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [n for n in zf.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
            if len(members) != 1:
                raise IngestError(f"{path}: a .zip must hold exactly one data file, found {members}")
            return zf.read(members[0]), members[0]
    except IngestError:
        raise
    except _DECODE_ERRORS as e:
        raise IngestError(
            f"{path}: the {compression} data is truncated or corrupt ({e}); copy or download the file again"
        ) from e


def _looks_like(data: bytes) -> str:
    """A few words on what some bytes are, for messages."""
    head = data[:65536]
    for kind, magics in _MAGIC.items():
        if head.startswith(magics):
            return f"{kind}-compressed data: name it {_SUFFIX_OF[kind]}"
    for magic, what in _BINARY_KINDS:
        if head.startswith(magic):
            return what
    if not head:
        return "empty"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text: pass --encoding utf-16"
    if len(head) >= 8 and b"\x00" in head:
        for order, zeros in (("le", head[1::2]), ("be", head[0::2])):
            if zeros.count(0) >= 0.9 * len(zeros):  # ASCII written as UTF-16 without a byte-order mark
                return f"UTF-16 text without a byte-order mark: pass --encoding utf-16-{order}"
    if b"\x00" in head or (_control_share(head) > 0.05 and not _decodes(head, "utf-8")):
        return "binary data"
    return "plain text"


def _control_share(head: bytes) -> float:
    """Share of control bytes (other than tab, newlines and form feed) in ``head``."""
    a = np.frombuffer(head, dtype=np.uint8)
    ctrl = ((a < 32) & ~np.isin(a, (9, 10, 12, 13))) | (a == 127)
    return float(ctrl.mean()) if len(a) else 0.0


def _decodes(head: bytes, encoding: str) -> bool:
    try:
        head.decode(encoding)
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 4  # only a character cut at the end of the sample
    return True


def _check_text(path: Path, data: bytes, encoding: str) -> None:
    """Refuse binary content (a NUL byte, or many control bytes that do not decode) before a text
    parser turns it into nonsense columns or no rows; a text file with a stray control character
    passes."""
    if encoding.lower().replace("_", "").replace("-", "").startswith(("utf16", "utf32")):
        return
    what = _looks_like(data)
    if what.startswith("UTF-16"):
        raise IngestError(f"{path} is {what} (encoding='{what.rsplit(' ', 1)[-1]}')")
    if what not in ("plain text", "empty"):
        raise IngestError(f"{path} is not a text/CSV file: it is {what}; pass a CSV, JSON Lines or Parquet file")


def _decode(path: Path, data: bytes, encoding: str) -> str:
    check_encoding(path, encoding)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise IngestError(
            f"{path}: cannot decode as {encoding} ({e}); pass --encoding (encoding=), e.g. latin-1"
        ) from e


def shorten(value: Any, limit: int = 80) -> str:
    """``repr`` of a raw value for a message, cut to about ``limit`` characters (a 20 MB field stays
    in the rejects file, not on the terminal)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(str(value)):,} characters)"


def non_scalar(s: pd.Series) -> np.ndarray:
    """Rows holding a list, dict, set or array instead of a single value (JSON / Parquet nesting)."""
    if not pd.api.types.is_object_dtype(s):
        return np.zeros(len(s), dtype=bool)
    return np.array([isinstance(x, (list, tuple, dict, set, np.ndarray)) for x in s.to_numpy()], dtype=bool)


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
    check_encoding(path, encoding)
    text_head = data[:65536].decode(encoding, errors="replace")
    if sep is None:
        sep = detect_separator(text_head)
    check_separator(path, sep)
    check_header(path, text_head, sep, header, names)
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
        raise IngestError(
            f"{path}: cannot decode as {encoding} ({e}); pass --encoding (encoding=), e.g. latin-1"
        ) from e
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
    return _read_csv_exact(path, _decode(path, data, encoding), sep=sep, header=header, names=names)


def _dedupe_names(names: list[str]) -> list[str]:
    """Repeated header names made unique the way pandas does it: ``a``, ``a.1``, ``a.2``."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}.{k}")
    return out


def _check_unique(raw: RawTable) -> RawTable:
    names = [str(c) for c in raw.frame.columns]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise IngestError(f"{raw.source}: more than one column is named {dups[0]!r}; give each column its own name")
    return raw


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
                columns = _dedupe_names([c.strip() for c in rec])
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
    text = _decode(path, data, encoding)
    if text.lstrip().startswith("["):  # a JSON array of records
        return _read_json_array(path, text)
    if (keyed := keyed_object(text)) is not None:  # {user: [[item, ...], ...]} or {user: [item, ...]}
        k = read_keyed(*keyed)
        raw = RawTable(k.frame, k.lines, str(path), True, parse_rejects=k.rejects, order=k.order, kind=k.kind)
        raw.order_label = "basket index" if k.kind == "baskets" else "position"
        return raw
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
    except (ValueError, TypeError, AttributeError):  # lines that are arrays or numbers (AttributeError: pandas 2)
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


def _read_json_array(path: Path, text: str) -> RawTable:
    """A JSON array of records; elements that are not objects are rejected by position."""
    try:
        items = json.loads(text)
    except ValueError as e:
        raise IngestError(f"{path}: not a valid JSON array of records ({e}); fix it or use JSON Lines") from e
    if not isinstance(items, list):
        raise IngestError(f"{path}: not a JSON array of records; use JSON Lines (one object per line)")
    records = [(i + 1, r) for i, r in enumerate(items) if isinstance(r, dict)]
    rejects = [
        (i + 1, "invalid JSON (not an object)", json.dumps(r)[:200])
        for i, r in enumerate(items)
        if not isinstance(r, dict)
    ]
    frame = pd.DataFrame.from_records([r for _, r in records]) if records else pd.DataFrame()
    lines = np.asarray([i for i, _ in records], dtype=np.int64)
    return RawTable(frame, lines, str(path), True, parse_rejects=rejects)


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
    if names is not None and len({str(n) for n in names}) != len(names):
        raise IngestError(f"names={list(names)} repeats a column name; give each column its own name")
    if isinstance(source, (str, os.PathLike)):
        return _check_unique(_read_file(Path(source), fmt=fmt, sep=sep, header=header, names=names, encoding=encoding))
    frame, name = _frame_of(source)
    frame = frame.reset_index(drop=True)
    if names is not None:
        frame.columns = list(names)
    return _check_unique(RawTable(frame, np.arange(1, len(frame) + 1, dtype=np.int64), name, False))


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


def _check_path(path: Path) -> None:
    """A regular file that exists, or an IngestError saying what it is instead."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise IngestError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist") from None
        raise IngestError(f"file {path} does not exist") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise IngestError(
                f"{path} is a symbolic link loop (it leads back to itself); pass the data file itself"
            ) from None
        raise IngestError(f"{path} cannot be read ({e.strerror or e}); check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise IngestError(f"{path} is a directory; pass the data file itself")
    if not stat.S_ISREG(st.st_mode):
        raise IngestError(f"{path} is not a regular file (a device, pipe or socket); pass the data file itself")


def _read_file(
    path: Path, *, fmt: str | None, sep: str | None, header: bool, names: Sequence[str] | None, encoding: str
) -> RawTable:
    _check_path(path)
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
    _check_text(path, data, encoding)
    if kind == "jsonl":
        return _read_jsonl(path, data, encoding=encoding)
    return read_csv_bytes(path, data, sep=sep, header=header, names=names, encoding=encoding)
