"""Timestamps of any common form to int64 UTC epoch seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from chronorec.errors import IngestError

__all__ = ["TIME_UNITS", "parse_timestamps"]

TIME_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_MAX_ABS_SECONDS = 10**11  # about year 5138: anything larger is a wrong time unit, not a date


def _to_datetime_utc(s: pd.Series) -> pd.Series:
    """Parse date-time text/objects to UTC (naive values are taken as UTC); failures are NaT."""
    out = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
    retry = out.isna().to_numpy() & s.notna().to_numpy()
    if retry.any():
        out = out.copy()
        out[retry] = pd.to_datetime(s[retry], utc=True, errors="coerce", format="mixed")
    return out


def _datetime_seconds(dt: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    ok = dt.notna().to_numpy()
    secs = np.zeros(len(dt), dtype=np.int64)
    if ok.any():
        delta = (dt[ok] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        secs[ok] = delta.to_numpy(dtype=np.int64)
    return secs, ok


def _epoch_seconds(v: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Numeric epochs (float64, NaN = missing) in ``unit`` to int64 seconds (floored)."""
    ok = np.isfinite(v)
    secs = np.zeros(len(v), dtype=np.int64)
    if ok.any():
        scaled = np.floor(v[ok] / TIME_UNITS[unit])
        in_range = np.abs(scaled) <= _MAX_ABS_SECONDS
        idx = np.flatnonzero(ok)
        ok[idx[~in_range]] = False
        secs[idx[in_range]] = scaled[in_range].astype(np.int64)
    return secs, ok


def _auto_unit(v: np.ndarray) -> str:
    finite = np.abs(v[np.isfinite(v)])
    if finite.size == 0:
        return "s"
    med = float(np.median(finite))
    if med < 1e11:
        return "s"
    if med < 1e14:
        return "ms"
    if med < 1e17:
        return "us"
    return "ns"


def parse_timestamps(s: pd.Series, *, time_unit: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """Convert a timestamp column to int64 UTC epoch seconds.

    Accepts numeric epochs (seconds, milliseconds, ...; ``time_unit="auto"`` picks the unit from the
    median magnitude: above 1e11 means milliseconds), numeric text, ISO-8601 / other date-time text
    (naive times are taken as UTC) and datetime columns. Returns ``(seconds, ok mask, unit used)``;
    rows where ``ok`` is False could not be parsed (their seconds are 0).
    """
    if time_unit not in ("auto", *TIME_UNITS):
        raise IngestError(f"time_unit must be 'auto', 's', 'ms', 'us' or 'ns', not {time_unit!r}")
    s = s.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(s):
        dt = s.dt.tz_localize("UTC") if getattr(s.dt, "tz", None) is None else s.dt.tz_convert("UTC")
        secs, ok = _datetime_seconds(dt)
        return secs, ok, "datetime"
    if pd.api.types.is_bool_dtype(s):
        return np.zeros(len(s), np.int64), np.zeros(len(s), bool), "s"
    if pd.api.types.is_numeric_dtype(s):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        unit = _auto_unit(v) if time_unit == "auto" else time_unit
        secs, ok = _epoch_seconds(v, unit)
        return secs, ok, unit
    # text or objects: numbers are epochs, the rest date-times
    num = pd.to_numeric(s.map(lambda x: x.strip() if isinstance(x, str) else x), errors="coerce")
    v = num.to_numpy(dtype=np.float64, na_value=np.nan)
    is_num = np.isfinite(v)
    unit = (_auto_unit(v) if time_unit == "auto" else time_unit) if is_num.any() else "datetime"
    secs, ok = _epoch_seconds(np.where(is_num, v, np.nan), unit if is_num.any() else "s")
    rest = ~is_num & s.notna().to_numpy()
    if rest.any():
        dsecs, dok = _datetime_seconds(_to_datetime_utc(s[rest]))
        idx = np.flatnonzero(rest)
        secs[idx[dok]] = dsecs[dok]
        ok[idx[dok]] = True
        if not is_num.any():
            unit = "datetime"
        elif dok.any():
            unit = f"{unit}+datetime"
    return secs, ok, unit
