"""Paired significance tests for comparing two models on the same cases.

Both tests resample with one core, :func:`bootstrap`: cases (or clusters of cases, such as the
cut-offs of one user) are drawn with replacement and a statistic is recomputed on each resample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from chronorec.errors import ConfigError, DataError

__all__ = ["bootstrap", "paired_bootstrap", "paired_test"]


def bootstrap(
    stat: Callable[[np.ndarray], float],
    n_cases: int,
    *,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """``stat(idx)`` on ``n_boot`` bootstrap resamples of the case indices ``0..n_cases-1``.

    Without ``groups`` each case is drawn on its own; with ``groups`` (one label per case) whole
    clusters are drawn, as many as there are, and ``idx`` holds every case of each drawn cluster.
    """
    rng = np.random.default_rng(seed)
    members: list[np.ndarray] | None = None
    n_units = n_cases
    if groups is not None:
        codes, uniq = pd.factorize(groups)
        members = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes))[:-1])
        n_units = len(uniq)
    out = np.empty(n_boot)
    for b in range(n_boot):
        draw = rng.integers(0, n_units, n_units)
        out[b] = stat(draw if members is None else np.concatenate([members[g] for g in draw]))
    return out


def paired_test(
    baseline: np.ndarray, other: np.ndarray, *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> dict[str, float]:
    """Paired comparison of two models' per-case metric values (e.g. NDCG@10 per user).

    Returns the two means, their difference (other - baseline) with a percentile bootstrap
    confidence interval over cases, the two-sided paired t-test p-value and the Wilcoxon
    signed-rank p-value (cases where both are equal carry no sign and are dropped). Identical
    inputs give p = 1.
    """
    from scipy import stats

    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(other, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise DataError("paired_test needs two 1-d arrays of the same length (>= 2 cases)")
    d = b - a
    boot = bootstrap(lambda idx: d[idx].mean(), len(d), n_boot=n_boot, seed=seed)
    if np.allclose(d, 0.0):
        t_p = w_p = 1.0
    else:
        t_p = float(stats.ttest_rel(b, a).pvalue)
        w_p = float(stats.wilcoxon(d[d != 0]).pvalue) if np.count_nonzero(d) >= 1 else 1.0
    return {
        "n": float(len(d)),
        "mean_baseline": float(a.mean()),
        "mean_other": float(b.mean()),
        "diff": float(d.mean()),
        "ci_low": float(np.quantile(boot, alpha / 2)),
        "ci_high": float(np.quantile(boot, 1 - alpha / 2)),
        "t_test_p": t_p,
        "wilcoxon_p": w_p,
    }


def paired_bootstrap(
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    groups: np.ndarray,
    *,
    strata: np.ndarray | None = None,
    metric: str = "roc_auc",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Difference ``metric(a) - metric(b)`` on the same cases with a 95 % bootstrap interval and a
    two-sided p-value. Cases are resampled in clusters (``groups``: the user, who recurs across
    rolling cut-offs), so repeated cases of one user are not counted as independent. With
    ``strata`` (the fold of each case) the metric is the mean of the per-stratum metrics."""
    from chronorec.evaluation.classification import average_precision, roc_auc

    if metric not in ("roc_auc", "pr_auc"):
        raise ConfigError(f"paired_bootstrap metric must be roc_auc or pr_auc (got {metric!r})")
    fn = roc_auc if metric == "roc_auc" else average_precision
    st = np.zeros(len(y), np.int64) if strata is None else pd.factorize(strata)[0]

    def stat(idx: np.ndarray) -> float:
        yy, aa, bb, ss = y[idx], a[idx], b[idx], st[idx]
        return float(np.mean([fn(yy[ss == k], aa[ss == k]) - fn(yy[ss == k], bb[ss == k]) for k in np.unique(ss)]))

    diffs = bootstrap(stat, len(y), groups=groups, n_boot=n_boot, seed=seed)
    diffs = diffs[np.isfinite(diffs)]
    d = stat(np.arange(len(y)))
    p = min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())) if len(diffs) else float("nan")
    lo, hi = np.quantile(diffs, [0.025, 0.975]) if len(diffs) else (float("nan"), float("nan"))
    return {"difference": d, "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p), "n_boot": n_boot}
