"""The time scale of behaviour prediction: horizon, cut-off step and alignment, history, feature periods.

Every length is derived from the data's span unless given. With four days of data or more the
scale is the daily one the Taobao results were obtained with (horizon 1 day, a training cut-off every
6 hours, a day of history before the first, daily series features over 1, 7 and 28 days, recency
windows of 1, 6, 24 and 72 hours). A shorter log gets a horizon of about an eighth of its span,
rounded down to a round length (a 3-hour log: 15 minutes), and everything else follows the horizon:
cut-offs every H / 4 aligned to a round length, H of history first, periods of about H / 3 with
windows of 1, 3 and 12 periods, recency windows of H / 24, H / 4, H and 3H.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chronorec.errors import ConfigError, DataError
from chronorec.temporal.durations import NICE_BELOW_DAY as _NICE_BELOW_DAY
from chronorec.temporal.durations import format_duration, nice_duration, parse_duration

__all__ = [
    "DAILY_SPAN_S",
    "make_cutoffs",
    "TargetTimes",
    "TimeScale",
    "derive_time_scale",
    "recent_windows",
    "span_advice",
]

DAY = 86400
DAILY_SPAN_S = 4 * DAY  # from this span on, the daily scale
DAILY_RECENT_S = (3600, 6 * 3600, DAY, 3 * DAY)
_ALIGN = (60, 300, 900, 3600, DAY)
MAX_PERIODS = 20_000  # periods of the series features (their count cube is users x periods x types)
MAX_CUTOFFS = 5_000


@dataclass(frozen=True)
class TimeScale:
    """The lengths (seconds) of one behaviour-prediction run; ``windows`` in periods of ``freq``."""

    horizon_s: int
    step_s: int
    min_history_s: int
    align_s: int
    freq: str
    windows: tuple[int, ...]
    recent_s: tuple[int, ...]

    def describe(self) -> dict[str, object]:
        """The scale in words (what a run reports and a saved model keeps)."""
        return {
            "horizon": format_duration(self.horizon_s),
            "step": format_duration(self.step_s),
            "min_history": format_duration(self.min_history_s),
            "align": format_duration(self.align_s),
            "freq": self.freq,
            "windows": list(self.windows),
            "recent": [format_duration(s) for s in self.recent_s],
        }


def recent_windows(horizon_s: int) -> tuple[int, ...]:
    """The recency windows of the funnel features: 1, 6, 24 and 72 hours for a horizon of a day or
    more, else H / 24, H / 4, H and 3H (at least a second each)."""
    if horizon_s >= DAY:
        return DAILY_RECENT_S
    return tuple(max(int(horizon_s * f), 1) for f in (1 / 24, 1 / 4, 1, 3))


MIN_POSITIVES = {"train": 10, "validation": 3, "test": 3}


def _default_horizon(span_s: int, ts: np.ndarray, targets: TargetTimes | None, utc_offset_hours: float) -> int:
    """1 day on the daily scale; else the longest round length up to an eighth of the span whose
    training, validation and test windows hold at least :data:`MIN_POSITIVES` target events of users
    seen before the cut-off (REES46's 3 hours, dense only in their last 35 minutes: 5 minutes), or
    the eighth itself when none does."""
    first = nice_duration(span_s / 8)
    if span_s >= DAILY_SPAN_S:
        return DAY
    if targets is None:
        return first
    for h in sorted({n for n in _NICE_BELOW_DAY if n <= first and n >= 60}, reverse=True):
        try:
            cuts = make_cutoffs(
                ts,
                horizon_s=h,
                step_s=max(h // 4, 1),
                n_train=None,
                min_history_s=h,
                align_s=_align(h),
                utc_offset_hours=utc_offset_hours,
            )
        except DataError:
            continue
        if all(targets.positives(cuts[p], h) >= n for p, n in MIN_POSITIVES.items()):
            return h
    return first


@dataclass(frozen=True)
class TargetTimes:
    """The target events' times and, for each, the time of its user's first event."""

    at: np.ndarray
    user_first: np.ndarray

    def positives(self, cutoffs: Sequence[int], horizon_s: int) -> int:
        """Target events inside ``[t, t + H)`` of users with an event before ``t``, summed over ``cutoffs``."""
        return int(sum(((self.user_first < t) & (self.at >= t) & (self.at < t + horizon_s)).sum() for t in cutoffs))


def _align(h: int) -> int:
    return max(a for a in _ALIGN if a <= h) if h >= _ALIGN[0] else 1


def _freq_seconds(freq: str) -> int:
    from chronorec.temporal.features import period_seconds

    return period_seconds(freq)


def _windows(windows: Sequence[str | int] | None, freq_s: int, daily: bool, name: str = "windows") -> tuple[int, ...]:
    """Windows in periods: plain numbers are periods, durations are rounded up to whole periods."""
    if windows is None:
        return (1, 7, 28) if daily else (1, 3, 12)
    out = []
    for w in windows:
        text = str(w).strip()
        if text.isdigit():
            n = int(text)
        else:
            n = -(-parse_duration(text, name=name) // freq_s)
        if not 1 <= n <= MAX_PERIODS:
            raise ConfigError(f"{name} must be 1 to {MAX_PERIODS} periods of --freq, not {w!r}")
        out.append(n)
    return tuple(sorted(set(out)))


def derive_time_scale(  # noqa: PLR0913 - one keyword per length a run can be given
    timestamps: np.ndarray,
    *,
    horizon: str | float | None = None,
    step: str | float | None = None,
    min_history: str | float | None = None,
    freq: str | None = None,
    windows: Sequence[str | int] | None = None,
    targets: TargetTimes | None = None,
    utc_offset_hours: float = 0.0,
) -> TimeScale:
    """The lengths of a run on events at ``timestamps`` (UTC seconds): the given ones (durations;
    a plain number is hours, windows' plain numbers are periods) and the others from the span (and,
    below four days, from where the ``targets`` fall)."""
    ts = np.asarray(timestamps, dtype=np.int64)
    if ts.size == 0:
        raise DataError("no events")
    span = int(ts.max() - ts.min()) + 1
    if horizon is not None:
        h = parse_duration(horizon, name="--horizon")
    else:
        h = _default_horizon(span, ts, targets, utc_offset_hours)
    daily = h >= DAY
    st = parse_duration(step, name="--step") if step is not None else max(h // 4, 1)
    mh = parse_duration(min_history, name="--min-history") if min_history is not None else min(h, DAY)
    if freq is None:
        freq = "day" if daily else format_duration(nice_duration(h / 3))
    f_s = _freq_seconds(freq)
    n_periods = span // f_s + 2
    if n_periods > MAX_PERIODS:
        coarser = format_duration(nice_duration(span / (MAX_PERIODS / 2)))
        raise ConfigError(
            f"--freq {freq} cuts the data's {approx_duration(span)} into {n_periods} periods (at most "
            f"{MAX_PERIODS}): a --freq of {coarser} or longer"
        )
    return TimeScale(h, st, mh, _align(h), freq, _windows(windows, f_s, daily), recent_windows(h))


def span_advice(span_s: int, horizon_s: int, min_history_s: int, align_s: int) -> str:
    """What would fit the data: the test, validation and a training cut-off need about three horizons
    and the minimum history (plus up to one alignment length) inside the span."""
    need = format_duration(3 * horizon_s + min_history_s)
    text = (
        f"the data span {approx_duration(span_s)}, and --horizon {format_duration(horizon_s)} needs about 3 "
        f"horizons + --min-history {format_duration(min_history_s)} = {need}"
    )
    room = span_s - min_history_s - align_s
    if room >= 3 * 60:
        return f"{text}; try --horizon {format_duration(nice_duration(room / 3))} or less"
    h = nice_duration(span_s / 5)  # three horizons, the history and up to one alignment length
    return f"{text}; try --horizon {format_duration(h)} --min-history {format_duration(h)}"


def approx_duration(seconds: float) -> str:
    """A length for people: ``9.0d``, ``2.8h``, ``45m``, ``30s``."""
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds / 60:.0f}m" if seconds >= 120 else f"{int(seconds)}s"


def check_cost(n_cutoffs: int, n_users: int) -> None:
    """Refuse a run whose case table would not fit in memory (cut-offs x users above 20 million)."""
    if n_cutoffs > MAX_CUTOFFS or n_cutoffs * n_users > 20_000_000:
        raise ConfigError(
            f"{n_cutoffs} cut-offs x {n_users} users is too many cases: cap them with --train-cutoffs or "
            f"take a longer --step"
        )


def make_cutoffs(
    timestamps: np.ndarray,
    *,
    horizon_s: int,
    step_s: int | None = None,
    n_train: int | None = 6,
    test_cutoff: int | None = None,
    min_history_s: int = 86400,
    align_s: int = 86400,
    utc_offset_hours: float = 0.0,
) -> dict[str, list[int]]:
    """Train / validation / test cut-offs (UTC seconds).

    The default test cut-off is the last ``align_s``-aligned boundary (local time) with a full
    horizon of data after it (``align_s``: a day on the daily scale, a round length up to the
    horizon below it, :mod:`~chronorec.temporal.behavior.timescale`). Training cut-offs go back from ``validation - horizon_s`` by ``step_s``
    (default ``horizon_s``; a shorter step gives overlapping training label windows, all of which still
    end by the validation cut-off) while at least ``min_history_s`` lie between the start of the first
    ``align_s`` period and the cut-off, at most ``n_train`` of them (``None``: no limit).
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    off = int(round(utc_offset_hours * 3600))
    lo, hi = int(ts.min()), int(ts.max()) + 1
    lo = (lo + off) // align_s * align_s - off  # history counts from the start of the first (local) period
    if test_cutoff is None:
        last = hi - horizon_s
        test_cutoff = (last + off) // align_s * align_s - off
    val = test_cutoff - horizon_s
    step = step_s or horizon_s
    train = []
    t = val - horizon_s
    while t - lo >= min_history_s and (n_train is None or len(train) < n_train):
        train.append(int(t))
        t -= step
    if not train:
        raise DataError(
            "not enough history for a training cut-off: "
            + span_advice(int(ts.max() - ts.min()) + 1, horizon_s, min_history_s, align_s)
        )
    return {"train": sorted(train), "validation": [int(val)], "test": [int(test_cutoff)]}
