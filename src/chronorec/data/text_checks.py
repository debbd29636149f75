"""Checks of a text file's reading options before pandas reads it: a real text encoding, a usable
separator, ``--names`` that name every field, and a header that names each column once (pandas would
otherwise turn leading fields into an index, or rename a repeated ``a`` to ``a.1``, silently); and
the bounded text tools of recipes: a linear-time regular expression search, and the size of a YAML
document with its aliases expanded."""

from __future__ import annotations

import codecs
import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.errors import IngestError

__all__ = ["check_encoding", "check_header", "check_separator", "expanded_size", "regex_search"]


def check_encoding(path: Path, encoding: str) -> None:
    try:
        info = codecs.lookup(encoding)
    except LookupError as e:
        raise IngestError(f"{path}: unknown encoding {encoding!r}; pass e.g. encoding='utf-8' or 'latin-1'") from e
    if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib...: codecs, not text encodings
        raise IngestError(f"{path}: {encoding!r} is not a text encoding; pass e.g. encoding='utf-8' or 'latin-1'")


def check_separator(path: Path, sep: str) -> None:
    if sep == r"\s+" or sep == "\t":
        return
    if not sep or not sep.isprintable() or any(c in sep for c in '"\r\n'):
        raise IngestError(f"{path}: separator {sep!r} is empty or not printable; pass e.g. --sep , or --sep ';'")


def _first_record(text: str, sep: str) -> list[str]:
    """The fields of the first non-blank line of ``text`` (for the header and ``--names`` checks)."""
    for line in text.splitlines():
        if line.strip():
            if sep == r"\s+":
                return line.split()
            if len(sep) > 1:  # a multi-character separator such as MovieLens' "::"
                return line.split(sep)
            return next(csv.reader([line], delimiter=sep), [])
    return []


def check_header(path: Path, text_head: str, sep: str, header: bool, names) -> None:
    """``--names`` must name every field of the first line, and a header may not repeat a name
    (pandas would silently turn the leading fields into an index, or rename ``a`` to ``a.1``)."""
    first = _first_record(text_head, sep)
    if not first:
        return
    if names is not None and len(names) != len(first):
        raise IngestError(
            f"{path}: --names gives {len(names)} names ({','.join(map(str, names))}) but line 1 has "
            f"{len(first)} fields; name every field, in order"
        )
    if header and names is None:
        cols = [c.strip() for c in first]
        dups = sorted({c for c in cols if cols.count(c) > 1})
        if dups:
            raise IngestError(f"{path}: more than one column is named {dups[0]!r}; give each column its own name")


def regex_search(text: pd.Series, pattern: str) -> np.ndarray:
    """Where ``pattern`` is found in ``text``, with Rust's ``regex`` engine (through polars): it runs in
    time linear in the text for every pattern, so a pattern such as ``^(\\w+\\s?)*$`` cannot hang an
    ingest by catastrophic backtracking (Python's ``re`` took minutes on a 30-word line). Its syntax
    is Python's without look-around and back-references; a pattern using them is refused."""
    import polars as pl

    try:
        hit = pl.Series(text.astype(str).to_numpy(), dtype=pl.String).str.contains(pattern)
    except pl.exceptions.ComputeError as e:
        first = " ".join(str(e).split())[:200]
        raise ValueError(
            f"invalid regex {pattern!r} (a linear-time regex: no look-around or back-references): {first}"
        ) from None
    return hit.fill_null(False).to_numpy().astype(bool)


def expanded_size(obj: Any, budget: int) -> int:
    """The number of values in ``obj`` with aliases expanded, counting no further than ``budget + 1``."""
    n, stack = 0, [obj]
    while stack and n <= budget:
        x = stack.pop()
        n += 1
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return n
