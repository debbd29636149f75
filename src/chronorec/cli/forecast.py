"""``chronorec forecast``: forecasts with intervals past the end of the data, a saved forecaster, and
the rolling-origin evaluation of the ladder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from chronorec.cli.common import load_config
from chronorec.cli.options import (
    ConfigOpt,
    DataDirOpt,
    DatasetOpt,
    SeedOpt,
    ThreadsOpt,
    field_option,
    grouped,
    option_group,
    section,
)
from chronorec.cli.temporal import utc_offset_for
from chronorec.workflows.sections import ForecastConfig

NAMED_TOP = 50
"""Series of named data when --top is not given (the largest first)."""

F = ForecastConfig


def _named_series(cfg: Any) -> tuple[Any, Any]:
    """The long-format series of a named dataset (online-retail, or the activity of taobao / ml-100k)
    and their total (all entities, not only the top ones; None when not asked for)."""
    from chronorec.errors import ConfigError
    from chronorec.temporal.forecast.data import events_series, online_retail_series

    f, key, data_dir = cfg.forecast, cfg.data.dataset.lower(), cfg.data.data_dir
    if key == "online-retail":
        freq = "D" if f.freq in ("day", "week") else "h"  # auto: hours, summed up to the chosen period
        s = online_retail_series(data_dir=data_dir, by=f.by, measure=f.measure, top=f.top or NAMED_TOP, freq=freq)
        if not f.total:
            return s, None
        every = online_retail_series(data_dir=data_dir, by="country", measure=f.measure, top=10_000, freq=freq)
        return s, every.groupby("period", as_index=False)["y"].sum().assign(series_id=TOTAL)
    if key in ("taobao", "ml-100k"):
        from chronorec.workflows.run import resolve_dataset

        ev = resolve_dataset(key, data_dir=data_dir, frame=True)
        ent = "category" if key == "taobao" else "item_id"
        freq = "day" if f.freq in ("day", "week") else "hour"  # auto: hours, summed up to the chosen period
        s = events_series(ev, entity=ent, freq=freq, top=f.top or NAMED_TOP, utc_offset_hours=utc_offset_for(key, None))
        total = s[s["series_id"] == TOTAL]
        return s[s["series_id"] != TOTAL], (total if f.total else None)
    raise ConfigError(f"unknown dataset {cfg.data.dataset!r}: online-retail, taobao or ml-100k")


TOTAL = "__total__"


@option_group
class SeriesSource:
    """Where ``forecast`` reads its series: a file or a named dataset."""

    series: Annotated[Path | None, field_option(F, "series")] = None
    dataset: DatasetOpt = None
    data_dir: DataDirOpt = None


@option_group
class ForecastArgs:
    """The options of ``forecast``, named like the ``forecast`` config section's fields."""

    value: Annotated[str | None, field_option(F, "value")] = None
    by: Annotated[str | None, field_option(F, "by")] = None
    measure: Annotated[str | None, field_option(F, "measure")] = None
    freq: Annotated[str | None, field_option(F, "freq")] = None
    top: Annotated[int | None, field_option(F, "top")] = None
    total: Annotated[bool | None, field_option(F, "total", "--total/--no-total")] = None
    horizon: Annotated[int | None, field_option(F, "horizon")] = None
    origins: Annotated[int | None, field_option(F, "origins")] = None
    season: Annotated[int | None, field_option(F, "season")] = None
    models: Annotated[str | None, field_option(F, "models")] = None
    select: Annotated[str | None, field_option(F, "select")] = None
    levels: Annotated[str | None, field_option(F, "levels")] = None
    format: Annotated[str | None, field_option(F, "format")] = None
    epochs: Annotated[int | None, field_option(F, "epochs")] = None


@grouped
def forecast(
    source: SeriesSource,
    opts: ForecastArgs,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    out: Annotated[Path | None, field_option(F, "out")] = None,
    config: ConfigOpt = None,
) -> None:
    """Forecast each series h periods past the end of the data, with prediction intervals; save the
    forecaster; evaluate the ladder by rolling origin (MASE vs seasonal naive)."""
    from chronorec.temporal.forecast.pipeline import series_matrix

    data = {"dataset": source.dataset, "data_dir": str(source.data_dir) if source.data_dir else None}
    f_over = section(F, opts) | {"series": source.series and str(source.series), "out": out and str(out)}
    cfg = load_config(config, {"data": data, "forecast": f_over, "seed": seed, "threads": threads})
    f = cfg.forecast
    s, total, col = _series(cfg)
    sm = series_matrix(s, freq=f.freq, h=f.horizon, n_origins=f.origins, value=col, season=f.season)
    _forecast(cfg, sm, total)


def _forecast(cfg: Any, sm: Any, total: Any) -> None:
    """Run the ladder on the series (and on their total, apart); write forecast.json and say where."""
    from chronorec.temporal.forecast.pipeline import run_forecast, series_matrix

    f = cfg.forecast
    rnn = {"epochs": f.epochs}
    kw = {
        "h": f.horizon,
        "models": list(f.models),
        "n_origins": f.origins,
        "levels": list(f.levels),
        "select": f.select,
        "params": {"lstm": rnn, "gru": rnn, "transformer": rnn},
        "fmt": f.format,
        "seed": cfg.seed,
        "threads": cfg.threads,
    }
    target = Path(f.out)
    res = run_forecast(sm, target, progress=True, **kw)
    freq_name = {3600: "hour", 86400: "day", 604800: "week"}.get(int((sm.periods[1] - sm.periods[0]).total_seconds()))
    payload = {"freq": freq_name, **res}
    msg = f"{len(sm.ids)} series x {sm.Y.shape[1]} {freq_name} periods"
    if total is not None:
        tm = series_matrix(total, freq=freq_name, h=f.horizon, n_origins=f.origins, value="y", season=f.season)
        payload["total"] = run_forecast(tm, target, prefix="total_", **kw)
        payload["total"]["what"] = "the sum over all entities (not only the top ones), forecast on its own"
        msg += f" (+ {TOTAL}, the total of all entities, forecast apart in total_forecast.{f.format})"
    if res["skipped_methods"]:  # the base install: what ran is said, not only what failed
        typer.echo(
            f"Skipped {', '.join(res['skipped_methods'])}: they need statsforecast "
            "(pip install 'chronorec[forecast]'); chose among the methods this install runs",
            err=True,
        )
    (target / "forecast.json").write_text(json.dumps(payload, indent=2, default=float))
    typer.echo(
        f"{msg}; {f.horizon}-{freq_name} forecast with {'/'.join(f'{v:g}' for v in f.levels)}% intervals in "
        f"{target}/{res['table']} (methods {res['methods_chosen']}); evaluation in {target}/forecast.json"
    )


def _series(cfg: Any) -> tuple[Any, Any, str]:
    """The long-format series to forecast, their total (None: not asked for) and the value column."""
    import pandas as pd

    from chronorec.errors import ConfigError

    f = cfg.forecast
    if cfg.data.dataset is not None:
        s, total = _named_series(cfg)
        return s, total, "y"
    if f.series is None:
        raise ConfigError("give --series FILE or --dataset NAME")
    path = Path(f.series)
    s = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = {"series_id", "period", f.value} - set(s.columns)
    if missing:
        raise ConfigError(f"{path} lacks the column(s) {sorted(missing)}: series_id, period and --value {f.value}")
    from chronorec.temporal.forecast.series import check_series_frame

    s = check_series_frame(s, f.value, str(path))
    if f.top is not None and (n := s["series_id"].nunique()) > f.top:
        from chronorec.temporal.forecast.pipeline import largest_series

        s = largest_series(s, f.top, f.value)
        typer.echo(f"Kept the {f.top} largest of {n} series (--top; by total |{f.value}|)", err=True)
    return s, None, f.value
