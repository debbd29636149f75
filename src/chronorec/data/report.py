"""IngestReport: what happened to every row of one input
(read = kept + rejected + duplicates + k-core + the rows each named recipe rule removed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["IngestReport"]


@dataclass
class IngestReport:
    """What happened to every row of one input.

    ``rows_read == rows_kept + rows_rejected + duplicates_removed + kcore_removed +
    sum(rules_removed.values())`` always holds for a report attached to an EventLog.
    ``rules_removed`` counts the rows each named rule of the ``recipe`` removed (a row under the
    first rule that removed it); ``rules_tagged`` the kept rows a rule gave a behaviour. ``rejects`` holds the rejected rows in memory (also
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
    recipe: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    rules_removed: dict[str, int] = field(default_factory=dict)
    rules_tagged: dict[str, int] = field(default_factory=dict)
    rules_values: dict[str, dict[str, int]] = field(default_factory=dict)
    net_unmatched: float = 0.0
    timezone: str | None = None
    naive_timestamps: int = 0
    time_units: dict[str, int] = field(default_factory=dict)  # rows read in each unit (s, ms, ..., datetime)
    time_outliers: dict[str, int] = field(default_factory=dict)  # rows per kind: negative, before 1990, future
    time_outlier_examples: list[dict[str, Any]] = field(default_factory=list)  # up to 5 {line, value, reason}
    rejects: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def balanced(self) -> bool:
        """Whether every read row is accounted for."""
        return self.rows_read == (
            self.rows_kept
            + self.rows_rejected
            + self.duplicates_removed
            + self.kcore_removed
            + sum(self.rules_removed.values())
        )

    def _time_line(self) -> str | None:
        if not self.naive_timestamps:
            return None
        if self.timezone:
            return (
                f"  {self.naive_timestamps:,} timestamps without an offset read as {self.timezone} time, stored as UTC"
            )
        return (
            f"  {self.naive_timestamps:,} timestamps without an offset read as UTC "
            "(pass --timezone / timezone= if they are local times)"
        )

    def _rule_lines(self) -> list[str]:
        lines = []
        for name, n in self.rules_removed.items():
            lines.append(f"  {'rule ' + repr(name):<40} {n:>12,}")
            if vals := self.rules_values.get(name):
                lines.append("      " + ", ".join(f"{v}: {c:,}" for v, c in vals.items()))
        if self.net_unmatched:
            lines.append(
                f"  (cancelled quantity without an earlier purchase to net against: {self.net_unmatched:,.0f})"
            )
        lines += [
            f"  {'behaviour ' + repr(name):<40} {n:>12,}  (kept, set by a rule)"
            for name, n in self.rules_tagged.items()
        ]
        return lines

    def _outlier_lines(self) -> list[str]:
        lines = []
        epoch = [u for u in self.time_units if u != "datetime"]
        if len(epoch) > 1:
            counts = ", ".join(f"{self.time_units[u]:,} in {u}" for u in epoch)
            lines.append(f"  timestamps: {counts} (each value's unit decided by its magnitude)")
        if self.time_outliers:
            kinds = ", ".join(f"{n:,} {k}" for k, n in self.time_outliers.items())
            eg = "; ".join(f"line {e['line']}: {e['value']!r}" for e in self.time_outlier_examples[:3])
            fate = "rejected" if any(k in self.rejects_by_reason for k in self.time_outliers) else "kept"
            lines.append(f"  time outliers ({fate}): {kinds} (e.g. {eg})")
        return lines

    def summary(self) -> str:
        """A short human-readable account, ending with the row-count check."""
        unit = f" (time unit: {self.time_unit})" if self.time_unit else ""
        lines = [f"Read {self.rows_read:,} rows from {self.source}{unit}."]
        if self.recipe:
            lines.append(f"  recipe: {self.recipe}")
        if self.columns:
            shown = {k: ("(from the recipe)" if v == "__behavior__" else repr(v)) for k, v in self.columns.items()}
            lines.append("  columns: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        if (t := self._time_line()) is not None:
            lines.append(t)
        lines += self._outlier_lines()
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
        lines += self._rule_lines()
        if self.blank_lines:
            lines.append(f"  ({self.blank_lines:,} blank lines skipped, not counted as rows)")
        check = "OK" if self.balanced else "MISMATCH"
        lines.append(
            f"Check: {self.rows_read:,} read = {self.rows_kept:,} kept + {self.rows_rejected:,} rejected"
            f" + {self.duplicates_removed:,} duplicates + {self.kcore_removed:,} k-core"
            + "".join(f" + {n:,} {name}" for name, n in self.rules_removed.items())
            + f": {check}"
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
            "recipe": self.recipe,
            "columns": dict(self.columns),
            "rules_removed": dict(self.rules_removed),
            "rules_tagged": dict(self.rules_tagged),
            "rules_values": {k: dict(v) for k, v in self.rules_values.items()},
            "net_unmatched_quantity": self.net_unmatched,
            "timezone": self.timezone,
            "naive_timestamps": self.naive_timestamps,
            "naive_timestamps_read_as": (self.timezone or "UTC") if self.naive_timestamps else None,
            "time_units": dict(self.time_units),
            "time_outliers": dict(self.time_outliers),
            "time_outlier_examples": list(self.time_outlier_examples),
            "balanced": self.balanced,
        }
