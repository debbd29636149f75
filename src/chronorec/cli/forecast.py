"""``chronorec forecast``: rolling-origin evaluation of the forecaster ladder on long-format series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from chronorec.cli.temporal import _opt


def forecast_command(
    series: Annotated[
        Path | None, _opt("--series", "Long-format series file (CSV or Parquet) with series_id, period and the value.")
    ] = None,
    dataset: Annotated[
        str | None,
        _opt("--dataset", "Named series instead of --series: online-retail, taobao or ml-100k."),
    ] = None,
    data_dir: Annotated[
        Path | None, _opt("--data-dir", "Folder of the named datasets (default $CHRONOREC_DATA).")
    ] = None,
    value: Annotated[str, _opt("--value", "Value column of --series.")] = "y",
    by: Annotated[str, _opt("--by", "online-retail: product, country or customer.")] = "product",
    measure: Annotated[str, _opt("--measure", "online-retail: revenue or units (net of cancellations).")] = "revenue",
    freq: Annotated[str, _opt("--freq", "taobao / ml-100k: hour or day.")] = "day",
    top: Annotated[int, _opt("--top", "Named data: number of series (largest first).")] = 50,
    horizon: Annotated[int, _opt("--horizon", "Forecast horizon h in periods.")] = 7,
    origins: Annotated[int, _opt("--origins", "Number of rolling origins (h apart, the last ending at the end).")] = 8,
    season: Annotated[int | None, _opt("--season", "Season length in periods (default 7 daily, 24 hourly).")] = None,
    models: Annotated[
        str,
        _opt("--models", "Comma-separated: naive, seasonal_naive, moving_average, ets, gbm, lstm, gru, transformer."),
    ] = "naive,seasonal_naive,moving_average,ets,gbm,lstm",
    epochs: Annotated[int, _opt("--epochs", "Maximum epochs of the neural forecasters (lstm, gru, transformer).")] = 40,
    seed: Annotated[int, _opt("--seed", "Random seed.")] = 0,
    threads: Annotated[int | None, _opt("--threads", "Torch CPU threads.")] = None,
    out: Annotated[Path, _opt("--out", "Output folder: forecast.json and forecast.png.")] = Path("runs/forecast"),
) -> None:
    """Forecast many series h periods ahead and evaluate the ladder by rolling origin (MASE vs seasonal naive)."""
    import pandas as pd
    import typer

    from chronorec.temporal.forecast.core import plot_forecasts, rolling_origin, to_matrix
    from chronorec.temporal.forecast.data import events_series, online_retail_series

    try:
        if dataset is not None:
            key = dataset.lower()
            if key == "online-retail":
                s = online_retail_series(data_dir=data_dir, by=by, measure=measure, top=top)
            elif key in ("taobao", "ml-100k"):
                from chronorec.temporal.features import load_temporal_dataset

                ev = load_temporal_dataset(key, data_dir=data_dir)
                ent = "category" if key == "taobao" else "item_id"
                s = events_series(ev, entity=ent, freq=freq, top=top, utc_offset_hours=8.0 if key == "taobao" else 0.0)
            else:
                raise ValueError(f"unknown dataset {dataset!r}: online-retail, taobao or ml-100k")
        elif series is not None:
            s = pd.read_parquet(series) if series.suffix == ".parquet" else pd.read_csv(series)
        else:
            raise ValueError("give --series FILE or --dataset NAME")
        sm = to_matrix(s, value=value if series is not None else "y", season=season)
        names = [m.strip() for m in models.split(",") if m.strip()]
        rnn = {"epochs": epochs, "threads": threads}
        ev = rolling_origin(
            sm,
            h=horizon,
            n_origins=origins,
            models=names,
            params={"lstm": rnn, "gru": rnn, "transformer": rnn},
            seed=seed,
            progress=True,
        )
        out.mkdir(parents=True, exist_ok=True)
        plot_forecasts(sm, ev, out / "forecast.png")
        payload = {k: v for k, v in ev.items() if k not in ("forecasts", "actual")}
        (out / "forecast.json").write_text(json.dumps(payload, indent=2, default=float))
        typer.echo(f"{len(sm.ids)} series x {sm.Y.shape[1]} periods; results in {out}/forecast.json")
    except (ValueError, FileNotFoundError, KeyError) as e:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
