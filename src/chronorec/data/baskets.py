"""User-keyed JSON files: basket files ``{user: [[item, ...], ...]}`` (the next-basket literature's
format, e.g. Ta Feng's ``tafeng_merged.json``) and sequence files ``{user: [item, ...]}``, read into
rows ``user_id, item_id`` (and ``basket``) whose
implicit time is the basket index (the position)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import numpy as np
import pandas as pd


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text):,} characters)"


__all__ = ["KeyedRows", "keyed_object", "read_keyed"]


def keyed_object(text: str) -> tuple[dict[str, Any], bool] | None:
    """A user-keyed JSON object and whether it holds baskets: ``{user: [[item, ...], ...]}`` (True)
    or sequences ``{user: [item, ...]}`` (False), decided by most users' values; None for anything
    else (JSON Lines included: several objects do not parse as one)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None  # JSON Lines (several objects) or malformed: the line reader reports it
    if not isinstance(obj, dict) or not obj:
        return None
    lists = [v for v in obj.values() if isinstance(v, list)]
    firsts = [v[0] for v in lists if v]
    if len(lists) < 0.5 * len(obj) or not firsts:
        return None
    return obj, sum(isinstance(b, list) for b in firsts) >= 0.5 * len(firsts)


class KeyedRows(NamedTuple):
    frame: pd.DataFrame  # user_id, item_id (and basket)
    lines: np.ndarray  # the n-th item of the file is row n
    rejects: list[tuple[int, str, str]]  # (row, reason, raw text)
    order: np.ndarray  # the basket index (the position): the implicit time
    kind: str  # "baskets" or "sequences"


def read_keyed(obj: dict[str, Any], baskets: bool) -> KeyedRows:
    """Rows ``user_id, item_id`` (and ``basket``) from a user-keyed JSON object, in order.

    A basket file ``{user: [[item, ...], ...]}``: basket ``b`` (0, 1, ...) of a user is its time and
    its ``basket`` id, shared by every item of the basket. A sequence file ``{user: [item, ...]}``:
    the position is the time. Rows are numbered by their position in the file (the n-th item is row
    n); a user's value that is not a list, a basket that is not a list, or an item that is a list or
    an object is kept aside as a parse reject naming the user and the basket."""
    users, items, times, rows, rejects = [], [], [], [], []
    n = 0
    for user, seq in obj.items():
        if not isinstance(seq, list):
            n += 1
            rejects.append((n, f"invalid basket file (user {user!r}: not a list)", _short(seq)))
            continue
        for b, basket in enumerate(seq):
            if baskets and not isinstance(basket, list):
                n += 1
                rejects.append((n, f"invalid basket file (user {user!r}, basket {b}: not a list)", _short(basket)))
                continue
            for item in basket if baskets else [basket]:
                n += 1
                if isinstance(item, (list, dict)):
                    where = f"user {user!r}, basket {b}" if baskets else f"user {user!r}, position {b}"
                    rejects.append((n, f"invalid basket file ({where}: an item is a list or an object)", _short(item)))
                    continue
                users.append(user)
                items.append(item)
                times.append(b)
                rows.append(n)
    frame = pd.DataFrame({"user_id": pd.Series(users, dtype=object), "item_id": pd.Series(items, dtype=object)})
    order = np.asarray(times, dtype=np.int64)
    if baskets:
        frame["basket"] = order
    return KeyedRows(frame, np.asarray(rows, dtype=np.int64), rejects, order, "baskets" if baskets else "sequences")
