"""Timestamps of any common form to int64 UTC epoch seconds, with a reason for every row that fails.

Rules (the ingest guide and ``docs/reliability.md`` describe them for users):

* **Numeric epochs, unit per value.** With ``time_unit="auto"`` each number's unit comes from its
  own magnitude: below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else
  nanoseconds. The bands are a factor of 100 or more apart for every date from 1973 to 2262, so a
  file mixing seconds and milliseconds is read right row by row (the report counts the rows of
  each unit and the log says so). A forced unit (``"s"``, ``"ms"``, ``"us"``, ``"ns"``) applies to
  every value.
* **Date-time text** (ISO-8601 first, then any other common form) and datetime values; naive
  times are taken as UTC, or in ``timezone`` when one is given.
* **Range:** the result must lie between 1677-09-21 and 2262-04-11 (the span of nanosecond
  datetimes, which the rest of the package and the service use); anything outside is rejected
  as ``timestamp out of range``, never an exception.
* **Length:** text longer than :data:`MAX_TIME_TEXT` characters is rejected as ``timestamp too
  long`` before any parser sees it (a megabyte-long field would otherwise cost minutes).
* **Outliers** (kept, but counted with examples in the report; rejectable on request): negative
  values, values before 1990 and values in the future (more than a day after the ingest).
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from chronorec.errors import IngestError

__all__ = [
    "MAX_EPOCH_SECONDS",
    "MAX_TIME_TEXT",
    "MIN_EPOCH_SECONDS",
    "OUTLIER_KINDS",
    "SECONDS_BELOW",
    "TIME_REASON_FIX",
    "TIME_UNITS",
    "TimeParse",
    "parse_time_column",
    "parse_time_values",
    "parse_timestamps",
    "time_checks",
]

logger = logging.getLogger(__name__)

TIME_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
MAX_TIME_TEXT = 64
"""Longest timestamp text looked at; longer text is rejected unparsed."""
MIN_EPOCH_SECONDS = -9_223_372_036
"""Earliest timestamp kept (1677-09-21, the start of nanosecond datetimes)."""
MAX_EPOCH_SECONDS = 9_223_372_035
"""Latest timestamp kept (2262-04-11, the end of nanosecond datetimes; the service uses the same)."""
SECONDS_BELOW = 10**11
"""Numeric epochs below this (in magnitude) are seconds; then milliseconds below 1e14, microseconds
below 1e17, else nanoseconds (the ``"auto"`` unit rule)."""
YEAR_1990 = 631_152_000
FUTURE_SLACK_SECONDS = 86_400
OUTLIER_KINDS = ("negative timestamp", "timestamp before 1990", "future timestamp")
"""Reasons of the rows that are kept but reported (and rejected with ``reject_time_outliers``)."""

_BANDS = ((float(SECONDS_BELOW), "s"), (1e14, "ms"), (1e17, "us"))
# a zone designator: Z / UTC / GMT, or an offset right after a time of day (not the day of a date)
_TZ_SUFFIX = re.compile(
    r"(?:z|utc|gmt|(?:\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?|t\d{4,6}(?:[.,]\d+)?)\s*[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE
)


@dataclass
class TimeParse:
    """A parsed time column: seconds and, per row, whether and why it failed."""

    seconds: np.ndarray  # int64 UTC epoch seconds (0 where not ok)
    ok: np.ndarray  # parsed and in range
    unit: str  # "s", "ms", "s+ms", "datetime", "s+datetime", ...
    unit_counts: dict[str, int] = field(default_factory=dict)  # rows read in each unit
    bad: np.ndarray | None = None  # present but not a timestamp
    too_long: np.ndarray | None = None  # text over MAX_TIME_TEXT characters
    out_of_range: np.ndarray | None = None  # a date, but outside 1677-09-21 .. 2262-04-11

    def rejects(self) -> list[tuple[str, np.ndarray]]:
        """``(reason, mask)`` of the rows that cannot be kept (missing values are not among them)."""
        n = len(self.ok)
        none = np.zeros(n, dtype=bool)
        return [
            ("bad timestamp", none if self.bad is None else self.bad),
            ("timestamp too long", none if self.too_long is None else self.too_long),
            ("timestamp out of range", none if self.out_of_range is None else self.out_of_range),
        ]

    def outliers(self, now: float | None = None) -> list[tuple[str, np.ndarray]]:
        """``(kind, mask)`` of parsed rows that are negative, before 1990 or in the future."""
        now = time.time() if now is None else now
        s, ok = self.seconds, self.ok
        return [
            (OUTLIER_KINDS[0], ok & (s < 0)),
            (OUTLIER_KINDS[1], ok & (s >= 0) & (s < YEAR_1990)),
            (OUTLIER_KINDS[2], ok & (s > int(now) + FUTURE_SLACK_SECONDS)),
        ]


def _band_units(mag: np.ndarray) -> np.ndarray:
    """Index into ``("s", "ms", "us", "ns")`` of each magnitude's band."""
    return np.searchsorted(np.array([b for b, _ in _BANDS]), mag, side="right")


def _epochs(v: np.ndarray, time_unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Numeric epochs (int64, or float64 with NaN = missing) to seconds.

    Returns ``(seconds, ok, out_of_range, rows per unit)``; non-finite values are neither ok nor
    out of range (the caller counts them as bad or missing).
    """
    n = len(v)
    secs = np.zeros(n, dtype=np.int64)
    fv = v.astype(np.float64, copy=False)
    finite = np.isfinite(fv)
    names = tuple(TIME_UNITS)
    if time_unit == "auto":
        unit_idx = _band_units(np.abs(np.where(finite, fv, 0.0)))
    else:
        unit_idx = np.full(n, names.index(time_unit))
    scale = np.array([TIME_UNITS[u] for u in names], dtype=np.int64)[unit_idx]
    # range check in float first (no int64 overflow), exact floor division for integers
    approx = np.floor(np.where(finite, fv, 0.0) / scale)
    in_range = finite & (approx >= MIN_EPOCH_SECONDS - 1) & (approx <= MAX_EPOCH_SECONDS + 1)
    if np.issubdtype(v.dtype, np.integer):
        secs[in_range] = v[in_range] // scale[in_range]
    else:
        secs[in_range] = approx[in_range].astype(np.int64)
    in_range &= (secs >= MIN_EPOCH_SECONDS) & (secs <= MAX_EPOCH_SECONDS)
    secs[~in_range] = 0
    counts = {names[i]: int(c) for i, c in enumerate(np.bincount(unit_idx[finite], minlength=4)) if c}
    return secs, in_range, finite & ~in_range, counts


def _datetime_seconds(dt: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UTC datetimes (any resolution) to floored seconds: ``(seconds, ok, out_of_range)``."""
    naive = dt.dt.tz_convert("UTC").dt.tz_localize(None) if getattr(dt.dt, "tz", None) is not None else dt
    raw = naive.to_numpy()
    present = ~np.isnat(raw)
    secs = raw.astype("datetime64[s]").astype(np.int64)  # numpy floors to the coarser unit
    in_range = present & (secs >= MIN_EPOCH_SECONDS) & (secs <= MAX_EPOCH_SECONDS)
    secs = np.where(in_range, secs, 0)
    return secs, in_range, present & ~in_range


def _localize(dt: pd.Series, naive: np.ndarray, timezone: str | None) -> pd.Series:
    """``dt`` (UTC, naive values read as UTC) with the ``naive`` rows re-read as ``timezone`` wall time."""
    if timezone is None or not naive.any():
        return dt
    wall = dt[naive].dt.tz_localize(None)
    try:
        local = wall.dt.tz_localize(timezone, ambiguous=np.zeros(len(wall), bool), nonexistent="shift_forward")
    except Exception as e:  # unknown zone names raise several types
        raise IngestError(f"unknown timezone {timezone!r} ({e}); use an IANA name such as 'Europe/Paris'") from e
    out = dt.copy()
    out[naive] = local.dt.tz_convert("UTC")
    return out


def _text_datetimes(values: pd.Series, timezone: str | None) -> pd.Series:
    """Date-time text / objects to UTC; failures are NaT. Values with a zone and values without are
    read apart: in one ``pd.to_datetime`` call pandas reads a naive time that follows one with a
    numeric offset in that offset, where a naive time is UTC (or ``timezone``) here."""
    aware = _aware_mask(values)
    if not aware.any() or aware.all():
        return _uniform_datetimes(values, timezone, bool(aware.any()))
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    for part, zoned in ((aware, True), (~aware, False)):
        out[part] = _uniform_datetimes(values[part], timezone, zoned)
    return out


def _uniform_datetimes(values: pd.Series, timezone: str | None, zoned: bool) -> pd.Series:
    """:func:`_text_datetimes` of values that all carry a zone (``zoned``) or none does: ISO-8601 first,
    then the format inferred from the first remaining value, then any form, each pass only on what the
    last one missed; naive values are then re-read in ``timezone``."""
    out = _to_utc(values, "ISO8601").copy()  # a copy: pandas 2 discards writes into the .dt view
    for fmt in (None, "mixed"):
        retry = out.isna().to_numpy()
        if not retry.any():
            break
        out[retry] = _to_utc(values[retry], fmt)
    retry = out.isna().to_numpy() & values.notna().to_numpy()
    if retry.any():  # pandas 2 parses in nanoseconds and coerces dates past 2262 to NaT: one at a time
        out[retry] = pd.Series([_one(x) for x in values[retry]], index=values.index[retry], dtype=out.dtype)
    if timezone is None or zoned:
        return out
    return _localize(out, np.ones(len(out), dtype=bool), timezone)


def _to_utc(values: pd.Series, fmt: str | None) -> pd.Series:
    """``pd.to_datetime`` in microseconds (years 1-9999 fit); one value at a time if pandas raises."""
    kwargs = {} if fmt is None else {"format": fmt}
    try:
        with warnings.catch_warnings():  # "could not infer format": the next pass is the fallback
            warnings.simplefilter("ignore", UserWarning)
            return pd.to_datetime(values, utc=True, errors="coerce", **kwargs).dt.as_unit("us")
    except (ValueError, TypeError, OverflowError):  # pandas' out-of-bounds and parser errors
        return pd.Series([_one(x) for x in values], index=values.index, dtype="datetime64[us, UTC]")


def _one(x: object) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(x)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    except (ValueError, TypeError, OverflowError):
        return pd.NaT


def _aware_mask(values: pd.Series) -> np.ndarray:
    """Which values carry a zone (:func:`_is_aware`); plain text is matched by Arrow's regex engine,
    six times faster than a Python loop on a million rows."""
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        text = values.astype("string[pyarrow]").str.strip()
        return text.str.contains("(?i)" + _TZ_SUFFIX.pattern, regex=True, na=False).to_numpy(dtype=bool)
    return np.array([_is_aware(x) for x in values], dtype=bool)


def _is_aware(x: object) -> bool:
    if isinstance(x, str):
        return bool(_TZ_SUFFIX.search(x.strip()))
    return getattr(x, "tzinfo", None) is not None


def _classify(s: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(stripped values, present, too long, number-like, scalar)`` of a text / object column."""
    vals = s.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):  # plain text: vectorised
        stripped = s.astype(object).str.strip()
        present = stripped.notna().to_numpy() & (stripped != "").to_numpy()
        too_long = s.astype(object).str.len().to_numpy(dtype=np.float64, na_value=0.0) > MAX_TIME_TEXT
        return stripped, present, too_long, present.copy(), present.copy()
    stripped = pd.Series([x.strip() if isinstance(x, str) else x for x in vals], dtype=object)
    present = s.notna().to_numpy() & np.array([not (isinstance(x, str) and not x.strip()) for x in vals], dtype=bool)
    too_long = np.array([isinstance(x, str) and len(x) > MAX_TIME_TEXT for x in vals], dtype=bool)
    numberlike = np.array([isinstance(x, (str, int, float, np.number)) and not isinstance(x, bool) for x in vals])
    datelike = np.array([hasattr(x, "year") or isinstance(x, np.datetime64) for x in vals], dtype=bool)
    return stripped, present, too_long, numberlike, numberlike | datelike  # lists, dicts, bools: not scalar


def _object_column(s: pd.Series, time_unit: str, timezone: str | None) -> TimeParse:
    """Text or mixed objects: numbers are epochs, the rest date-times; every row gets a verdict."""
    stripped, present, too_long, numberlike, scalar = _classify(s)
    candidates = present & ~too_long & scalar
    num = pd.to_numeric(stripped.where(candidates & numberlike), errors="coerce")
    num = num.to_numpy(dtype=np.float64, na_value=np.nan)
    is_num = ~np.isnan(num)  # inf included: a number, but not a time
    secs, ok, out_of_range, counts = _epochs(num, time_unit)
    rest = candidates & ~is_num
    if rest.any():
        dsecs, dok, drange = _datetime_seconds(_text_datetimes(stripped[rest].reset_index(drop=True), timezone))
        idx = np.flatnonzero(rest)
        secs[idx], ok[idx], out_of_range[idx] = dsecs, dok, drange
        if dok.any() or drange.any():
            counts["datetime"] = int(dok.sum() + drange.sum())
    bad = present & ~too_long & ~ok & ~out_of_range
    unit = "+".join(counts) if counts else ("s" if time_unit == "auto" else time_unit)
    return TimeParse(secs, ok, unit, counts, bad, too_long, out_of_range)


def parse_time_column(s: pd.Series, *, time_unit: str = "auto", timezone: str | None = None) -> TimeParse:
    """Convert a timestamp column to int64 UTC epoch seconds, with a verdict for every row.

    See the module docstring for the rules. Missing values (None, NaN, blank text) are neither
    ok nor rejected here: the caller reports them as missing.
    """
    if time_unit not in ("auto", *TIME_UNITS):
        raise IngestError(f"time_unit must be 'auto', 's', 'ms', 'us' or 'ns', not {time_unit!r}")
    s = s.reset_index(drop=True)
    n = len(s)
    none = np.zeros(n, dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(s):
        aware = getattr(s.dt, "tz", None) is not None
        dt = s.dt.tz_convert("UTC") if aware else s.dt.tz_localize("UTC")
        if not aware:
            dt = _localize(dt, np.ones(n, dtype=bool), timezone)
        secs, ok, out_of_range = _datetime_seconds(dt)
        return TimeParse(
            secs, ok, "datetime", {"datetime": int(ok.sum() + out_of_range.sum())}, none, none, out_of_range
        )
    if pd.api.types.is_bool_dtype(s):
        return TimeParse(np.zeros(n, np.int64), none, "s", {}, s.notna().to_numpy(), none, none)
    if pd.api.types.is_numeric_dtype(s):
        if pd.api.types.is_integer_dtype(s) and not s.isna().any():
            v = s.to_numpy(dtype=np.int64)
        else:
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        secs, ok, out_of_range, counts = _epochs(v, time_unit)
        bad = s.notna().to_numpy() & ~ok & ~out_of_range  # inf
        unit = "+".join(counts) if counts else ("s" if time_unit == "auto" else time_unit)
        return TimeParse(secs, ok, unit, counts, bad, none, out_of_range)
    return _object_column(s, time_unit, timezone)


def parse_timestamps(
    s: pd.Series, *, time_unit: str = "auto", timezone: str | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Convert a timestamp column to int64 UTC epoch seconds: ``(seconds, ok mask, unit used)``.

    Accepts numeric epochs (``time_unit="auto"`` decides the unit of each value from its
    magnitude), numeric text, ISO-8601 / other date-time text (naive times are UTC, or in
    ``timezone``) and datetime columns. Rows where ``ok`` is False are missing, unparseable, too
    long or out of range (their seconds are 0); :func:`parse_time_column` says which.
    """
    tp = parse_time_column(s, time_unit=time_unit, timezone=timezone)
    return tp.seconds, tp.ok, tp.unit


def parse_time_values(values: Sequence[Any], *, timezone: str | None = None) -> list[tuple[int | None, str]]:
    """Single timestamps (numbers, text, anything a JSON body holds) by the same rules as a column:
    ``(seconds, "")`` for each value read, ``(None, reason)`` for the others (a reason of
    :meth:`TimeParse.rejects`, or ``"missing timestamp"`` for None and blank text).

    Integers and floats are parsed as numeric columns of their own (exact integer division, as
    ingest reads an integer column), text with a zone and everything else as two text / object
    columns, so a value gets the verdict ingest gives it alone, whatever its neighbours (pandas 2.3
    reads a naive ISO time that follows one with a numeric offset in the same column in that
    offset). One call for many values: pandas' fixed cost is paid once per kind.
    """
    out: list[tuple[int | None, str]] = [(None, "missing timestamp")] * len(values)
    groups: dict[str, list[int]] = {"int": [], "float": [], "zoned": [], "object": []}
    for i, v in enumerate(values):
        if type(v) is int and 0 <= v <= MAX_EPOCH_SECONDS:  # plain epoch seconds, as a column reads them: no pandas
            out[i] = (v, "")
        elif type(v) is int and -(2**63) <= v < 2**63:
            groups["int"].append(i)
        elif type(v) is float:
            groups["float"].append(i)
        elif isinstance(v, str) and len(v) <= MAX_TIME_TEXT and _is_aware(v):
            groups["zoned"].append(i)
        elif v is not None:
            groups["object"].append(i)
    for kind, idx in groups.items():
        if not idx:
            continue
        dtype = {"int": "int64", "float": "float64"}.get(kind, object)
        tp = parse_time_column(pd.Series([values[i] for i in idx], dtype=dtype), timezone=timezone)
        rejects = tp.rejects()
        for row, i in enumerate(idx):
            if tp.ok[row]:
                out[i] = (int(tp.seconds[row]), "")
            else:
                out[i] = (None, next((reason for reason, m in rejects if m[row]), "missing timestamp"))
    return out


def time_checks(
    s: pd.Series,
    lines: np.ndarray,
    *,
    time_unit: str = "auto",
    timezone: str | None = None,
    reject_outliers: bool = False,
    report: Any = None,
    source: str = "",
    now: float | None = None,
) -> tuple[TimeParse, list[tuple[str, np.ndarray]]]:
    """Parse a time column for ingest: the parse and the ``(reason, mask)`` rows to reject.

    Fills ``report`` (an :class:`~chronorec.data.report.IngestReport`): ``time_unit``,
    ``time_units`` (rows per unit), ``time_outliers`` (rows per outlier kind) and
    ``time_outlier_examples`` (up to 5 ``{line, value, reason}``). Outliers are rejected only with
    ``reject_outliers``; otherwise they are kept and a warning names a few.
    """
    tp = parse_time_column(s, time_unit=time_unit, timezone=timezone)
    checks = tp.rejects()
    outliers = [(kind, m) for kind, m in tp.outliers(now) if m.any()]
    raw = s.reset_index(drop=True)
    examples = [
        {"line": int(lines[i]), "value": str(raw.iloc[i]), "reason": kind}
        for kind, m in outliers
        for i in np.flatnonzero(m)[:3]
    ][:5]
    if report is not None:
        report.time_unit = tp.unit
        report.time_units = dict(tp.unit_counts)
        report.time_outliers = {kind: int(m.sum()) for kind, m in outliers}
        report.time_outlier_examples = examples
    epoch_units = [u for u in tp.unit_counts if u in TIME_UNITS]
    if time_unit == "auto" and len(epoch_units) > 1:
        logger.warning(
            "%s: numeric timestamps in several units (%s); each value's unit was decided by its magnitude "
            "(pass --time-unit / time_unit= to force one)",
            source,
            ", ".join(f"{u}: {tp.unit_counts[u]:,} rows" for u in epoch_units),
        )
    if outliers and not reject_outliers:
        logger.warning(
            "%s: kept %s (e.g. %s); pass --reject-time-outliers / reject_time_outliers=True to reject them",
            source,
            ", ".join(f"{int(m.sum()):,} row{'s' * (int(m.sum()) != 1)} with a {kind}" for kind, m in outliers),
            "; ".join(f"line {e['line']}: {e['value']!r}" for e in examples[:3]),
        )
    if reject_outliers:
        checks += outliers
    return tp, checks


TIME_REASON_FIX = {
    "timestamp out of range": (
        "timestamps must lie between 1677-09-21 and 2262-04-11; check --time-unit (time_unit=) and "
        "--time-col (time_col=), currently {time_col!r}"
    ),
    "timestamp too long": "--time-col (time_col=) {time_col!r} holds long text, not timestamps; name the time column",
    **{
        k: "leave out --reject-time-outliers (reject_time_outliers=) to keep them, or check --time-unit"
        for k in OUTLIER_KINDS
    },
}
"""The fix an ingest error names when most rejected rows fail for one of these reasons."""
