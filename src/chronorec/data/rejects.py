"""Rejected rows of an ingest: the rejects table (line, reason, raw values), its file, and the one
error that stops an ingest with too many of them, naming the option that fixes the main reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data.readers import RawTable, shorten
from chronorec.data.report import IngestReport
from chronorec.data.timestamps import TIME_REASON_FIX
from chronorec.errors import IngestError

__all__ = ["REASON_FIX", "build_rejects", "raise_too_many", "write_rejects"]

REASON_FIX = {
    "missing user": "check that --user-col (user_col=) names the user id column, currently {user_col!r}",
    "missing item": "check that --item-col (item_col=) names the item id column, currently {item_col!r}",
    "missing timestamp": "check that --time-col (time_col=) names the time column, currently {time_col!r}",
    "bad timestamp": (
        "pass --time-unit (time_unit='s' or 'ms') or --time-col (time_col=) naming the time column, "
        "currently {time_col!r}; timestamps must be epoch seconds/milliseconds or ISO-8601 date-times"
    ),
    **TIME_REASON_FIX,
    **{f"bad {r} id": f"{r} ids must be single values, not lists: check --{r}-col" for r in ("user", "item")},
    "missing behavior": "check that --behavior-col (behavior_col=) names the behaviour column, currently {behavior_col!r}",
    "unknown behavior": "add the value to the recipe's 'behaviors' mapping, or check --behavior-col (behavior_col=)",
    "bad value": "check that --value-col (value_col=) names a numeric column, currently {value_col!r}",
    "wrong number of fields": "pass --sep (sep=) with the right separator, detected {sep!r}, or quote fields that contain it",
    "invalid JSON": "fix or remove the malformed lines; every line must be one JSON object",
    "invalid basket file": "a basket file is one JSON object {user: [[item, ...], ...]}: fix the listed baskets",
    "missing basket": "check that --basket-col (basket_col=) names the basket / order id column, currently {basket_col!r}",
    "missing session": "check that --session-col (session_col=) names the session id column, currently {session_col!r}",
}


def _raw_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Raw values as text ('' for missing), for the rejects file and messages."""
    out = {}
    for c in frame.columns:
        s = frame[c]
        out[str(c)] = s.astype(object).where(s.notna(), "").map(str).to_numpy()
    return pd.DataFrame(out, index=range(len(frame)))


def _format_rows(rejects: pd.DataFrame, value_cols: list[str], limit: int = 5) -> str:
    parts = []
    for _, r in rejects.head(limit).iterrows():
        vals = ", ".join(f"{c}={shorten(r[c])}" for c in value_cols if c in r.index and r[c] != "")
        if "raw" in r.index and r["raw"]:
            vals = (vals + ", " if vals else "") + f"raw={shorten(r['raw'])}"
        parts.append(f"  line {int(r['line'])}: {r['reason']}: {vals}")
    return "\n".join(parts)


def write_rejects(rejects: pd.DataFrame, path: str | Path) -> str:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() in (".parquet", ".pq"):
        rejects.to_parquet(p, index=False)
    else:
        rejects.to_csv(p, index=False)
    return str(p)


def build_rejects(raw: RawTable, checks: list[tuple[str, np.ndarray]], bad: np.ndarray) -> pd.DataFrame:
    idx = np.flatnonzero(bad)
    reasons = []
    for i in idx:
        reasons.append("; ".join(label for label, m in checks if m[i]))
    vals = _raw_text(raw.frame.iloc[idx])
    out = pd.DataFrame({"line": raw.lines[idx], "reason": np.asarray(reasons, dtype=object)})
    out = pd.concat([out, vals], axis=1) if len(vals.columns) else out
    if raw.parse_rejects:
        extra = pd.DataFrame(raw.parse_rejects, columns=["line", "reason", "raw"])
        out["raw"] = ""
        out = pd.concat([out, extra], ignore_index=True).sort_values("line", kind="stable").reset_index(drop=True)
        for c in vals.columns:
            out[c] = out[c].fillna("")
    out["line"] = out["line"].astype(np.int64)
    return out


def raise_too_many(
    raw: RawTable, rejects: pd.DataFrame, share: float, limit: float, report: IngestReport, opts: dict[str, Any]
) -> None:
    n_bad, n_read = len(rejects), report.rows_read
    top = max(report.rejects_by_reason, key=lambda k: report.rejects_by_reason[k]) if report.rejects_by_reason else ""
    fix = REASON_FIX.get(top, "check the column options").format(**opts)
    value_cols = [c for c in rejects.columns if c not in ("line", "reason", "raw")]
    saved = f" All rejected rows were written to {report.rejects_path}." if report.rejects_path else ""
    by_reason = ", ".join(f"{k}: {v:,}" for k, v in report.rejects_by_reason.items())
    raise IngestError(
        f"{raw.source}: {n_bad:,} of {n_read:,} rows ({share:.0%}) are bad, more than the allowed "
        f"{limit:.0%} ({by_reason}). First {min(5, n_bad)}:\n{_format_rows(rejects, value_cols)}\n"
        f"Fix: {fix}.{saved}"
    )
