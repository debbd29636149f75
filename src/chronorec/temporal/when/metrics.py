"""Metrics of time-to-event predictions with right censoring, in numpy (no optional dependency).

* :func:`kaplan_meier`: the product-limit estimate of a survival curve (and, with the event flags
  flipped, of the censoring distribution ``G`` used for inverse-probability-of-censoring weights).
* :func:`concordance`: Harrell's C-index (``ipcw=False``) or Uno's (``ipcw=True``: each comparable pair
  weighted by ``1 / G(T_i-)^2``, optionally truncated at ``tau``). A pair (i, j) is comparable when
  ``i``'s event was observed and ``j`` was still event-free after it (``T_j > T_i``, or censored at
  ``T_i``); it is concordant when ``risk_i > risk_j``; tied risks count one half. The figures agree
  with scikit-survival's ``concordance_index_censored`` / ``concordance_index_ipcw`` (tests).
* :func:`paired_cindex_bootstrap`: the difference of two models' C-indices on the same cases,
  resampling users with replacement (each replicate one multinomial weight vector, every pair
  weighted by the product of its two users' weights), with its percentile 95 % interval.
* :func:`brier_scores` / :func:`integrated_brier`: Graf et al.'s IPCW Brier score at each time of a
  grid and its integral over the grid (trapezoid rule divided by the grid's span, as scikit-survival).
* :func:`calibration`: Brier score and expected calibration error of ``P(event within H)`` against
  the observed outcome, with equal-mass bins and the count of each bin (a reliability table).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "brier_scores",
    "calibration",
    "concordance",
    "integrated_brier",
    "kaplan_meier",
    "paired_cindex_bootstrap",
    "step_at",
]


def kaplan_meier(
    time: np.ndarray, observed: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct times, S(t) just after each)``: the Kaplan-Meier estimate (weighted cases allowed)."""
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, e, w = t[order], e[order], w[order]
    uniq, first = np.unique(t, return_index=True)
    deaths = np.add.reduceat(w * e, first) if len(t) else np.zeros(0)
    leaving = np.add.reduceat(w, first) if len(t) else np.zeros(0)
    at_risk = w.sum() - np.r_[0.0, np.cumsum(leaving)[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(at_risk > 0, 1.0 - deaths / np.maximum(at_risk, 1e-300), 1.0)
    return uniq, np.cumprod(factor)


def step_at(times: np.ndarray, values: np.ndarray, t: np.ndarray, *, left: bool = False) -> np.ndarray:
    """A right-continuous step function (1 before its first time) at ``t``; ``left=True`` gives the
    value just before ``t`` (``S(t-)``)."""
    pos = np.searchsorted(times, np.asarray(t, dtype=np.float64), side="left" if left else "right")
    return np.r_[1.0, values][pos]


def _censoring(time: np.ndarray, observed: np.ndarray, censor_from: tuple[np.ndarray, np.ndarray] | None):
    """G: the Kaplan-Meier of the censoring times of ``censor_from`` (time, observed), default the cases'."""
    ct, co = censor_from if censor_from is not None else (time, observed)
    return kaplan_meier(ct, ~np.asarray(co, dtype=bool))


def _pair_parts(
    time: np.ndarray,
    observed: np.ndarray,
    risks: list[np.ndarray],
    *,
    tau: float | None,
    ipcw: bool,
    censor_from: tuple[np.ndarray, np.ndarray] | None,
    rows: slice,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """For the cases ``rows`` as ``i``: the comparable-pair weights (len(rows), n) and each model's
    concordance (1, 0.5 for a tie, 0) times those weights."""
    t, e = time, observed
    ti, ei = t[rows][:, None], e[rows][:, None]
    comp = ei & ((t[None, :] > ti) | ((t[None, :] == ti) & ~e[None, :]))
    if tau is not None:
        comp &= ti < tau
    w = comp.astype(np.float64)
    if ipcw:
        gt, gs = _censoring(time, observed, censor_from)
        g = step_at(gt, gs, t[rows], left=True)
        with np.errstate(divide="ignore"):
            w = w * np.where(g > 0, 1.0 / np.maximum(g, 1e-300) ** 2, 0.0)[:, None]
    nums = []
    for r in risks:
        ri = r[rows][:, None]
        nums.append(w * ((ri > r[None, :]) + 0.5 * (ri == r[None, :])))
    return w, nums


def concordance(
    time: np.ndarray,
    observed: np.ndarray,
    risk: np.ndarray,
    *,
    tau: float | None = None,
    ipcw: bool = False,
    censor_from: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Harrell's C-index of ``risk`` (higher = sooner), or Uno's with ``ipcw`` (see the module docstring);
    ``tau`` keeps the pairs whose first event is before it. NaN when no pair is comparable."""
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    r = np.asarray(risk, dtype=np.float64)
    num = den = 0.0
    for a in range(0, len(t), 1024):
        w, (c,) = _pair_parts(t, e, [r], tau=tau, ipcw=ipcw, censor_from=censor_from, rows=slice(a, a + 1024))
        num += c.sum()
        den += w.sum()
    return float(num / den) if den > 0 else float("nan")


def paired_cindex_bootstrap(
    time: np.ndarray,
    observed: np.ndarray,
    risk_a: np.ndarray,
    risk_b: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    tau: float | None = None,
    ipcw: bool = False,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """C(a) - C(b) on the same cases with a 95 % percentile interval over ``n_boot`` resamples of the
    users (``groups``: the user of each case, default one user per case; a user's cases move together).

    Each replicate is a multinomial count per user; a pair of cases weighs the product of their users'
    counts (a pair of copies of one user is never comparable: equal times), so one (n x n) pass per
    model and a matrix product give every replicate at once."""
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    ra, rb = np.asarray(risk_a, dtype=np.float64), np.asarray(risk_b, dtype=np.float64)
    g = np.arange(len(t)) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    n_groups = int(g.max()) + 1 if len(g) else 0
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(np.float32)
    W = counts[:, g]  # (R, n): each case carries its user's count
    den = np.zeros(n_boot)
    num_a, num_b = np.zeros(n_boot), np.zeros(n_boot)
    full = [0.0, 0.0, 0.0]
    for a in range(0, len(t), 1024):
        rows = slice(a, a + 1024)
        w, (ca, cb) = _pair_parts(t, e, [ra, rb], tau=tau, ipcw=ipcw, censor_from=None, rows=rows)
        Wi = W[:, rows]
        for acc, m, k in ((den, w, 0), (num_a, ca, 1), (num_b, cb, 2)):
            acc += np.einsum("ri,ir->r", Wi, m.astype(np.float32) @ W.T, dtype=np.float64)
            full[k] += float(m.sum())
    ca_full, cb_full = full[1] / full[0], full[2] / full[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = num_a / den - num_b / den
    diff = diff[np.isfinite(diff)]
    lo, hi = np.percentile(diff, [2.5, 97.5]) if len(diff) else (np.nan, np.nan)
    return {
        "c_a": ca_full,
        "c_b": cb_full,
        "difference": ca_full - cb_full,
        "ci95": [float(lo), float(hi)],
        "p_not_above_zero": float(np.mean(diff <= 0)) if len(diff) else float("nan"),
        "n_boot": int(n_boot),
        "n_users": n_groups,
    }


def brier_scores(
    time: np.ndarray,
    observed: np.ndarray,
    survival: np.ndarray,
    grid: np.ndarray,
    *,
    censor_from: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Graf's IPCW Brier score at each grid time ``t``: ``survival`` (n, len(grid)) holds each case's
    predicted ``S(grid_k)``; a case with an event by ``t`` weighs ``1 / G(T_i)`` (as scikit-survival),
    one still event-free ``1 / G(t)``, one censored before ``t`` nothing."""
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    s = np.asarray(survival, dtype=np.float64)
    gt, gs = _censoring(t, e, censor_from)
    g_i = step_at(gt, gs, t)
    out = np.empty(len(grid))
    for k, h in enumerate(np.asarray(grid, dtype=np.float64)):
        g_h = step_at(gt, gs, np.array([h]))[0]
        died = (t <= h) & e
        alive = t > h
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(died, s[:, k] ** 2 / np.where(g_i > 0, g_i, np.inf), 0.0)
            term += np.where(alive, (1.0 - s[:, k]) ** 2 / (g_h if g_h > 0 else np.inf), 0.0)
        out[k] = term.mean()
    return out


def integrated_brier(
    time: np.ndarray,
    observed: np.ndarray,
    survival: np.ndarray,
    grid: np.ndarray,
    *,
    censor_from: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """The Brier score integrated over ``grid`` (trapezoid) divided by its span."""
    grid = np.asarray(grid, dtype=np.float64)
    bs = brier_scores(time, observed, survival, grid, censor_from=censor_from)
    return float(np.trapezoid(bs, grid) / (grid[-1] - grid[0]))


def calibration(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """Brier score, expected calibration error over ``bins`` equal-mass bins, mean predicted and observed
    rate, and the reliability table (mean predicted, observed rate and count per bin)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    table, ece = [], 0.0
    for chunk in np.array_split(order, min(bins, max(len(p), 1))):
        if not len(chunk):
            continue
        mp, oy = float(p[chunk].mean()), float(y[chunk].mean())
        ece += len(chunk) / len(p) * abs(mp - oy)
        table.append({"mean_predicted": mp, "observed": oy, "count": int(len(chunk))})
    return {
        "brier": float(np.mean((p - y) ** 2)) if len(p) else float("nan"),
        "ece": float(ece),
        "mean_predicted": float(p.mean()) if len(p) else float("nan"),
        "observed_rate": float(y.mean()) if len(y) else float("nan"),
        "n": int(len(p)),
        "reliability": table,
    }
