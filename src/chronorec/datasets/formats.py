"""Loaders for benchmark file formats. Each returns an :class:`~chronorec.data.eventlog.EventLog`.

Nothing is downloaded: the files must already be on disk (see :func:`data_dir`).

* :func:`load_sequence_file`: one line per user, ``user item item ...`` (SASRec / S3-Rec style,
  e.g. ``ml-1m/ml-1m.txt``, ``beauty/Beauty.txt``). Timestamps become positions 0, 1, 2, ...
* :func:`load_movielens`: MovieLens ratings, ``u.data`` (tab-separated) or ``ratings.dat``
  (``::``-separated), with the rating as ``value``.
* :func:`load_movielens_items`: MovieLens titles from ``u.item`` or ``movies.dat``.
* :func:`data_dir`, :func:`dataset_path`, :func:`load_dataset`: the shared benchmark folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.data.eventlog import EventLog
from chronorec.data.ingest import ColumnSpec, clean_events
from chronorec.data.readers import read_csv_bytes
from chronorec.data.report import IngestReport
from chronorec.errors import IngestError

__all__ = [
    "DATASETS",
    "data_dir",
    "dataset_path",
    "load_dataset",
    "load_movielens",
    "load_movielens_items",
    "load_ml1m_item_names",
    "load_sequence_file",
]

DATA_ENV = "CHRONOREC_DATA"

DATASETS: dict[str, str] = {
    "ml-1m": "ml-1m/ml-1m.txt",
    "ml-1m-full": "ml-1m/ml-1m_full_seq.txt",
    "beauty": "beauty/Beauty.txt",
    "ml-100k": "ml-100k/u.data",
}
"""Known dataset names and their files relative to the data directory."""

_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 13, 32]] = True
_ALLOWED = _WS.copy()
_ALLOWED[ord("0") : ord("9") + 1] = True
_ALLOWED[ord("-")] = True


def _ingest_error(msg: str) -> Exception:
    return IngestError(msg)


def _names_series(item_names: Mapping | pd.Series | None) -> pd.Series | None:
    if item_names is None:
        return None
    return item_names if isinstance(item_names, pd.Series) else pd.Series(dict(item_names))


# ----------------------------------------------------------------------------- sequence files
def load_sequence_file(
    path: str | Path,
    *,
    item_names: Mapping | pd.Series | None = None,
) -> EventLog:
    """Load a ``user item item ...`` file: one line per user, items oldest first, integer ids.

    Ids are kept as int64 external ids. Each event's ``timestamp`` is its position in the user's
    sequence (0, 1, 2, ...; a user on several lines continues counting) and ``row`` its line
    number. Blank lines are skipped. Parsing is vectorised with numpy (ML-1M, 1M events, loads in
    well under a second).

    Args:
        path: the text file.
        item_names: optional names indexed by item id (e.g. from :func:`load_ml1m_item_names`).

    Raises:
        IngestError: the file has no data rows, or a token is not an integer (with its line number).
    """
    path = Path(path)
    data = path.read_bytes()
    buf = np.frombuffer(data, dtype=np.uint8)
    newline_cum = np.cumsum(buf == 10)  # newlines up to and including each byte
    bad = ~_ALLOWED[buf]
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        line = int(newline_cum[pos]) + 1 - int(buf[pos] == 10)
        text = data.splitlines()[line - 1].decode("utf-8", errors="replace")
        raise _ingest_error(
            f"{path}, line {line}: {text[:80]!r} is not 'user item item ...' with integer ids separated by spaces; "
            "use chronorec.data.read_events for other formats"
        )
    ws = _WS[buf]
    starts = ~ws
    starts[1:] &= ws[:-1]
    token_pos = np.flatnonzero(starts)
    if token_pos.size == 0:
        raise _ingest_error(f"file {path} has no data rows")
    tokens = np.fromstring(data.decode("ascii"), dtype=np.int64, sep=" ")
    token_line = newline_cum[token_pos]  # 0-based line index of each token
    if tokens.size != token_pos.size:
        for i, ln in enumerate(data.decode("ascii").splitlines()):
            for tok in ln.split():
                try:
                    int(tok)
                except ValueError:
                    raise _ingest_error(f"{path}, line {i + 1}: token {tok!r} is not an integer id") from None
        raise _ingest_error(f"{path}: could not parse all integer tokens")  # pragma: no cover
    first = np.ones(tokens.size, dtype=bool)
    first[1:] = token_line[1:] != token_line[:-1]
    line_user = tokens[first]
    user_of_token = line_user[np.cumsum(first) - 1]
    is_item = ~first
    users = user_of_token[is_item]
    items = tokens[is_item]
    rows = token_line[is_item].astype(np.int64) + 1
    if items.size == 0:
        raise _ingest_error(f"file {path} has no events (every line holds only a user id)")
    if len(np.unique(line_user)) == len(line_user):
        line_start = np.flatnonzero(first)  # token index where each line starts
        item_idx = np.flatnonzero(is_item)
        pos = item_idx - line_start[np.cumsum(first)[is_item] - 1] - 1
    else:  # a user on several lines: keep counting across them
        pos = pd.Series(users).groupby(users, sort=False).cumcount().to_numpy()
    df = pd.DataFrame({C.USER: users, C.ITEM: items, C.TIME: pos.astype(np.int64), C.ROW: rows})
    report = IngestReport(source=str(path), rows_read=len(df), rows_kept=len(df), time_unit="position")
    log = EventLog.from_frame(df, item_names=_names_series(item_names), source=str(path), report=report)
    report.n_users, report.n_items = log.n_users, log.n_items
    return log


# ----------------------------------------------------------------------------- MovieLens
def _movielens_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    first = data.split(b"\n", 1)[0]
    return data.replace(b"::", b"\t") if b"::" in first else data


def load_movielens(
    path: str | Path,
    *,
    item_names: Mapping | pd.Series | None = None,
    rejects_path: str | Path | None = None,
    min_user_events: int = 0,
    min_item_events: int = 0,
) -> EventLog:
    """Load MovieLens ratings: ``u.data`` (``user<TAB>item<TAB>rating<TAB>timestamp``) or
    ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``), detected from the first line.

    The rating becomes ``value``; timestamps are unix seconds. Rows are validated like
    :func:`chronorec.data.read_events` (bad rows go to ``rejects_path`` with their line numbers).

    Args:
        path: the ratings file.
        item_names: optional titles indexed by movie id (see :func:`load_movielens_items`).
        rejects_path: where to write rejected rows, if any.
        min_user_events, min_item_events: optional k-core filter.
    """
    path = Path(path)
    names = [C.USER, C.ITEM, C.VALUE, C.TIME]
    raw = read_csv_bytes(path, _movielens_bytes(path), sep="\t", header=False, names=names, encoding="latin-1")
    clean = clean_events(
        raw,
        ColumnSpec(value_col=C.VALUE),
        time_unit="s",
        header=False,
        rejects_path=rejects_path,
        min_user_events=min_user_events,
        min_item_events=min_item_events,
        item_names=_names_series(item_names),
    )
    return EventLog.from_clean(clean)


def load_movielens_items(path: str | Path) -> pd.Series:
    """MovieLens titles indexed by int64 movie id, from ``u.item`` (``|``) or ``movies.dat`` (``::``).

    Both files are ISO-8859-1 (latin-1). Lines that do not start with an integer id are skipped.
    """
    path = Path(path)
    text = path.read_bytes().decode("latin-1")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    sep = "::" if lines and "::" in lines[0] else "|"
    ids, titles = [], []
    for ln in lines:
        parts = ln.split(sep)
        if len(parts) < 2:
            continue
        try:
            ids.append(int(parts[0]))
        except ValueError:
            continue
        titles.append(parts[1])
    return pd.Series(titles, index=pd.Index(np.asarray(ids, dtype=np.int64), name="movie_id"), name="title", dtype=str)


def load_ml1m_item_names(directory: str | Path) -> pd.Series | None:
    """Titles for the remapped item ids of ``ml-1m/ml-1m.txt``, via ``ml-1m_item_map.tsv`` and
    ``movies.dat`` in ``directory``; ``None`` if either file is missing."""
    d = Path(directory)
    map_path, movies_path = d / "ml-1m_item_map.tsv", d / "movies.dat"
    if not (map_path.exists() and movies_path.exists()):
        return None
    imap = pd.read_csv(map_path, sep="\t", dtype={"item_id": np.int64, "movie_id": np.int64})
    titles = load_movielens_items(movies_path)
    names = titles.reindex(imap["movie_id"].to_numpy()).to_numpy()
    out = pd.Series(names, index=pd.Index(imap["item_id"].to_numpy(), name="item_id"), name="title")
    return out[out.notna()]


# ----------------------------------------------------------------------------- data directory
def _repo_root() -> Path | None:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists():
            return parent
    return None


def data_dir(option: str | Path | None = None) -> Path:
    """The benchmark data directory.

    Resolution order: ``option`` (the ``--data-dir`` option), else the ``CHRONOREC_DATA``
    environment variable, else ``../shared/data`` relative to the current directory, else
    ``../shared/data`` relative to the repository root.

    Raises:
        FileNotFoundError: naming the option and the environment variable.
    """
    if option is not None:
        p = Path(option).expanduser()
        if not p.is_dir():
            raise FileNotFoundError(f"data directory {p} (given with --data-dir / data_dir=) does not exist")
        return p
    env = os.environ.get(DATA_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise FileNotFoundError(f"data directory {p} (from the environment variable {DATA_ENV}) does not exist")
        return p
    candidates = [Path.cwd() / ".." / "shared" / "data"]
    root = _repo_root()
    if root is not None:
        candidates.append(root / ".." / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"benchmark data directory not found (looked in {looked}); "
        f"pass --data-dir (data_dir=) or set the environment variable {DATA_ENV}"
    )


def dataset_path(name: str, *, data_dir: str | Path | None = None) -> Path:
    """Path of a known dataset's main file (see :data:`DATASETS`)."""
    key = name.lower()
    if key not in DATASETS:
        from chronorec.errors import ConfigError

        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    p = _data_dir(data_dir) / DATASETS[key]
    if not p.exists():
        raise FileNotFoundError(f"dataset {name!r}: file {p} not found")
    return p


_data_dir = data_dir


def load_dataset(name: str, *, data_dir: str | Path | None = None) -> EventLog:
    """Load a known dataset (``ml-1m``, ``ml-1m-full``, ``beauty``, ``ml-100k``) as an EventLog,
    with item names for the MovieLens sets when the side files are present."""
    path = dataset_path(name, data_dir=data_dir)
    key = name.lower()
    if key == "ml-1m":
        return load_sequence_file(path, item_names=load_ml1m_item_names(path.parent))
    if key == "ml-1m-full":
        movies = path.parent / "movies.dat"
        return load_sequence_file(path, item_names=load_movielens_items(movies) if movies.exists() else None)
    if key == "ml-100k":
        items = path.parent / "u.item"
        return load_movielens(path, item_names=load_movielens_items(items) if items.exists() else None)
    return load_sequence_file(path)
