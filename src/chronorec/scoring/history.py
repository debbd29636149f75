"""Repeat consumption: how many targets are items the user already has, and what that means for
excluding the history from the ranking.

Excluding the input history is the published protocol of ML-1M and Beauty (a film is rated once),
but on a shop's log a large share of the next purchases are repeat purchases: excluding them makes
those targets impossible to hit. ``history="auto"`` looks at the validation cases and excludes the
history only when their targets (almost) never repeat a history item.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from chronorec.errors import ConfigError
from chronorec.scoring.cases import EvalSet

HistoryMode = Literal["exclude", "include", "auto"]
HISTORY_MODES = ("exclude", "include", "auto")
AUTO_MAX_REPEAT_SHARE = 0.01
"""``auto`` excludes the history when at most this share (1 %) of the validation targets repeat a
history item: excluding costs those targets at most this much HR, and helps every other case."""


def repeat_mask(evalset: EvalSet) -> np.ndarray:
    """One boolean per target (aligned with ``evalset.target_items``): is it in its case's input history?"""
    n = len(evalset)
    if n == 0:
        return np.zeros(0, dtype=bool)
    width = int(max(evalset.input_items.max(initial=0), evalset.target_items.max(initial=0))) + 1
    in_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(evalset.input_offsets))
    t_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(evalset.target_offsets))
    seen = np.unique(in_rows * width + evalset.input_items)
    return np.isin(t_rows * width + evalset.target_items, seen)


def repeat_stats(evalset: EvalSet) -> dict[str, float]:
    """``repeat_share``: share of the targets already in the case's input history; ``repeat_cases``:
    share of the cases with at least one such target; ``n_targets``: how many targets were counted."""
    mask = repeat_mask(evalset)
    n = len(evalset)
    if n == 0:
        return {"repeat_share": 0.0, "repeat_cases": 0.0, "n_targets": 0.0}
    rows = np.repeat(np.arange(n), np.diff(evalset.target_offsets))
    any_repeat = np.bincount(rows[mask], minlength=n) > 0
    return {
        "repeat_share": float(mask.mean()) if len(mask) else 0.0,
        "repeat_cases": float(any_repeat.mean()),
        "n_targets": float(len(mask)),
    }


@dataclass(frozen=True)
class HistoryDecision:
    """Whether evaluation excludes the input history, and why (saved with every result)."""

    mode: str  # what was asked: exclude, include or auto
    exclude: bool  # what was done
    reason: str
    validation_repeat_share: float | None = None
    threshold: float = AUTO_MAX_REPEAT_SHARE

    @property
    def label(self) -> str:
        return "excluded" if self.exclude else "included"

    def describe(self) -> str:
        """One line for printouts, e.g. ``history excluded (auto: 0.0% of validation targets repeat ...)``."""
        return f"history {self.label} ({self.mode}: {self.reason})"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "used": self.label}


def last_event_repeat_share(offsets: np.ndarray, items: np.ndarray) -> tuple[float, int]:
    """(share, n): of the users with two or more events in a CSR store (``offsets``, ``items``; see
    :class:`chronorec.data.sequences.SequenceStore`), the share whose last event repeats an earlier
    item of their own. It stands in for the validation rule when a model is fitted without
    validation cases: leave-one-out validation is exactly these last events."""
    offsets = np.asarray(offsets, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    lengths = np.diff(offsets)
    users = np.flatnonzero(lengths >= 2)
    if not len(users):
        return 0.0, 0
    owner = np.repeat(np.arange(len(lengths)), lengths)  # the user of every event
    earlier = np.ones(len(items), dtype=bool)
    earlier[offsets[1:][lengths > 0] - 1] = False  # every event but each user's last
    width = int(items.max(initial=0)) + 1
    last = users * width + items[offsets[users + 1] - 1]
    return float(np.isin(last, owner[earlier] * width + items[earlier]).mean()), len(users)


def decide_history(
    mode: str | bool | None,
    validation: EvalSet | None = None,
    *,
    training: tuple[np.ndarray, np.ndarray] | None = None,
) -> HistoryDecision:
    """The history protocol for ``mode``: ``"exclude"``, ``"include"``, or ``"auto"`` (the default;
    exclude only when at most :data:`AUTO_MAX_REPEAT_SHARE` of ``validation``'s targets repeat a
    history item). ``True`` / ``False`` are read as exclude / include (the old boolean option).

    Without validation cases, ``training`` (a CSR store's ``offsets, items``) is measured instead:
    the share of users whose last training event repeats one of their earlier items
    (:func:`last_event_repeat_share`)."""
    if mode is None:
        mode = "auto"
    if isinstance(mode, bool):
        mode = "exclude" if mode else "include"
    if mode not in HISTORY_MODES:
        raise ConfigError(f"history must be one of {', '.join(HISTORY_MODES)}, not {mode!r}")
    if mode == "exclude":
        return HistoryDecision(mode, True, "asked for: items of the input history are never recommended")
    if mode == "include":
        return HistoryDecision(mode, False, "asked for: items of the input history may be recommended")
    if validation is None or len(validation) == 0:
        if training is not None:
            share, n = last_event_repeat_share(*training)
            if n:
                pct = f"{100 * share:.1f}% of the users' last training events repeat an earlier item"
                cmp = "<=" if share <= AUTO_MAX_REPEAT_SHARE else ">"
                return HistoryDecision(
                    mode, share <= AUTO_MAX_REPEAT_SHARE, f"{pct} ({cmp} {100 * AUTO_MAX_REPEAT_SHARE:g}%)", share
                )
        return HistoryDecision(mode, True, "no validation cases to measure repeats on; the published protocol")
    share = repeat_stats(validation)["repeat_share"]
    pct = f"{100 * share:.1f}% of validation targets repeat a history item"
    if share <= AUTO_MAX_REPEAT_SHARE:
        return HistoryDecision(mode, True, f"{pct} (<= {100 * AUTO_MAX_REPEAT_SHARE:g}%)", share)
    return HistoryDecision(mode, False, f"{pct} (> {100 * AUTO_MAX_REPEAT_SHARE:g}%)", share)


__all__ = [
    "AUTO_MAX_REPEAT_SHARE",
    "HISTORY_MODES",
    "HistoryDecision",
    "decide_history",
    "last_event_repeat_share",
    "repeat_mask",
    "repeat_stats",
]
