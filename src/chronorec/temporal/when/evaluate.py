"""The time-to-event protocol: the learned model against its baselines on the held-out test cut-off.

Everything is fitted on the training cut-offs, every setting and epoch chosen on the validation
cut-off, and the test cut-off is read once. On the test cases (one per user, all followed up to the
same end, so the censoring is administrative) each method is scored for the target behaviour by:

* Harrell's C-index (the primary figure) and Uno's (IPCW, the same here up to ties), with the risk
  ``1 - S(tau | x)``, ``tau`` the test follow-up (the per-horizon classifiers: their probability);
* the integrated Brier score (IPCW) over an even grid of ``grid_points`` times inside the follow-up;
* calibration of ``P(event within H)`` at each horizon inside the follow-up (Brier, ECE over 10
  equal-mass bins, the reliability table);
* the paired bootstrap over users of the learned model's C-index minus each survival baseline's
  (95 % percentile interval); the bar compares it with the best survival baseline *on test*.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.temporal.when.baselines import (
    KaplanMeierSegments,
    fit_cox,
    fit_horizon_classifiers,
    fit_rsf,
)
from chronorec.temporal.when.config import BASELINES, WhenModelConfig
from chronorec.temporal.when.data import WhenData
from chronorec.temporal.when.metrics import calibration, concordance, integrated_brier, paired_cindex_bootstrap
from chronorec.temporal.when.model import fit_when_model
from chronorec.training.settings import RunSettings

__all__ = ["SURVIVAL_BASELINES", "evaluate_when", "score_survival"]

SURVIVAL_BASELINES = ("km", "cox", "rsf")


def _sksurv_available() -> bool:
    try:
        import sksurv  # noqa: F401
    except ImportError:
        return False
    return True


def score_survival(
    time_h: np.ndarray, observed: np.ndarray, surv: np.ndarray, grid: np.ndarray, horizons: Sequence[float],
    p_within: dict[float, np.ndarray], tau: float,
) -> dict[str, Any]:  # fmt: skip
    """C-indices, integrated Brier and calibration of one survival method (``surv``: S on ``grid``,
    its last column at ``tau``; ``p_within``: P(T <= H) per horizon)."""
    risk = 1.0 - surv[:, -1]
    out: dict[str, Any] = {
        "cindex_harrell": concordance(time_h, observed, risk),
        "cindex_uno": concordance(time_h, observed, risk, ipcw=True, tau=tau),
        "integrated_brier": integrated_brier(time_h, observed, surv[:, :-1], grid[:-1]),
    }
    for h in horizons:
        y = observed & (time_h <= h)
        out[f"calibration_{h:g}h"] = calibration(y, p_within[h])
    return out


def evaluate_when(  # noqa: PLR0913 - the protocol's keyword API
    data: WhenData,
    *,
    model_config: WhenModelConfig | None = None,
    baselines: Sequence[str] = BASELINES,
    horizons_hours: Sequence[float] = (24.0, 168.0),
    grid_points: int = 40,
    n_boot: int = 1000,
    run: RunSettings | None = None,
    rsf_options: dict[str, Any] | None = None,
    feature_settings: dict[str, Any] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Fit the learned model and the baselines on ``data`` and score them on its test cut-off (see the
    module docstring). Returns the results (JSON-ready) with ``"_model"`` (the fitted
    :class:`WhenModel`) and ``"_test"`` (per-case arrays for plots) added."""
    run = run or RunSettings(progress=False)
    te = data.part("test")
    ti = data.target_index
    t_h, e = data.time[te, ti], data.observed[te, ti]
    tau = data.follow_up_hours("test")
    horizons = [float(h) for h in horizons_hours if h < tau]
    grid = np.r_[np.linspace(tau / grid_points, tau * (1 - 1 / grid_points), grid_points - 1), tau]
    surv: dict[str, np.ndarray] = {}
    p_within: dict[str, dict[float, np.ndarray]] = {}
    info: dict[str, Any] = {}
    skipped: dict[str, str] = {}

    t0 = time.perf_counter()
    model = fit_when_model(data, model_config, run=run, horizons_hours=horizons_hours, **(feature_settings or {}))
    mix = model.mixture(data, te)
    cdf = mix.cdf(list(grid))[:, ti, :]
    surv["when"] = 1.0 - cdf
    p_within["when"] = {h: mix.cdf([h])[:, ti, 0] for h in horizons}
    info["when"] = {**model.report, "seconds": time.perf_counter() - t0, "config": model.config.model_dump()}
    log(f"when: fitted in {info['when']['seconds']:.0f}s")

    if "km" in baselines:
        t0 = time.perf_counter()
        km = KaplanMeierSegments.fit(data, data.part("train"))
        s = km.survival(data, te, list(grid) + horizons)
        surv["km"], p_within["km"] = s[:, : len(grid)], {h: 1 - s[:, len(grid) + k] for k, h in enumerate(horizons)}
        info["km"] = {"segments": len(km.curves), "seconds": time.perf_counter() - t0}
    for name in ("cox", "rsf"):
        if name in baselines:
            _sksurv_baseline(name, data, grid, horizons, surv, p_within, info, skipped, rsf_options, run.seed, log)
    results: dict[str, Any] = {}
    for name, s in surv.items():
        results[name] = {**score_survival(t_h, e, s, grid, horizons, p_within[name], tau), "fit": info[name]}
    if "gbm" in baselines:
        _gbm_baselines(data, horizons, results, p_within, skipped, run.seed, log)
    bar = _bar(t_h, e, surv, n_boot=n_boot, seed=run.seed)
    out = {
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "),
        "target": data.target,
        "behaviors": data.behaviors,
        "cases": {p: int(len(data.part(p))) for p in ("train", "validation", "test")},
        "test_follow_up_hours": tau,
        "test_event_rate": float(e.mean()),
        "horizons_hours": horizons,
        "horizons_beyond_follow_up": [float(h) for h in horizons_hours if h >= tau],
        "grid_hours": [float(g) for g in grid[:-1]],
        "results": results,
        "bar": bar,
        "skipped": skipped,
    }
    out["_model"] = model
    out["_test"] = {"time": t_h, "observed": e, "grid": grid, "surv": surv, "p_within": p_within, "rows": te}
    return out


def _sksurv_baseline(  # noqa: PLR0913 - fills the evaluation's tables in place
    name: str, data: WhenData, grid: np.ndarray, horizons: list[float], surv: dict, p_within: dict, info: dict,
    skipped: dict, rsf_options: dict[str, Any] | None, seed: int, log: Any,
) -> None:  # fmt: skip
    """Cox or the forest (scikit-survival), or a note that the extra is missing."""
    if not _sksurv_available():
        skipped[name] = "needs scikit-survival: pip install 'chronorec[survival]'"
        log(f"{name}: skipped ({skipped[name]})")
        return
    te = data.part("test")
    t0 = time.perf_counter()
    m = fit_rsf(data, **dict(rsf_options or {}, seed=seed)) if name == "rsf" else fit_cox(data)
    s = m.survival(data, te, list(grid) + horizons)
    surv[name], p_within[name] = s[:, : len(grid)], {h: 1 - s[:, len(grid) + k] for k, h in enumerate(horizons)}
    info[name] = {"params": m.params, "search": m.search, "seconds": time.perf_counter() - t0}
    log(f"{name}: fitted in {info[name]['seconds']:.0f}s ({m.params})")


def _gbm_baselines(
    data: WhenData, horizons: list[float], results: dict, p_within: dict, skipped: dict, seed: int, log: Any
) -> None:
    """The per-horizon classifiers: C-index with their probability as the risk, calibration at their horizon."""
    te, ti = data.part("test"), data.target_index
    t_h, e = data.time[te, ti], data.observed[te, ti]
    t0 = time.perf_counter()
    clf = fit_horizon_classifiers(data, horizons, seed=seed)
    x = data.features.to_numpy(np.float64)[te]
    for h, c in clf.items():
        p = c["model"].predict_proba(x[:, c["columns"]])[:, 1]
        results[f"gbm_{h:g}h"] = {
            "cindex_harrell": concordance(t_h, e, p),
            f"calibration_{h:g}h": calibration(e & (t_h <= h), p),
            "fit": {k: v for k, v in c.items() if k not in ("model", "columns")},
        }
        p_within[f"gbm_{h:g}h"] = {h: p}
    for h in horizons:
        if h not in clf:
            skipped[f"gbm_{h:g}h"] = (
                "no training cut-off or the validation cut-off is followed up for the whole horizon (or its labels "
                "hold one class only)"
            )
    log(f"gbm: {len(clf)} horizon classifier(s) in {time.perf_counter() - t0:.0f}s")


def _bar(t_h: np.ndarray, e: np.ndarray, surv: dict[str, np.ndarray], *, n_boot: int, seed: int) -> dict[str, Any]:
    """The learned model's C-index minus each survival baseline's (paired bootstrap over users), and the
    verdict against the best survival baseline on test."""
    risk = {k: 1.0 - s[:, -1] for k, s in surv.items()}
    versus = {
        k: paired_cindex_bootstrap(t_h, e, risk["when"], risk[k], n_boot=n_boot, seed=seed)
        for k in SURVIVAL_BASELINES
        if k in risk
    }
    if not versus:
        return {"versus": {}, "best_survival_baseline": None, "passed": None}
    best = max(versus, key=lambda k: versus[k]["c_b"])
    v = versus[best]
    return {
        "versus": versus,
        "best_survival_baseline": best,
        "difference": v["difference"],
        "ci95": v["ci95"],
        "passed": bool(v["ci95"][0] > 0),
        "rule": "Harrell's C-index of the learned model above the best survival baseline's on test, "
        "with the 95 % bootstrap interval of the difference above zero",
    }


def write_plots(res: dict[str, Any], out_dir: str | Path, *, title: str, users: int = 4) -> list[Path]:
    """Survival curves of a few test users (learned model and the Kaplan-Meier of their segment) and the
    calibration of P(within H) per horizon: PNG files in ``out_dir``."""
    from chronorec.temporal.when.plots import calibration_figure, survival_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [survival_figure(res["_test"], out / "when_survival_curves.png", title=title, users=users)]
    for h in res["horizons_hours"]:
        paths.append(calibration_figure(res["_test"], h, out / f"when_calibration_{h:g}h.png", title=title))
    return paths
