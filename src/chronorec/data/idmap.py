"""External <-> internal id mapping, in one place.

Internal ids are contiguous integers starting at 1; 0 is reserved for padding
and for "unknown". Maps are saved as Parquet (never pickle).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_NEVER_AN_ID = -(2**62)  # the key of a value that cannot be an integer id


class IdMap:
    """Bijection between external ids and internal ids 1..n (0 = padding/unknown)."""

    def __init__(self, external: Iterable[Any]):
        if not hasattr(external, "__len__"):
            external = list(external)
        ext = pd.Index(pd.unique(pd.Series(external)))
        if ext.hasnans:
            raise ValueError("IdMap: ids must not contain missing values")
        self._index = ext

    def __len__(self) -> int:
        return len(self._index)

    @property
    def size(self) -> int:
        """Number of real ids (internal ids run 1..size)."""
        return len(self._index)

    @property
    def external_ids(self) -> np.ndarray:
        """External ids in internal order: ``external_ids[i - 1]`` is the id of internal ``i``."""
        return self._index.to_numpy()

    def to_internal(self, values: Any, *, strict: bool = False) -> np.ndarray:
        """External ids -> internal ids; unknown ids give 0 (or raise ``KeyError`` with ``strict``).

        The one conversion of external ids, forgiving about their type: ``"12"`` finds the integer
        id 12 and ``12`` the text id ``"12"``; a bool, a number beyond int64 or a text that is not a
        number never matches an integer id. Values already of the ids' type map in one vectorised step.
        """
        if isinstance(values, np.ndarray):
            vals = values.ravel()
        elif isinstance(values, (str, bytes)) or np.isscalar(values):
            vals = np.asarray([values], dtype=object)
        else:
            vals = list(values)
        if not len(vals):
            return np.zeros(0, np.int64)
        keys = self._keys(vals)
        if len(keys) == 1 and not strict:  # one id (a request's user): no index to build
            return np.array([self.lookup(keys[0])], dtype=np.int64)
        pos = self._index.get_indexer(pd.Index(keys))
        if strict and (pos < 0).any():
            bad = [vals[i] for i in np.flatnonzero(pos < 0)[:5]]
            raise KeyError(f"unknown ids (first {len(bad)}): {bad}")
        return (pos + 1).astype(np.int64)

    def _keys(self, vals: Any) -> np.ndarray:
        """``vals`` in the type of the ids (integers: int64, a value that cannot be one never matches;
        text: str)."""
        kind = self._index.dtype.kind
        arr = vals if isinstance(vals, np.ndarray) else None
        if kind in "iu":
            if arr is not None and arr.dtype.kind in "iu":
                return arr.astype(np.int64, copy=False)
            out = np.empty(len(vals), dtype=np.int64)
            for i, v in enumerate(vals.tolist() if arr is not None else vals):
                try:
                    x = int(v) if not isinstance(v, (bool, np.bool_)) else _NEVER_AN_ID
                    out[i] = x if -(2**63) <= x < 2**63 else _NEVER_AN_ID  # beyond int64: never an id
                except (TypeError, ValueError, OverflowError):
                    out[i] = _NEVER_AN_ID
            return out
        if kind in "OSUT" or pd.api.types.is_string_dtype(self._index.dtype):
            if arr is not None and arr.dtype.kind in "SU":
                return arr.astype(str)
            if arr is not None and arr.dtype.kind == "O" and pd.Index(arr).inferred_type == "string":
                return arr  # text already (an ingested column): no per-value pass
            return np.asarray([str(v) for v in (vals.tolist() if arr is not None else vals)], dtype=object)
        keys = np.asarray(vals)  # other id types (float, datetime): compared as they are
        try:
            return keys.astype(self._index.dtype)
        except (TypeError, ValueError):
            return keys

    def lookup(self, value: Any) -> int:
        """The internal id of one external id (0 when unknown): one hash lookup, the per-request path."""
        try:
            pos = self._index.get_loc(value)
        except (KeyError, TypeError, ValueError, pd.errors.InvalidIndexError):
            return 0
        return int(pos) + 1 if isinstance(pos, (int, np.integer)) else 0

    def to_external(self, internal: Any) -> np.ndarray:
        """Map internal ids (1..n) back to external ids."""
        idx = np.asarray(internal, dtype=np.int64)
        if idx.size and (idx.min() < 1 or idx.max() > len(self._index)):
            raise KeyError("internal id out of range (0 is padding and has no external id)")
        return self._index.to_numpy()[idx - 1]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"internal_id": np.arange(1, len(self._index) + 1, dtype=np.int64), "external_id": self._index.to_numpy()}
        )

    def save(self, path: str | Path) -> None:
        self.to_frame().to_parquet(path, index=False)

    @classmethod
    def load(cls, path: str | Path) -> "IdMap":
        df = pd.read_parquet(path).sort_values("internal_id", kind="stable")
        expected = np.arange(1, len(df) + 1)
        if not np.array_equal(df["internal_id"].to_numpy(), expected):
            raise ValueError(f"{path}: internal ids must be 1..n without gaps")
        return cls(df["external_id"].to_numpy())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    def __repr__(self) -> str:
        return f"IdMap(size={len(self)})"
