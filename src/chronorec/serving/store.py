"""Live events: the durable store (one SQLite file, written before a request is answered) and
the in-memory histories rebuilt from it.

Every accepted event is committed (``synchronous=FULL``, WAL journal) before ``POST /events``
returns, so a crash or restart loses none. Ids are stored as JSON text, so integer and string
ids keep their type when the events are exported for the next training run.

A request's ``Idempotency-Key`` is committed in the same transaction as its events (table
``idempotency_keys``, kept :data:`KEY_TTL_S`): a retry with that key finds it and adds nothing
(:class:`Replayed` carries the first answer); a crash can never keep the events but lose the key.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.errors import ConfigError

DB_NAME = "events.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    behavior TEXT,
    timestamp INTEGER NOT NULL,
    context TEXT,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantined_events (
    seq INTEGER PRIMARY KEY,
    user_id TEXT,
    item_id TEXT,
    behavior TEXT,
    timestamp INTEGER,
    context TEXT,
    received_at REAL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    response TEXT,
    created_at REAL NOT NULL
)
"""

KEY_TTL_S = 24 * 3600
"""How long an idempotency key is remembered (a retry after that is a new request)."""


class Replayed(Exception):
    """A request's idempotency key was already committed: nothing was added this time.

    ``digest`` is the first request's body digest; ``response`` its answer (None when the service
    stopped between committing the events and recording the answer); ``accepted`` its event count.
    """

    def __init__(self, key: str, digest: str, accepted: int, response: dict[str, Any] | None):
        super().__init__(f"idempotency key {key!r} was already used")
        self.key, self.digest, self.accepted, self.response = key, digest, accepted, response


class LiveEventStore:
    """Append-only live events in ``<state_dir>/events.sqlite`` (thread-safe)."""

    def __init__(self, state_dir: str | Path):
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / DB_NAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def append(self, events: Iterable[dict[str, Any]], idempotency: tuple[str, str] | None = None) -> int:
        """Commit events (keys: user_id, item_id, behavior, timestamp, context) in one transaction.

        ``idempotency`` (key, body digest) is committed with them; a key already there raises
        :class:`Replayed` and commits nothing.
        """
        now = time.time()
        rows = [
            (
                json.dumps(e["user_id"]),
                json.dumps(e["item_id"]),
                e.get("behavior"),
                int(e["timestamp"]),
                json.dumps(e["context"]) if e.get("context") else None,
                now,
            )
            for e in events
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if idempotency is not None:
                    self._claim(idempotency, len(rows), now)
                self._db.executemany(
                    "INSERT INTO events (user_id, item_id, behavior, timestamp, context, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def _claim(self, idempotency: tuple[str, str], accepted: int, now: float) -> None:
        """Record the key inside the open transaction, or raise :class:`Replayed` if it is known."""
        key, digest = idempotency
        self._db.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - KEY_TTL_S,))
        row = self._db.execute(
            "SELECT digest, accepted, response FROM idempotency_keys WHERE key = ?", (key,)
        ).fetchone()
        if row is not None:
            raise Replayed(key, row[0], int(row[1]), json.loads(row[2]) if row[2] else None)
        self._db.execute(
            "INSERT INTO idempotency_keys (key, digest, accepted, response, created_at) VALUES (?, ?, ?, NULL, ?)",
            (key, digest, accepted, now),
        )

    def record_response(self, key: str, response: dict[str, Any]) -> None:
        """Keep the answer of the request that used ``key``, for its retries."""
        with self._lock:
            self._db.execute("UPDATE idempotency_keys SET response = ? WHERE key = ?", (json.dumps(response), key))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every stored event in arrival order, with its ``seq``; a row whose JSON does not parse
        comes as ``{"seq": ..., "error": ...}`` (for :meth:`quarantine`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, user_id, item_id, behavior, timestamp, context FROM events ORDER BY seq"
            ).fetchall()
        for seq, u, i, b, t, c in rows:
            try:
                yield {
                    "seq": seq,
                    "user_id": json.loads(u),
                    "item_id": json.loads(i),
                    "behavior": b,
                    "timestamp": t,
                    "context": json.loads(c) if c else {},
                }
            except (TypeError, ValueError) as e:
                yield {"seq": seq, "error": f"unreadable row: {e}"}

    def quarantine(self, reasons: dict[int, str]) -> None:
        """Move the events ``{seq: reason}`` out of the live store into ``quarantined_events``, in one
        transaction: they stay for inspection and no longer take part in replay or export."""
        if not reasons:
            return
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for seq, reason in reasons.items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO quarantined_events SELECT seq, user_id, item_id, behavior, timestamp,"
                        " context, received_at, ?, ? FROM events WHERE seq = ?",
                        (reason, now, seq),
                    )
                    self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def n_quarantined(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM quarantined_events").fetchone()[0])

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def to_frame(self) -> pd.DataFrame:
        """Events as ``user_id, item_id, timestamp, behavior`` plus one column per context key (ingestable)."""
        events = list(self)
        df = pd.DataFrame(
            {
                C.USER: [e["user_id"] for e in events],
                C.ITEM: [e["item_id"] for e in events],
                C.TIME: pd.array([e["timestamp"] for e in events], dtype="int64"),
                C.BEHAVIOR: [e["behavior"] for e in events],
            }
        )
        keys = sorted({k for e in events for k in e["context"]})
        for k in keys:
            if k in df.columns:
                continue
            df[k] = [None if e["context"].get(k) is None else str(e["context"][k]) for e in events]
        for col in (C.USER, C.ITEM):  # a column mixing int and text ids is written as text
            kinds = {type(v) for v in df[col]}
            df[col] = df[col].astype("int64") if kinds == {int} else df[col].astype(str)
        if df[C.BEHAVIOR].isna().all():
            df = df.drop(columns=[C.BEHAVIOR])
        return df

    def export(self, path: str | Path) -> Path:
        """Write the events to .parquet, .csv or .jsonl (for ``chronorec ingest`` / training)."""
        p = Path(path)
        df = self.to_frame()
        suffix = p.suffix.lower()
        p.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            df.to_parquet(p, index=False)
        elif suffix == ".csv":
            df.to_csv(p, index=False)
        elif suffix == ".jsonl":
            df.to_json(p, orient="records", lines=True)
        else:
            raise ConfigError(f"{p}: export to .parquet, .csv or .jsonl")
        return p

    def close(self) -> None:
        with self._lock:
            self._db.close()


class LiveHistories:
    """In-memory live events per user (internal item ids + behaviours), rebuilt from the store at start."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: dict[str, list[int]] = defaultdict(list)
        self._behaviors: dict[str, list[str | None]] = defaultdict(list)

    def add(self, key: str, item: int, behavior: str | None) -> None:
        with self._lock:
            self._items[key].append(item)
            self._behaviors[key].append(behavior)

    def get(self, key: str) -> tuple[np.ndarray, list[str | None]]:
        """A user's live items (oldest first) and their behaviour types."""
        with self._lock:
            return np.asarray(self._items.get(key, []), np.int64), list(self._behaviors.get(key, []))


__all__ = ["DB_NAME", "KEY_TTL_S", "LiveEventStore", "LiveHistories", "Replayed"]
