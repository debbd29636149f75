"""Temporal features, strictly from the past of each cut-off.

Two outputs, both built from a plain event frame (``user_id, item_id, timestamp`` in epoch
seconds, optional ``behavior``, ``value`` and ``category``; :func:`chronorec.datasets.temporal.event_frame` makes one
from an :class:`~chronorec.data.eventlog.EventLog`; the named datasets load from there too):

* :func:`activity_series`: per-entity activity at a frequency (``hour``, ``day``, ``week``) in long
  format: ``series_id, period, count, count_<behaviour>..., value_sum``.
* :func:`feature_table`: one row per (entity, cut-off) with trailing-window statistics, periodicity
  (dominant Fourier periods, hour-of-day and day-of-week profiles), trend (rolling linear-fit slope,
  a CUSUM change point) and recency / frequency (time since the last event of each type,
  inter-event gaps).

The leakage rule: every feature at cut-off ``t`` uses only events with ``timestamp < t``. Series
features (windows, Fourier, slopes, change points) use the complete periods that end at or before
``t``; recency, gap and profile features use the raw events before ``t``.

Periods are aligned in UTC shifted by ``utc_offset_hours`` (e.g. ``8`` for Beijing time), so that
days start at local midnight; weeks start on Monday.

Everything is vectorised with numpy / pandas: the entity x period x behaviour count cube is built
once, and each cut-off is a slice of it plus one pass over the events before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.datasets.temporal import CATEGORY, event_frame
from chronorec.errors import ConfigError, DataError
from chronorec.temporal.signals import change_points, cusum_change_point, dominant_periods, rolling_slope

PERIOD_SECONDS = {"hour": 3600, "day": 86400, "week": 7 * 86400}
_MONDAY = 4 * 86400  # 1970-01-05 (a Monday) is 4 days after the epoch

__all__ = [
    "CATEGORY",
    "PERIOD_SECONDS",
    "PeriodGrid",
    "activity_series",
    "change_points",
    "cusum_change_point",
    "dominant_periods",
    "default_cutoffs",
    "event_frame",
    "feature_table",
    "rolling_slope",
]


# ----------------------------------------------------------------------------- period grid
@dataclass(frozen=True)
class PeriodGrid:
    """Regular periods: period ``p`` covers local seconds ``[origin + p*step, origin + (p+1)*step)``.

    ``origin`` is in local seconds (UTC + ``offset``); :meth:`start_utc` gives the UTC epoch start.
    """

    freq: str
    step: int
    offset: int  # seconds added to UTC to get local time
    origin: int  # local seconds, aligned to the frequency
    n_periods: int

    @classmethod
    def cover(
        cls, timestamps: np.ndarray, *, freq: str = "day", utc_offset_hours: float = 0.0, end: int | None = None
    ) -> "PeriodGrid":
        """The smallest aligned grid covering ``timestamps`` (and the UTC time ``end``, if given)."""
        step = period_seconds(freq)
        offset = int(round(utc_offset_hours * 3600))
        ts = np.asarray(timestamps, dtype=np.int64)
        if ts.size == 0:
            raise DataError("no events to build periods from")
        lo = int(ts.min()) + offset
        hi = max(int(ts.max()) + offset, (end + offset - 1) if end is not None else -(2**62))
        shift = _MONDAY if freq == "week" else 0
        origin = (lo - shift) // step * step + shift
        n = (hi - origin) // step + 1
        return cls(freq=freq, step=step, offset=offset, origin=origin, n_periods=int(n))

    def index(self, timestamps: np.ndarray) -> np.ndarray:
        """Period index of each UTC timestamp (may be < 0 or >= n_periods outside the grid)."""
        return (np.asarray(timestamps, dtype=np.int64) + self.offset - self.origin) // self.step

    def start_utc(self, p: np.ndarray | int) -> np.ndarray:
        """UTC epoch seconds at which period ``p`` starts."""
        return self.origin - self.offset + np.asarray(p, dtype=np.int64) * self.step

    def labels(self, p: np.ndarray | None = None) -> pd.DatetimeIndex:
        """Local (naive) start time of each period, as datetimes."""
        p = np.arange(self.n_periods) if p is None else np.asarray(p)
        return pd.to_datetime(self.origin + p * self.step, unit="s")

    def complete_before(self, t: int) -> int:
        """Number of leading periods that end at or before the UTC time ``t``."""
        return int(np.clip((t + self.offset - self.origin) // self.step, 0, self.n_periods))


def period_seconds(freq: str) -> int:
    """The length of a period: ``hour``, ``day``, ``week``, or a duration such as ``5m`` or ``2h``."""
    if freq in PERIOD_SECONDS:
        return PERIOD_SECONDS[freq]
    from chronorec.temporal.durations import parse_duration

    try:
        return parse_duration(freq, name="freq")
    except ConfigError:
        raise ConfigError(
            f"freq must be one of {', '.join(PERIOD_SECONDS)} or a duration such as 5m or 2h (got {freq!r})"
        ) from None


def _behaviours(df: pd.DataFrame) -> list[str]:
    if C.BEHAVIOR not in df.columns:
        return []
    return sorted(pd.unique(df[C.BEHAVIOR].astype(str)).tolist())


def _count_cube(
    codes: np.ndarray, periods: np.ndarray, bcodes: np.ndarray, n_ent: int, n_per: int, n_b: int
) -> np.ndarray:
    """(entities, periods, behaviours) event counts (behaviour axis of size 1 when there is none)."""
    flat = (codes * n_per + periods) * n_b + bcodes
    return np.bincount(flat, minlength=n_ent * n_per * n_b).reshape(n_ent, n_per, n_b).astype(np.float64)


# ----------------------------------------------------------------------------- series
def activity_series(
    events: pd.DataFrame,
    *,
    entity: str = C.USER,
    freq: str = "day",
    utc_offset_hours: float = 0.0,
    value_col: str | None = C.VALUE,
    dense: bool = True,
) -> pd.DataFrame:
    """Per-entity activity per period in long format.

    Columns: ``series_id`` (the entity id), ``period`` (local start time), ``count`` (all events),
    ``count_<behaviour>`` for each behaviour type, and ``value_sum`` when ``value_col`` exists.
    With ``dense`` every entity gets every period of the common grid from the period of its first
    event on (zeros where inactive; none before its first event, when it did not exist yet, so a
    forecast does not see years of zeros before an item was listed); otherwise only (entity,
    period) pairs with events are listed.
    """
    df = event_frame(events)
    if entity not in df.columns:
        raise ConfigError(f"entity column {entity!r} not in the events (has {list(df.columns)})")
    grid = PeriodGrid.cover(df[C.TIME].to_numpy(), freq=freq, utc_offset_hours=utc_offset_hours)
    p = grid.index(df[C.TIME].to_numpy())
    codes, uniq = pd.factorize(df[entity], sort=True)
    behs = _behaviours(df)
    frame = pd.DataFrame({"series_id": codes, "p": p})
    frame["count"] = 1
    if behs:
        b = pd.Categorical(df[C.BEHAVIOR], categories=behs)
        for i, name in enumerate(behs):
            frame[f"count_{name}"] = (b.codes == i).astype(np.int64)
    has_value = value_col is not None and value_col in df.columns
    if has_value:
        frame["value_sum"] = df[value_col].to_numpy(dtype=np.float64)
    agg = frame.groupby(["series_id", "p"], sort=True).sum()
    if dense:
        first = np.full(len(uniq), grid.n_periods, np.int64)
        np.minimum.at(first, codes, p)
        n = grid.n_periods - first
        ent = np.repeat(np.arange(len(uniq)), n)
        per = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(first, n)
        full = pd.MultiIndex.from_arrays([ent, per], names=["series_id", "p"])
        agg = agg.reindex(full, fill_value=0)
    agg = agg.reset_index()
    out = pd.DataFrame({"series_id": np.asarray(uniq)[agg["series_id"].to_numpy()], "period": grid.labels(agg["p"])})
    for col in agg.columns[2:]:
        out[col] = agg[col].to_numpy()
    return out


# ----------------------------------------------------------------------------- series statistics
def _to_seconds(t: Any) -> int:
    if isinstance(t, (int, np.integer)):
        return int(t)
    if isinstance(t, str) and t.lstrip("-").isdigit():
        return int(t)
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.timestamp())


def default_cutoffs(
    timestamps: np.ndarray, *, freq: str = "day", utc_offset_hours: float = 0.0, every: int = 1, min_history: int = 1
) -> np.ndarray:
    """Period boundaries (UTC seconds) from ``min_history`` periods after the first event to the end of
    the last period, every ``every`` periods."""
    grid = PeriodGrid.cover(timestamps, freq=freq, utc_offset_hours=utc_offset_hours)
    ps = np.arange(max(min_history, 1), grid.n_periods + 1, max(every, 1))
    return grid.start_utc(ps)


def feature_table(
    events: pd.DataFrame,
    *,
    entity: str = C.USER,
    cutoffs: Sequence[Any] | None = None,
    freq: str = "day",
    utc_offset_hours: float = 0.0,
    windows: Sequence[int] = (1, 7, 28),
    n_fourier: int = 3,
    fourier_window: int | None = None,
    slope_windows: Sequence[int] | None = None,
    profiles: bool = True,
    value_col: str | None = C.VALUE,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per (entity, cut-off) for entities with at least one event before the cut-off.

    Args:
        events: event frame (see :func:`event_frame`).
        entity: the entity column (``user_id``, ``item_id``, ``category``, ...).
        cutoffs: cut-off times (epoch seconds, ISO text or timestamps; UTC). Default: every period
            boundary after the first period (:func:`default_cutoffs`).
        freq: period length for the series features: ``hour``, ``day`` or ``week``.
        utc_offset_hours: local time offset used for period alignment and the profiles.
        windows: trailing windows in periods for count / mean / std / min / max / shares.
        n_fourier: number of dominant Fourier components kept.
        fourier_window: use at most this many trailing periods for the Fourier transform (default all).
        slope_windows: windows of the rolling linear-fit slope (default: the windows >= 3, or 3).
        profiles: add hour-of-day (``hod_00``..``hod_23``) and day-of-week (``dow_0`` = Monday ..)
            shares of the events before the cut-off.
        value_col: summed in each window when present.
        progress: show a tqdm bar over cut-offs.

    Columns: ``entity_id``, ``cutoff`` (UTC epoch seconds), ``cutoff_time`` (UTC datetime), then
    ``n_events``, ``n_<b>``, ``w{w}_count|mean|std|min|max|share_<b>|value``,
    ``fft{i}_period|amp|phase``, ``slope_w{w}``, ``cp_index_from_end``, ``cp_shift``, ``cp_stat``,
    ``hours_since_last``, ``hours_since_last_<b>``, ``hours_since_first``, ``gap_mean_h``,
    ``gap_std_h``, ``gap_max_h``, ``gap_last_h``, ``active_periods``, profile shares.
    """
    from tqdm.auto import tqdm

    df = event_frame(events)
    if entity not in df.columns:
        raise ConfigError(f"entity column {entity!r} not in the events (has {list(df.columns)})")
    ts_all = df[C.TIME].to_numpy()
    cut = (
        default_cutoffs(ts_all, freq=freq, utc_offset_hours=utc_offset_hours)
        if cutoffs is None
        else np.array(sorted({_to_seconds(t) for t in cutoffs}), dtype=np.int64)
    )
    grid = PeriodGrid.cover(
        ts_all, freq=freq, utc_offset_hours=utc_offset_hours, end=int(cut.max()) if len(cut) else None
    )
    cube = _EntityCube(df, entity, grid, value_col)
    spec = _SeriesSpec(
        windows=tuple(windows),
        n_fourier=n_fourier,
        fourier_window=fourier_window,
        slope_windows=tuple(slope_windows)
        if slope_windows is not None
        else tuple(w for w in windows if w >= 3) or (3,),
    )
    rows = []
    for t in tqdm(cut, desc="features", disable=not progress, leave=False):
        out = cube.features_at(int(t), spec, profiles=profiles)
        if out is not None:
            rows.append(pd.DataFrame(out))
    if not rows:
        return pd.DataFrame(columns=["entity_id", "cutoff"])
    table = pd.concat(rows, ignore_index=True)
    table.insert(2, "cutoff_time", pd.to_datetime(table["cutoff"], unit="s"))
    return table


@dataclass(frozen=True)
class _SeriesSpec:
    windows: tuple[int, ...]
    n_fourier: int
    fourier_window: int | None
    slope_windows: tuple[int, ...]


class _EntityCube:
    """Counts per (entity, period, behaviour) and the events sorted by (entity, time): everything a
    cut-off's features are computed from, each family of features in a method of its own."""

    def __init__(self, df: pd.DataFrame, entity: str, grid: PeriodGrid, value_col: str | None):
        ts_all = df[C.TIME].to_numpy()
        codes, self.uniq = pd.factorize(df[entity], sort=True)
        self.n_ent = len(self.uniq)
        self.behs = _behaviours(df)
        bcodes = (
            pd.Categorical(df[C.BEHAVIOR], categories=self.behs).codes.astype(np.int64)
            if self.behs
            else np.zeros(len(df), np.int64)
        )
        self.n_b = max(len(self.behs), 1)
        self.grid = grid
        per = grid.index(ts_all)
        self.cube = _count_cube(codes, per, bcodes, self.n_ent, grid.n_periods, self.n_b)
        self.total = self.cube.sum(-1)  # (entities, periods)
        self.vcube = None
        if value_col is not None and value_col in df.columns:
            flat = np.bincount(
                codes * grid.n_periods + per,
                weights=df[value_col].to_numpy(np.float64),
                minlength=self.n_ent * grid.n_periods,
            )
            self.vcube = flat.reshape(self.n_ent, grid.n_periods)
        # events sorted by (entity, time) for the raw-event features
        order = np.lexsort((np.arange(len(df)), ts_all, codes))
        self.e_code, self.e_ts, self.e_b = codes[order], ts_all[order], bcodes[order]
        local = self.e_ts + grid.offset
        self.e_hour = (local // 3600) % 24
        self.e_dow = ((local // 86400) + 3) % 7  # 1970-01-01 was a Thursday (3 with Monday = 0)

    def features_at(self, t: int, spec: _SeriesSpec, *, profiles: bool) -> dict[str, np.ndarray] | None:
        """The feature columns of every entity with an event before ``t`` (None if there is none)."""
        m = self.e_ts < t
        if not m.any():
            return None
        ec, ets, eb = self.e_code[m], self.e_ts[m], self.e_b[m]
        n_ev = np.bincount(ec, minlength=self.n_ent)
        keep = np.flatnonzero(n_ev > 0)
        out: dict[str, np.ndarray] = {"entity_id": np.asarray(self.uniq)[keep]}
        out["cutoff"] = np.full(len(keep), t, dtype=np.int64)
        out["n_events"] = n_ev[keep].astype(np.float64)
        nb = np.bincount(ec * self.n_b + eb, minlength=self.n_ent * self.n_b).reshape(self.n_ent, self.n_b)
        for i, b in enumerate(self.behs):
            out[f"n_{b}"] = nb[keep, i].astype(np.float64)
        k = self.grid.complete_before(t)
        self._windows(out, keep, k, spec.windows)
        self._shape(out, keep, k, spec)
        self._recency(out, keep, t, ec, ets, eb)
        self._gaps(out, keep, ec, ets)
        if profiles:
            self._profiles(out, keep, ec, m, n_ev)
        return out

    def _windows(self, out: dict, keep: np.ndarray, k: int, windows: tuple[int, ...]) -> None:
        """Count / mean / std / min / max, behaviour shares and value over trailing complete periods."""
        tot = self.total[keep, :k]
        cb = self.cube[keep, :k]
        for w in windows:
            seg = tot[:, max(k - w, 0) :]
            cnt = seg.sum(1)
            if seg.shape[1]:
                out[f"w{w}_count"] = cnt
                # windows reaching before the first period are padded with zeros (inactive)
                padded = np.concatenate([np.zeros((len(keep), w - seg.shape[1])), seg], 1) if seg.shape[1] < w else seg
                out[f"w{w}_mean"] = padded.mean(1)
                out[f"w{w}_std"] = padded.std(1)
                out[f"w{w}_min"] = padded.min(1)
                out[f"w{w}_max"] = padded.max(1)
            else:
                for s in ("count", "mean", "std", "min", "max"):
                    out[f"w{w}_{s}"] = np.zeros(len(keep))
            bsum = cb[:, max(k - w, 0) :].sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                for i, b in enumerate(self.behs):
                    out[f"w{w}_share_{b}"] = np.where(cnt > 0, bsum[:, i] / np.maximum(cnt, 1), np.nan)
            if self.vcube is not None:
                out[f"w{w}_value"] = self.vcube[keep, max(k - w, 0) : k].sum(1)

    def _shape(self, out: dict, keep: np.ndarray, k: int, spec: _SeriesSpec) -> None:
        """Periodicity (dominant Fourier components), trend (rolling slopes) and change point."""
        tot = self.total[keep, :k]
        fw = tot if spec.fourier_window is None else tot[:, -spec.fourier_window :]
        per_, amp, ph = dominant_periods(fw, k=spec.n_fourier)
        for i in range(spec.n_fourier):
            out[f"fft{i + 1}_period"] = per_[:, i]
            out[f"fft{i + 1}_amp"] = amp[:, i]
            out[f"fft{i + 1}_phase"] = ph[:, i]
        for w in spec.slope_windows:
            out[f"slope_w{w}"] = rolling_slope(tot, w) if k >= 2 else np.full(len(keep), np.nan)
        idx, shift, stat = cusum_change_point(tot)
        out["cp_index_from_end"] = k - idx if k >= 2 else np.full(len(keep), np.nan)
        out["cp_shift"] = shift
        out["cp_stat"] = stat
        out["active_periods"] = (tot > 0).sum(1).astype(np.float64)

    def _recency(self, out: dict, keep: np.ndarray, t: int, ec: np.ndarray, ets: np.ndarray, eb: np.ndarray) -> None:
        """Hours since the last and first event, and since the last event of each behaviour."""
        last = np.full(self.n_ent, np.nan)
        first = np.full(self.n_ent, np.nan)
        bounds = np.flatnonzero(np.r_[True, ec[1:] != ec[:-1]])
        ends = np.r_[bounds[1:], len(ec)] - 1
        last[ec[ends]] = ets[ends]
        first[ec[bounds]] = ets[bounds]
        out["hours_since_last"] = (t - last[keep]) / 3600.0
        out["hours_since_first"] = (t - first[keep]) / 3600.0
        for i, b in enumerate(self.behs):
            sel = eb == i
            lb = np.full(self.n_ent, np.nan)
            if sel.any():
                lb_s = pd.Series(ets[sel]).groupby(ec[sel]).max()
                lb[lb_s.index.to_numpy()] = lb_s.to_numpy()
            out[f"hours_since_last_{b}"] = (t - lb[keep]) / 3600.0

    def _gaps(self, out: dict, keep: np.ndarray, ec: np.ndarray, ets: np.ndarray) -> None:
        """Mean, std, max and last gap in hours between an entity's consecutive events."""
        n_ent = self.n_ent
        same = ec[1:] == ec[:-1]
        gaps = (np.diff(ets) / 3600.0)[same]
        gcode = ec[1:][same]
        gn = np.bincount(gcode, minlength=n_ent).astype(np.float64)
        gs = np.bincount(gcode, weights=gaps, minlength=n_ent)
        gq = np.bincount(gcode, weights=gaps * gaps, minlength=n_ent)
        with np.errstate(invalid="ignore", divide="ignore"):
            gmean = np.where(gn > 0, gs / gn, np.nan)
            gstd = np.where(gn > 0, np.sqrt(np.maximum(gq / gn - gmean**2, 0.0)), np.nan)
        gmax = np.full(n_ent, np.nan)
        glast = np.full(n_ent, np.nan)
        if len(gaps):
            gm = pd.Series(gaps).groupby(gcode).max()
            gmax[gm.index.to_numpy()] = gm.to_numpy()
            gl = pd.Series(gaps).groupby(gcode).last()
            glast[gl.index.to_numpy()] = gl.to_numpy()
        out["gap_mean_h"], out["gap_std_h"] = gmean[keep], gstd[keep]
        out["gap_max_h"], out["gap_last_h"] = gmax[keep], glast[keep]

    def _profiles(self, out: dict, keep: np.ndarray, ec: np.ndarray, m: np.ndarray, n_ev: np.ndarray) -> None:
        """Hour-of-day and day-of-week shares of the events before the cut-off (local time)."""
        n_ent = self.n_ent
        hod = np.bincount(ec * 24 + self.e_hour[m], minlength=n_ent * 24).reshape(n_ent, 24)[keep]
        dow = np.bincount(ec * 7 + self.e_dow[m], minlength=n_ent * 7).reshape(n_ent, 7)[keep]
        denom = n_ev[keep][:, None].astype(np.float64)
        for h in range(24):
            out[f"hod_{h:02d}"] = hod[:, h] / denom[:, 0]
        for d in range(7):
            out[f"dow_{d}"] = dow[:, d] / denom[:, 0]
