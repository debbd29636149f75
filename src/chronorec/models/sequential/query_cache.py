"""A bounded cache of a sequence model's query vectors, keyed by the history that made them.

Without context features a sequence model's score row is ``query(history) @ items^T``, and the
query is a pure function of the last ``max_len`` items of the history. A service asked again for
the same user (a page reload, a second widget, a next page) with an unchanged history can skip the
forward pass, which is most of a request's CPU. A history that changed (a live event) is a new key,
so nothing needs invalidating; the least recently used entries go first once ``size`` is reached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import torch


class QueryCache:
    """LRU of query vectors by history bytes; safe to share between threads."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("a query cache needs room for at least one entry")
        self.size = int(size)
        self.hits = 0
        self.misses = 0
        self._rows: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self, histories: Sequence[np.ndarray], compute: Callable[[list[int]], torch.Tensor]) -> torch.Tensor:
        """Query vectors (B, d) of ``histories`` (already cut to the model's window): cached rows, and
        ``compute(missing row numbers)`` -> (m, d) for the others, which are then cached."""
        keys = [np.ascontiguousarray(h, dtype=np.int64).tobytes() for h in histories]
        with self._lock:
            found: list[torch.Tensor | None] = []
            for k in keys:
                row = self._rows.get(k)
                if row is not None:
                    self._rows.move_to_end(k)
                found.append(row)
            missing = [i for i, row in enumerate(found) if row is None]
            self.hits += len(keys) - len(missing)
            self.misses += len(missing)
        if missing:
            fresh = compute(missing)
            with self._lock:
                for i, row in zip(missing, fresh, strict=True):
                    found[i] = self._rows[keys[i]] = row.clone()
                    self._rows.move_to_end(keys[i])
                while len(self._rows) > self.size:
                    self._rows.popitem(last=False)
        return torch.stack(found)  # type: ignore[arg-type]

    def stats(self) -> dict[str, int]:
        return {"size": self.size, "entries": len(self._rows), "hits": self.hits, "misses": self.misses}


__all__ = ["QueryCache"]
