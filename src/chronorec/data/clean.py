"""Reusable cleaning steps for event frames: duplicates, k-core, stable sort, sessions.

All functions work on plain pandas frames with canonical column names
(``chronorec.data.columns``) and never modify their input in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from chronorec.data import columns as C

__all__ = ["remove_duplicates", "kcore_mask", "kcore_filter", "stable_sort", "sessionize"]


def remove_duplicates(df: pd.DataFrame, *, columns: Sequence[str] | None = None) -> tuple[pd.DataFrame, int]:
    """Drop exact duplicate events, keeping the first occurrence (lowest source line).

    Args:
        df: event frame.
        columns: the columns that define "the same event". By default every column except
            ``row`` (the source line number), i.e. user, item, timestamp, behaviour, value and
            context columns.

    Returns:
        ``(frame without duplicates, number of rows removed)``. The kept rows keep their order.
    """
    if columns is None:
        columns = [c for c in df.columns if c != C.ROW]
    if len(df) == 0 or not columns:
        return df, 0
    dup = df.duplicated(subset=list(columns), keep="first").to_numpy()
    n = int(dup.sum())
    return (df.loc[~dup] if n else df), n


def kcore_mask(
    users: np.ndarray | pd.Series,
    items: np.ndarray | pd.Series,
    *,
    min_user_events: int = 0,
    min_item_events: int = 0,
) -> np.ndarray:
    """Boolean mask of the events that survive iterative k-core filtering.

    Users with fewer than ``min_user_events`` events and items with fewer than
    ``min_item_events`` events are removed, repeatedly, until every remaining user and item
    meets its threshold (removing an item can push a user below the threshold and vice versa).
    Thresholds of 0 or 1 disable that side.
    """
    n = len(users)
    keep = np.ones(n, dtype=bool)
    if n == 0 or (min_user_events <= 1 and min_item_events <= 1):
        return keep
    u_codes, u_uniq = pd.factorize(np.asarray(users))
    i_codes, i_uniq = pd.factorize(np.asarray(items))
    while True:
        changed = False
        if min_user_events > 1:
            cnt = np.bincount(u_codes[keep], minlength=len(u_uniq))
            bad = keep & (cnt[u_codes] < min_user_events)
            if bad.any():
                keep &= ~bad
                changed = True
        if min_item_events > 1:
            cnt = np.bincount(i_codes[keep], minlength=len(i_uniq))
            bad = keep & (cnt[i_codes] < min_item_events)
            if bad.any():
                keep &= ~bad
                changed = True
        if not changed:
            return keep


def kcore_filter(
    df: pd.DataFrame,
    *,
    min_user_events: int = 0,
    min_item_events: int = 0,
    user_col: str = C.USER,
    item_col: str = C.ITEM,
) -> tuple[pd.DataFrame, int]:
    """Apply :func:`kcore_mask` to a frame; returns ``(filtered frame, number of rows removed)``."""
    keep = kcore_mask(
        df[user_col].to_numpy(),
        df[item_col].to_numpy(),
        min_user_events=min_user_events,
        min_item_events=min_item_events,
    )
    n = int((~keep).sum())
    return (df.loc[keep] if n else df), n


def stable_sort(
    df: pd.DataFrame, *, user_col: str = C.USER, time_col: str = C.TIME, row_col: str = C.ROW
) -> pd.DataFrame:
    """Sort by (user, timestamp, source row), stably, so ties keep the original file order.

    If ``row_col`` is missing, the current frame order is the tie-breaker. Users are ordered by
    their sort order as values (use internal ids for first-appearance order).
    """
    keys = [user_col, time_col] + ([row_col] if row_col in df.columns else [])
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def sessionize(
    events: pd.DataFrame,
    gap_seconds: float = 1800,
    *,
    user_col: str | None = None,
    time_col: str = C.TIME,
) -> np.ndarray:
    """Session id for every event: a new session starts at a user's first event and after any
    gap strictly longer than ``gap_seconds`` between consecutive events of that user.

    Args:
        events: frame with a user column and an int64 ``timestamp`` (seconds). It does not need
            to be sorted; events are ordered by (user, timestamp, ``row`` if present, position).
        gap_seconds: inactivity gap that closes a session (default 30 minutes).
        user_col: user column; by default ``user_idx`` if present, else ``user_id``.
        time_col: timestamp column.

    Returns:
        int64 array aligned with ``events`` rows; session ids are 1, 2, 3, ... numbered in
        (user, time) order and unique across users.
    """
    if user_col is None:
        user_col = C.USER_IDX if C.USER_IDX in events.columns else C.USER
    n = len(events)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    users = pd.factorize(events[user_col].to_numpy(), sort=False)[0]
    times = events[time_col].to_numpy()
    keys: list[np.ndarray] = [np.arange(n)]
    if C.ROW in events.columns:
        keys.append(events[C.ROW].to_numpy())
    keys += [times, users]
    order = np.lexsort(keys)  # last key is primary: user, then time, then row, then position
    u_sorted = users[order]
    t_sorted = times[order].astype(np.float64)
    new = np.ones(n, dtype=bool)
    new[1:] = (u_sorted[1:] != u_sorted[:-1]) | (np.diff(t_sorted) > gap_seconds)
    sid_sorted = np.cumsum(new).astype(np.int64)
    out = np.empty(n, dtype=np.int64)
    out[order] = sid_sorted
    return out
