"""The use cases behind ``chronorec predict-when``: evaluate (the learned model against its baselines),
fit and save the learned model, predict with a saved one. The command line only parses and prints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.temporal.behavior.model import parse_time
from chronorec.temporal.when.config import WhenConfig, WhenModelConfig
from chronorec.temporal.when.data import WhenData, make_when_cutoffs, make_when_data
from chronorec.training.settings import RunSettings

__all__ = ["build_when_data", "fit_and_save", "parse_time", "run_when", "write_table"]

ALIGN_S = {"hour": 3600, "day": 86400, "week": 86400}


def _model_config(cfg: WhenConfig) -> WhenModelConfig:
    return WhenModelConfig(epochs=cfg.epochs, max_len=cfg.max_len, ensemble=cfg.ensemble)


def build_when_data(events: pd.DataFrame, cfg: WhenConfig, *, utc_offset_hours: float) -> WhenData:
    """The cases of ``cfg``'s cut-offs (:func:`make_when_cutoffs`) for ``events``."""
    from chronorec.datasets.temporal import event_frame

    df = event_frame(events)
    cuts = make_when_cutoffs(
        df[C.TIME].to_numpy(),
        validation_s=int(cfg.validation_hours * 3600),
        step_s=int(cfg.step_hours * 3600),
        test_cutoff=parse_time(cfg.test_cutoff),
        test_window_s=int(cfg.test_window_hours * 3600) if cfg.test_window_hours else None,
        n_train=cfg.train_cutoffs,
        min_history_s=int(cfg.min_history_hours * 3600),
        align_s=ALIGN_S[cfg.freq],
        utc_offset_hours=utc_offset_hours,
    )
    return make_when_data(
        df, cutoffs=cuts, target=cfg.target, behaviors=cfg.behaviors or None, freq=cfg.freq,
        windows=tuple(cfg.windows), utc_offset_hours=utc_offset_hours,
    )  # fmt: skip


def _stamp(cuts: dict[str, list[int]]) -> dict[str, list[str]]:
    return {p: [str(pd.Timestamp(t, unit="s")) + " UTC" for t in v] for p, v in cuts.items()}


def _json(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if not k.startswith("_")}


def _default(o: Any) -> Any:
    if isinstance(o, np.integer | np.bool_):
        return o.item()
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def run_when(
    events: pd.DataFrame,
    cfg: WhenConfig,
    *,
    utc_offset_hours: float = 0.0,
    run: RunSettings | None = None,
    out_dir: str | Path | None = None,
    title: str = "time to the next event",
    write_predictions: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Evaluate the learned model and the baselines (:func:`chronorec.temporal.when.evaluate.evaluate_when`);
    with ``out_dir``: ``when.json``, the survival-curve and calibration plots and the test cases'
    predictions (``test_predictions.csv``, unless ``write_predictions`` is off)."""
    from chronorec.temporal.when.evaluate import evaluate_when, write_plots

    t0 = time.perf_counter()
    run = run or RunSettings(progress=False)
    data = build_when_data(events, cfg, utc_offset_hours=utc_offset_hours)
    log(f"cases: {', '.join(f'{p} {len(data.part(p))}' for p in ('train', 'validation', 'test'))}")
    res = evaluate_when(
        data, model_config=_model_config(cfg), baselines=cfg.baselines, horizons_hours=cfg.horizons_hours,
        n_boot=cfg.bootstrap, run=run, log=log,
        feature_settings={"freq": cfg.freq, "windows": cfg.windows, "utc_offset_hours": utc_offset_hours},
    )  # fmt: skip
    res["cutoffs"] = _stamp(data.cutoffs)
    res["settings"] = cfg.model_dump()
    res["seconds"] = time.perf_counter() - t0
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "when.json").write_text(json.dumps(_json(res), indent=2, default=_default))
        write_plots(res, out, title=title)
        if write_predictions:
            table = res["_model"].table(_test_cases(data), horizons_hours=cfg.horizons_hours)
            write_table(table, out / "test_predictions.csv")
    return res


def _test_cases(data: WhenData) -> WhenData:
    """``data`` restricted to its test cases (the learned model's table at the test cut-off)."""
    rows = data.part("test")
    return WhenData(
        cases=data.cases.iloc[rows].reset_index(drop=True), time=data.time[rows], observed=data.observed[rows],
        features=data.features.iloc[rows].reset_index(drop=True), behaviors=data.behaviors, target=data.target,
        cutoffs=data.cutoffs, sequences=data.sequences, events=data.events,
    )  # fmt: skip


def fit_and_save(
    events: pd.DataFrame,
    cfg: WhenConfig,
    *,
    save: str | Path,
    utc_offset_hours: float = 0.0,
    run: RunSettings | None = None,
) -> Any:
    """Fit the learned model on the time split, score it on the test cut-off (its report), save it."""
    from chronorec.artifacts import check_target
    from chronorec.temporal.when.evaluate import score_survival
    from chronorec.temporal.when.model import fit_when_model

    check_target(save)
    data = build_when_data(events, cfg, utc_offset_hours=utc_offset_hours)
    model = fit_when_model(
        data, _model_config(cfg), run=run, freq=cfg.freq, windows=cfg.windows, utc_offset_hours=utc_offset_hours,
        horizons_hours=cfg.horizons_hours,
    )  # fmt: skip
    te, ti = data.part("test"), data.target_index
    tau = data.follow_up_hours("test")
    horizons = [h for h in cfg.horizons_hours if h < tau]
    grid = np.r_[np.linspace(tau / 40, tau * (1 - 1 / 40), 39), tau]
    mix = model.mixture(data, te)
    surv = 1.0 - mix.cdf(list(grid))[:, ti, :]
    p = {h: mix.cdf([h])[:, ti, 0] for h in horizons}
    model.report["test"] = score_survival(data.time[te, ti], data.observed[te, ti], surv, grid, horizons, p, tau)
    model.report["cutoffs"] = _stamp(data.cutoffs)
    model.report["test_follow_up_hours"] = tau
    model.save(save)
    return model


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """A per-user table as CSV, or Parquet for a .parquet path (the folder made)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".parquet":
        table.to_parquet(p, index=False)
    else:
        table.to_csv(p, index=False)
    return p
