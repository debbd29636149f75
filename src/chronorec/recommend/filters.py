"""Which items may be recommended: allow / deny lists, item attributes, the user's seen items.

:func:`banned_items` turns :class:`~chronorec.recommend.options.FilterOptions` into a mask over
internal ids (padding always banned); :func:`seen_items` picks the history items a request
excludes (all, or only those seen with given behaviour types). Unknown ids and categories are
reported as warnings, never errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chronorec.recommend.items import ItemTable, to_internal
from chronorec.recommend.options import FilterOptions


def banned_items(
    filters: FilterOptions, items: Any, table: ItemTable | None, n_rows: int, warnings: list[str]
) -> np.ndarray:
    """Mask of ``n_rows`` internal ids (True = removed) for a model's item ``IdMap`` and optional item table."""
    banned = np.zeros(n_rows, bool)
    banned[0] = True
    _id_list_mask(items, filters, banned, warnings)
    if not filters.wants_attributes:
        return banned
    if table is None:
        warnings.append("attribute filters (category / availability / price) ignored: no item table loaded")
        return banned
    _attribute_mask(table, filters, banned, warnings)
    return banned


def _known_ids(items: Any, name: str, values: Sequence[Any], warnings: list[str]) -> np.ndarray:
    """Internal ids of the known ``values`` of filter list ``name``; the unknown ones are reported."""
    idx = to_internal(items, values)
    unknown = [v for v, i in zip(values, idx, strict=True) if i == 0]
    if unknown:
        warnings.append(f"filters.{name}: {len(unknown)} unknown item ids ignored (first: {unknown[:5]})")
    return idx[idx > 0]


def _id_list_mask(items: Any, filters: FilterOptions, banned: np.ndarray, warnings: list[str]) -> None:
    """Ban what the allow and deny lists exclude (in place)."""
    if filters.allow is not None:
        keep = np.zeros(len(banned), bool)
        keep[_known_ids(items, "allow", filters.allow, warnings)] = True
        banned |= ~keep
    if filters.deny:
        banned[_known_ids(items, "deny", filters.deny, warnings)] = True


def _attribute_mask(table: ItemTable, filters: FilterOptions, banned: np.ndarray, warnings: list[str]) -> None:
    """Ban items by category, availability and price range (in place); an unknown price fails a range."""
    if filters.categories is not None:
        codes, unknown = table.codes(filters.categories)
        if unknown:
            warnings.append(f"filters.categories: unknown categories {unknown[:5]}")
        banned |= ~np.isin(table.category, codes)
    if filters.exclude_categories:
        codes, _ = table.codes(filters.exclude_categories)
        banned |= np.isin(table.category, codes)
    if filters.available_only:
        banned |= ~table.available
    if filters.min_price is not None:
        banned |= ~(table.price >= filters.min_price)  # NaN price: dropped
    if filters.max_price is not None:
        banned |= ~(table.price <= filters.max_price)


def seen_items(items: np.ndarray, behaviors: Sequence[str | None] | None, filters: FilterOptions) -> np.ndarray:
    """The history items (oldest first, with their behaviour types if known) that ``filters`` removes."""
    if filters.exclude_seen is False or not len(items):  # None (not resolved): the old default, excluded
        return np.zeros(0, np.int64)
    if filters.exclude_behaviors is None or behaviors is None:
        if filters.exclude_behaviors is not None:
            return np.zeros(0, np.int64)  # no behaviour types known: nothing matches
        return items
    wanted = set(filters.exclude_behaviors)
    sel = np.array([b in wanted for b in behaviors], dtype=bool)
    return items[sel]


def default_exclude_seen(model: Any) -> tuple[bool, str]:
    """Whether a request that does not say drops seen items for ``model``, and why (one phrase).

    The model's history protocol, decided once when it was fitted and recorded with it
    (:attr:`chronorec.models.base.Recommender.exclude_history`): the same rule chose its epochs and
    scores it in ``chronorec evaluate``. Folders saved before the protocol was recorded keep seen
    items for kinds built to rank them (``ranks_own_items``: buy-again and its kin), drop them otherwise.
    """
    protocol = model.history_protocol
    if protocol is not None:
        why = f"the model's history protocol ({protocol.get('mode', 'auto')}): {protocol.get('reason', '')}"
        return bool(protocol["exclude"]), why
    if not model.exclude_history:
        return False, f"{model.kind} models rank the user's own items"
    return True, "the model ranks items new to the user"


__all__ = ["banned_items", "default_exclude_seen", "seen_items"]
