"""Shape of an activity series: trend (rolling slope), periodicity (dominant Fourier components)
and change points (CUSUM), for one series or many (rows) at once."""

from __future__ import annotations

import numpy as np

__all__ = ["change_points", "cusum_change_point", "dominant_periods", "rolling_slope"]


def rolling_slope(y: np.ndarray, window: int) -> np.ndarray:
    """Least-squares slope of the last ``window`` values along the last axis (per period)."""
    y = np.asarray(y, dtype=np.float64)
    w = min(window, y.shape[-1])
    if w < 2:
        return np.full(y.shape[:-1], np.nan)
    seg = y[..., -w:]
    x = np.arange(w, dtype=np.float64) - (w - 1) / 2.0
    return (seg * x).sum(-1) / (x * x).sum()


def dominant_periods(y: np.ndarray, *, k: int = 3, detrend: bool = True) -> tuple[np.ndarray, ...]:
    """The ``k`` strongest Fourier components of each series (last axis).

    The series is linearly detrended (or only de-meaned); returns ``(period, amplitude, phase)``
    arrays of shape ``(..., k)``: ``period`` in periods (``n / frequency index``), ``amplitude`` as
    the half peak-to-peak of the sinusoid (``2|X_f| / n``), ``phase`` in radians (of ``cos``,
    relative to the first value of the window). NaN where the series is too short.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[-1]
    shape = (*y.shape[:-1], k)
    if n < 4:
        return np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    if detrend:
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        slope = (y * x).sum(-1, keepdims=True) / (x * x).sum()
        y = y - y.mean(-1, keepdims=True) - slope * x
    else:
        y = y - y.mean(-1, keepdims=True)
    spec = np.fft.rfft(y, axis=-1)[..., 1:]  # drop the mean
    amp = 2.0 * np.abs(spec) / n
    kk = min(k, amp.shape[-1])
    top = np.argsort(-amp, axis=-1, kind="stable")[..., :kk]
    freq_idx = top + 1
    period = n / freq_idx
    a = np.take_along_axis(amp, top, -1)
    ph = np.angle(np.take_along_axis(spec, top, -1))
    if kk < k:
        pad = [(0, 0)] * (a.ndim - 1) + [(0, k - kk)]
        period, a, ph = (np.pad(v, pad, constant_values=np.nan) for v in (period, a, ph))
    flat = a <= 1e-12
    period = np.where(flat, np.nan, period)
    ph = np.where(flat, np.nan, ph)
    return period, a, ph


def cusum_change_point(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One mean-shift change point per series (last axis) by CUSUM.

    Returns ``(index, shift, statistic)``: the first index of the new regime (the argmax of
    ``|cumsum(y - mean)|`` plus one), the mean after minus the mean before, and the normalised
    statistic ``max|S| / (std * sqrt(n))`` (about > 1.36 is significant at 5% for i.i.d. noise).
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[-1]
    if n < 2:
        nan = np.full(y.shape[:-1], np.nan)
        return nan, nan.copy(), nan.copy()
    s = np.cumsum(y - y.mean(-1, keepdims=True), axis=-1)[..., :-1]
    k = np.argmax(np.abs(s), axis=-1)
    idx = k + 1
    csum = np.cumsum(y, axis=-1)
    total = csum[..., -1]
    before = np.take_along_axis(csum, k[..., None], -1)[..., 0]
    shift = (total - before) / (n - idx) - before / idx
    sd = y.std(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = np.abs(np.take_along_axis(s, k[..., None], -1)[..., 0]) / (sd * np.sqrt(n))
    stat = np.where(sd > 0, stat, 0.0)
    shift = np.where(sd > 0, shift, 0.0)
    return idx.astype(np.float64), shift, stat


def change_points(y: np.ndarray, *, max_points: int = 5, min_size: int = 3, threshold: float = 1.36) -> list[int]:
    """Mean-shift change points of one series by binary segmentation with the CUSUM statistic.

    A segment is split at its CUSUM maximum while the normalised statistic exceeds ``threshold``
    and both parts keep at least ``min_size`` values. Returns sorted start indices of new regimes.
    """
    y = np.asarray(y, dtype=np.float64)
    found: list[int] = []
    stack = [(0, len(y))]
    while stack and len(found) < max_points:
        a, b = stack.pop()
        if b - a < 2 * min_size:
            continue
        idx, _, stat = cusum_change_point(y[a:b])
        k = int(idx)
        if not np.isfinite(stat) or stat < threshold or k < min_size or b - a - k < min_size:
            continue
        found.append(a + k)
        stack.extend([(a, a + k), (a + k, b)])
    return sorted(found)


# ----------------------------------------------------------------------------- feature table
