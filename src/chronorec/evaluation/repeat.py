"""Repeat consumption and the history protocol (``history="exclude" | "include" | "auto"``).

Defined in :mod:`chronorec.scoring.history`, below the models, which decide their protocol at fit;
this is their documented public path.
"""

from __future__ import annotations

from chronorec.scoring.history import (
    AUTO_MAX_REPEAT_SHARE,
    HISTORY_MODES,
    HistoryDecision,
    HistoryMode,
    decide_history,
    last_event_repeat_share,
    repeat_mask,
    repeat_stats,
)

__all__ = [
    "AUTO_MAX_REPEAT_SHARE",
    "HISTORY_MODES",
    "HistoryDecision",
    "HistoryMode",
    "decide_history",
    "last_event_repeat_share",
    "repeat_mask",
    "repeat_stats",
]
