"""The fingerprint of an event log: one definition for what a model records about its training data
(``training_data`` in its config.json, read by the leak checks) and for what a training checkpoint
must share with the run that resumes it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["catalogue_hash", "data_fingerprint", "iso", "training_record"]


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _ids_hash(ids: np.ndarray) -> np.ndarray:
    return pd.util.hash_pandas_object(pd.Series(np.asarray(ids).astype(str)), index=False).to_numpy()


def catalogue_hash(items: Any) -> str:
    """SHA-256 of the catalogue's external item ids in id order (an :class:`~chronorec.data.idmap.IdMap`)."""
    return _digest(_ids_hash(items.external_ids))


def data_fingerprint(log: Any) -> str:
    """SHA-256 of a log's events (internal user and item ids, timestamps, in the log's stable order)
    and of its two id maps (the external ids behind the internal ones)."""
    ev = log.events
    return _digest(
        _ids_hash(log.users.external_ids),
        _ids_hash(log.items.external_ids),
        ev["user_idx"].to_numpy().astype(np.int64),
        ev["item_idx"].to_numpy().astype(np.int64),
        ev["timestamp"].to_numpy().astype(np.int64),
    )


def iso(seconds: int | float | None) -> str:
    """Epoch seconds as an ISO UTC date-time ("-" for None)."""
    if seconds is None:
        return "-"
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def training_record(log: Any) -> dict[str, Any]:
    """What a model fitted on ``log`` records about its training data (saved in its config.json)."""
    ts = log.events["timestamp"].to_numpy()
    last = int(ts.max()) if len(ts) else None
    return {
        "fingerprint": data_fingerprint(log),
        "n_events": len(log),
        "n_users": int(log.events["user_idx"].nunique()),
        "n_items": int(log.events["item_idx"].nunique()),
        "first_event_time": int(ts.min()) if len(ts) else None,
        "last_event_time": last,
        "last_event": iso(last),
        "catalogue_hash": catalogue_hash(log.items),
        "catalogue_size": int(log.n_items),
    }
