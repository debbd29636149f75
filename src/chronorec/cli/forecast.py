"""``chronorec forecast``: rolling-origin evaluation of the forecaster ladder on long-format series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from chronorec.cli.common import ConfigOpt, DataDirOpt, DatasetOpt, SeedOpt, ThreadsOpt, field_option, load_config
from chronorec.cli.common import section_overrides as _section
from chronorec.cli.temporal import utc_offset_for
from chronorec.workflows.sections import ForecastConfig

F = ForecastConfig


def _named_series(cfg: Any) -> Any:
    """The long-format series of a named dataset: online-retail, or the activity of taobao / ml-100k."""
    from chronorec.errors import ConfigError
    from chronorec.temporal.forecast.data import events_series, online_retail_series

    f, key, data_dir = cfg.forecast, cfg.data.dataset.lower(), cfg.data.data_dir
    if key == "online-retail":
        return online_retail_series(data_dir=data_dir, by=f.by, measure=f.measure, top=f.top)
    if key in ("taobao", "ml-100k"):
        from chronorec.datasets.temporal import load_temporal_dataset

        ev = load_temporal_dataset(key, data_dir=data_dir)
        ent = "category" if key == "taobao" else "item_id"
        return events_series(ev, entity=ent, freq=f.freq, top=f.top, utc_offset_hours=utc_offset_for(key, None))
    raise ConfigError(f"unknown dataset {cfg.data.dataset!r}: online-retail, taobao or ml-100k")


def forecast(
    series: Annotated[Path | None, field_option(F, "series")] = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    value: Annotated[str | None, field_option(F, "value")] = None,
    by: Annotated[str | None, field_option(F, "by")] = None,
    measure: Annotated[str | None, field_option(F, "measure")] = None,
    freq: Annotated[str | None, field_option(F, "freq")] = None,
    top: Annotated[int | None, field_option(F, "top")] = None,
    horizon: Annotated[int | None, field_option(F, "horizon")] = None,
    origins: Annotated[int | None, field_option(F, "origins")] = None,
    season: Annotated[int | None, field_option(F, "season")] = None,
    models: Annotated[str | None, field_option(F, "models")] = None,
    epochs: Annotated[int | None, field_option(F, "epochs")] = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    out: Annotated[Path | None, field_option(F, "out")] = None,
    config: ConfigOpt = None,
) -> None:
    """Forecast many series h periods ahead and evaluate the ladder by rolling origin (MASE vs seasonal naive)."""
    import pandas as pd

    from chronorec.errors import ConfigError
    from chronorec.temporal.forecast.core import plot_forecasts, rolling_origin, to_matrix

    data = {"dataset": dataset, "data_dir": str(data_dir) if data_dir else None}
    cfg = load_config(config, {"data": data, "forecast": _section(F, locals()), "seed": seed, "threads": threads})
    f = cfg.forecast
    if cfg.data.dataset is not None:
        s = _named_series(cfg)
    elif f.series is not None:
        path = Path(f.series)
        s = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    else:
        raise ConfigError("give --series FILE or --dataset NAME")
    sm = to_matrix(s, value=f.value if cfg.data.dataset is None else "y", season=f.season)
    rnn = {"epochs": f.epochs}
    params = {"lstm": rnn, "gru": rnn, "transformer": rnn}
    ev = rolling_origin(
        sm,
        h=f.horizon,
        n_origins=f.origins,
        models=list(f.models),
        params=params,
        seed=cfg.seed,
        threads=cfg.threads,
        progress=True,
    )
    target = Path(f.out)
    target.mkdir(parents=True, exist_ok=True)
    plot_forecasts(sm, ev, target / "forecast.png")
    payload = {k: v for k, v in ev.items() if k not in ("forecasts", "actual")}
    (target / "forecast.json").write_text(json.dumps(payload, indent=2, default=float))
    typer.echo(f"{len(sm.ids)} series x {sm.Y.shape[1]} periods; results in {target}/forecast.json")
