"""The catalogue side of recommendations: id conversion, item attributes, popularity by context,
item embeddings.

* :func:`to_internal` -- external ids to a model's internal ids, forgiving ``"12"`` vs ``12``;
* :class:`ItemTable` -- categories, availability, prices and names aligned with internal ids;
* :func:`daypart` / :func:`context_keys` -- a request context as ``key=value`` strings;
* :class:`PopularityIndex` -- global and per-context item counts (live events add to them);
* :func:`item_embeddings` -- unit-norm item vectors of a neural model (similarity, explanations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.errors import ConfigError, DataError

DAYPARTS = ((0, 6, "night"), (6, 12, "morning"), (12, 18, "afternoon"), (18, 24, "evening"))
"""(first hour, end hour, name) of the parts of a UTC day."""


# ============================================================================ ids
def to_internal(idmap: Any, values: Sequence[Any]) -> np.ndarray:
    """External ids -> internal ids (0 = unknown): :meth:`chronorec.data.idmap.IdMap.to_internal`, the
    one conversion (``"12"`` finds integer id 12 and ``12`` text id ``"12"``)."""
    return idmap.to_internal(list(values))


# ============================================================================ item table
class ItemTable:
    """Item attributes aligned with a model's internal ids (index 0 = padding).

    Items missing from the table have no category, no price (dropped by a price range) and
    count as available.
    """

    def __init__(
        self,
        *,
        category: np.ndarray,
        category_names: list[str],
        available: np.ndarray,
        price: np.ndarray,
        names: np.ndarray | None = None,
    ):
        self.category = category  # int64 codes, 0 = none
        self.category_names = category_names  # code c -> category_names[c - 1]
        self.available = available
        self.price = price
        self.names = names

    @property
    def has_categories(self) -> bool:
        return bool(self.category_names) and bool((self.category > 0).any())

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        items: Any,
        *,
        category_col: str = "category",
        available_col: str = "available",
        price_col: str = "price",
        name_col: str = "name",
    ) -> ItemTable:
        """Build from a frame with ``item_id`` and any of category / available / price / name columns."""
        if C.ITEM not in df.columns:
            raise DataError(f"item table: missing column {C.ITEM!r} (columns: {list(df.columns)})")
        n = items.size + 1
        idx = to_internal(items, df[C.ITEM].tolist())
        keep = idx > 0
        df, idx = df[keep], idx[keep]
        category = np.zeros(n, np.int64)
        names_list: list[str] = []
        if category_col in df.columns:
            cats = df[category_col].astype("string")
            codes, uniques = pd.factorize(cats, sort=True)
            category[idx] = np.where(codes >= 0, codes + 1, 0)
            names_list = [str(u) for u in uniques]
        available = np.ones(n, bool)
        if available_col in df.columns:
            available[idx] = df[available_col].astype(bool).to_numpy()
        available[0] = False
        price = np.full(n, np.nan)
        if price_col in df.columns:
            price[idx] = pd.to_numeric(df[price_col], errors="coerce").to_numpy(dtype=np.float64)
        names = None
        if name_col in df.columns:
            names = np.full(n, None, dtype=object)
            names[idx] = df[name_col].astype(str).to_numpy()
        return cls(category=category, category_names=names_list, available=available, price=price, names=names)

    @classmethod
    def read(cls, path: str | Path, items: Any, **kwargs: Any) -> ItemTable:
        """Read a Parquet or CSV item table (``item_id`` plus attribute columns)."""
        p = Path(path)
        if p.suffix.lower() == ".parquet":
            df = pd.read_parquet(p)
        elif p.suffix.lower() in (".csv", ".tsv"):
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
        else:
            raise ConfigError(f"{p}: item table must be .parquet, .csv or .tsv")
        return cls.from_frame(df, items, **kwargs)

    def codes(self, names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Category codes for names, and the names that are unknown."""
        lookup = {c: i + 1 for i, c in enumerate(self.category_names)}
        return np.array([lookup[c] for c in names if c in lookup], np.int64), [c for c in names if c not in lookup]

    def affinity(self, history: np.ndarray) -> np.ndarray | None:
        """Per category code, the share of ``history`` in it relative to the top category (None: no signal)."""
        if not self.has_categories or not len(history):
            return None
        cats = self.category[history]
        aff = np.bincount(cats[cats > 0], minlength=len(self.category_names) + 1).astype(np.float64)
        aff[0] = 0
        return aff / aff.max() if aff.max() > 0 else None


# ============================================================================ contexts and popularity
def daypart(timestamp: float) -> str:
    """night (0-6h), morning, afternoon, evening (18-24h), in UTC."""
    hour = int((int(timestamp) % 86_400) // 3600)
    return next(name for a, b, name in DAYPARTS if a <= hour < b)


def context_keys(context: Mapping[str, Any] | None) -> list[str]:
    """``key=value`` strings of a request context; ``time`` (epoch seconds) becomes ``daypart=...``."""
    out = []
    for key, value in sorted((context or {}).items()):
        if value is None:
            continue
        if key in ("time", C.TIME):
            try:
                out.append(f"daypart={daypart(float(value))}")
            except (TypeError, ValueError, OverflowError):
                continue
        else:
            out.append(f"{key}={value}")
    return out


class PopularityIndex:
    """Global item counts plus counts per context value (``device=mobile``, ``daypart=evening``)."""

    def __init__(self, global_counts: np.ndarray, context_counts: dict[str, np.ndarray] | None = None):
        self.global_counts = np.asarray(global_counts, dtype=np.float64).copy()
        self.global_counts[0] = 0
        self.context_counts = {k: np.asarray(v, np.float64) for k, v in (context_counts or {}).items()}

    def add(self, item: int, keys: Sequence[str]) -> None:
        """Count one live event of internal ``item`` (0 = unknown: ignored)."""
        if item <= 0 or item >= len(self.global_counts):
            return
        self.global_counts[item] += 1
        for key in keys:
            arr = self.context_counts.get(key)
            if arr is None:
                arr = self.context_counts[key] = np.zeros(len(self.global_counts))
            arr[item] += 1

    def distribution(self, keys: Sequence[str] = ()) -> np.ndarray:
        """Probabilities over items: global, or the mean of the known contexts' (smoothed by global)."""
        g = self.global_counts
        total = g.sum()
        glob = g / total if total > 0 else np.r_[0.0, np.full(len(g) - 1, 1.0 / max(len(g) - 1, 1))]
        parts = []
        for key in keys:
            arr = self.context_counts.get(key)
            if arr is not None and arr.sum() > 0:
                parts.append(0.9 * arr / arr.sum() + 0.1 * glob)
        return np.mean(parts, axis=0) if parts else glob


# ============================================================================ embeddings
def item_embeddings(model: Any) -> np.ndarray | None:
    """Unit-norm item embeddings (n_items + 1, d) of a neural model, or None
    (:meth:`~chronorec.models.base.Recommender.item_embeddings`)."""
    return model.item_embeddings()


__all__ = ["DAYPARTS", "ItemTable", "PopularityIndex", "context_keys", "daypart", "item_embeddings", "to_internal"]
