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
        """Map external ids to internal ids; unknown ids give 0 (or raise with ``strict``)."""
        vals = pd.Index(np.asarray(values).ravel())
        try:
            vals = vals.astype(self._index.dtype) if len(self._index) else vals
        except (TypeError, ValueError):
            pass  # mixed or incompatible values: ids that cannot match map to 0 below
        pos = self._index.get_indexer(vals)
        if strict and (pos < 0).any():
            bad = vals[pos < 0][:5].tolist()
            raise KeyError(f"unknown ids (first {len(bad)}): {bad}")
        return (pos + 1).astype(np.int64)

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
