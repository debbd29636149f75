"""CSR sequence store: every user's events packed into flat arrays plus offsets.

``offsets`` has one entry per internal user id plus one (user 0 is padding and
is always empty), so the events of user ``u`` are ``items[offsets[u]:offsets[u+1]]``,
in stable chronological order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SequenceStore:
    offsets: np.ndarray  # int64, shape (n_users + 2,)
    items: np.ndarray  # int64 internal item ids
    n_items: int
    timestamps: np.ndarray | None = None  # int64 seconds
    behaviors: np.ndarray | None = None  # int64 internal behaviour ids
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # per-event context codes

    @classmethod
    def from_arrays(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        *,
        n_users: int,
        n_items: int,
        timestamps: np.ndarray | None = None,
        behaviors: np.ndarray | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> "SequenceStore":
        """Pack events that are already sorted by (user, time) into CSR form."""
        users = np.asarray(users, dtype=np.int64)
        if users.size and np.any(np.diff(users) < 0):
            raise ValueError("events must be sorted by user before packing")
        counts = np.bincount(users, minlength=n_users + 1)[: n_users + 1]
        offsets = np.zeros(n_users + 2, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(
            offsets=offsets,
            items=np.asarray(items, dtype=np.int64),
            n_items=n_items,
            timestamps=None if timestamps is None else np.asarray(timestamps, dtype=np.int64),
            behaviors=None if behaviors is None else np.asarray(behaviors, dtype=np.int64),
            extra={k: np.asarray(v) for k, v in (extra or {}).items()},
        )

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 2

    @property
    def lengths(self) -> np.ndarray:
        """Sequence length per internal user id (index 0 = padding user)."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.n_users

    def user_items(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def histories(self, users: np.ndarray) -> list[np.ndarray]:
        return [self.user_items(int(u)) for u in users]

    def padded(self, users: np.ndarray, max_len: int, *, arrays: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
        """Last ``max_len`` items of each user, left-padded with 0: shape (len(users), max_len)."""
        src = self.items if arrays is None else arrays[0]
        out = np.zeros((len(users), max_len), dtype=np.int64)
        for r, u in enumerate(users):
            a, b = self.offsets[u], self.offsets[u + 1]
            a = max(a, b - max_len)
            if b > a:
                out[r, max_len - (b - a) :] = src[a:b]
        return out

    def seen_matrix(self):
        """Sparse (n_users+1) x (n_items+1) user-item matrix of ones (duplicates summed)."""
        import scipy.sparse as sp

        rows = np.repeat(np.arange(self.n_users + 1), self.lengths)
        return sp.csr_matrix(
            (np.ones(len(self.items), dtype=np.float32), (rows, self.items)),
            shape=(self.n_users + 1, self.n_items + 1),
        )


def pack_histories(histories: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pack a list of int arrays into (offsets, flat) CSR arrays."""
    lens = np.array([len(h) for h in histories], dtype=np.int64)
    offsets = np.zeros(len(histories) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    flat = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if histories else np.zeros(0, np.int64)
    return offsets, flat
