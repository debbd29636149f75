"""IngestReport: what happened to every row of one input (read = kept + rejected + duplicates + k-core)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["IngestReport"]


@dataclass
class IngestReport:
    """What happened to every row of one input.

    ``rows_read == rows_kept + rows_rejected + duplicates_removed + kcore_removed`` always holds
    for a report attached to an EventLog. ``rejects`` holds the rejected rows in memory (also
    written to ``rejects_path`` when one was given); it is left out of :meth:`to_dict`.
    """

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_rejected: int = 0
    duplicates_removed: int = 0
    kcore_removed: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    rejects_path: str | None = None
    blank_lines: int = 0
    time_unit: str | None = None
    n_users: int = 0
    n_items: int = 0
    min_user_events: int = 0
    min_item_events: int = 0
    rejects: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def balanced(self) -> bool:
        """Whether every read row is accounted for."""
        return self.rows_read == self.rows_kept + self.rows_rejected + self.duplicates_removed + self.kcore_removed

    def summary(self) -> str:
        """A short human-readable account, ending with the row-count check."""
        unit = f" (time unit: {self.time_unit})" if self.time_unit else ""
        lines = [f"Read {self.rows_read:,} rows from {self.source}{unit}."]
        lines.append(f"  kept        {self.rows_kept:>12,}  ({self.n_users:,} users, {self.n_items:,} items)")
        rej = f"  rejected    {self.rows_rejected:>12,}"
        if self.rejects_by_reason:
            rej += "  (" + ", ".join(f"{k}: {v:,}" for k, v in self.rejects_by_reason.items()) + ")"
        if self.rejects_path:
            rej += f" -> {self.rejects_path}"
        elif self.rows_rejected:
            rej += " (not saved: pass --rejects / rejects_path= to keep them)"
        lines.append(rej)
        lines.append(f"  duplicates  {self.duplicates_removed:>12,}")
        kc = f"  k-core      {self.kcore_removed:>12,}"
        if self.min_user_events > 1 or self.min_item_events > 1:
            kc += f"  (min_user_events={self.min_user_events}, min_item_events={self.min_item_events})"
        lines.append(kc)
        if self.blank_lines:
            lines.append(f"  ({self.blank_lines:,} blank lines skipped, not counted as rows)")
        check = "OK" if self.balanced else "MISMATCH"
        lines.append(
            f"Check: {self.rows_read:,} read = {self.rows_kept:,} kept + {self.rows_rejected:,} rejected"
            f" + {self.duplicates_removed:,} duplicates + {self.kcore_removed:,} k-core: {check}"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields (without the in-memory ``rejects`` frame)."""
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_rejected": self.rows_rejected,
            "duplicates_removed": self.duplicates_removed,
            "kcore_removed": self.kcore_removed,
            "rejects_by_reason": dict(self.rejects_by_reason),
            "rejects_path": self.rejects_path,
            "blank_lines": self.blank_lines,
            "time_unit": self.time_unit,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "min_user_events": self.min_user_events,
            "min_item_events": self.min_item_events,
            "balanced": self.balanced,
        }
