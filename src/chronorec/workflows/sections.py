"""Config sections of the commands beyond the shared ``data`` / ``split`` / ``evaluation`` / ``recommend``.

Each section is the settings of one command, readable from a ``--config`` file under its name
(``features:``, ``behavior:``, ``forecast:``, ``serve:``, ``ensemble:``, ``benchmark:``). The field descriptions are the help
texts of the command-line options, and the defaults here are the commands' defaults.
Comma-separated text (``"1,7,28"``) is accepted wherever a list is expected, as on the command line.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from chronorec.settings import Strict


def split_list(value: Any) -> Any:
    """``"a, b"`` -> ``["a", "b"]``; lists and other values pass through."""
    if isinstance(value, str):
        return [x.strip() for x in value.split(",") if x.strip()]
    return value


class _Lists(Strict):
    """Accepts comma-separated text for every list field."""

    @field_validator("*", mode="before")
    @classmethod
    def _comma_lists(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields[info.field_name]
        if "list" in str(field.annotation):
            return split_list(value)
        return value


class FeaturesConfig(_Lists):
    """``chronorec features``: temporal features per entity and cut-off."""

    category_col: str | None = Field(None, description="Category column of --data (kept as 'category').")
    entity: str = Field("user", description="Entity: user, item or category.")
    freq: Literal["hour", "day", "week"] = Field("day", description="Period: hour, day or week.")
    utc_offset: float | None = Field(
        None, ge=-14, le=14, description="Hours added to UTC for period alignment (default: the dataset's own, else 0)."
    )
    windows: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(
        [1, 7, 28], min_length=1, max_length=64, description="Trailing windows in periods, comma-separated."
    )
    cutoffs: list[str] = Field(
        [], description="Cut-off times (epoch seconds or ISO, UTC); repeat the option. Default: every period."
    )
    cutoff_every: int = Field(1, ge=1, le=1_000_000, description="Default cut-offs: every N periods.")
    out: str = Field("runs/features", description="Output folder: features.parquet and series.parquet.")
    series: bool = Field(True, description="Also write the long-format activity series.")


class BehaviorConfig(_Lists):
    """``chronorec predict-behavior``: the target behaviour within H and the next event type.

    Lengths take units (``45s``, ``30m``, ``2h``, ``1d``, ``1w``; a plain number is hours, as the
    ``*_hours`` fields always were); left out, they come from the data's span
    (:mod:`chronorec.temporal.behavior.timescale`)."""

    category_col: str | None = Field(None, description="Optional category column of --data.")
    target: str = Field("buy", description="Target behaviour of the binary task.")
    horizon: str | None = Field(
        None,
        description="Label window H after each cut-off: 30m, 2h, 1d (a plain number is hours). Default: 1d on "
        "four days of data or more, else about an eighth of the data's span, rounded down (3 hours: 15m).",
    )
    horizon_hours: float | None = Field(None, gt=0, le=87600, description="--horizon in hours (older spelling).")
    train_cutoffs: int | None = Field(
        None, ge=1, le=5000, description="At most this many training cut-offs (default: all the history allows)."
    )
    step: str | None = Field(None, description="Time between training cut-offs: 15m, 6h, 1d (default H / 4).")
    step_hours: float | None = Field(None, gt=0, le=87600, description="--step in hours (older spelling).")
    min_history: str | None = Field(
        None, description="History before the first training cut-off: 1h, 1d (default H, at most 1d)."
    )
    test_cutoffs: int = Field(
        1, ge=1, le=100, description="Rolling test cut-offs, one horizon apart; models are refitted per cut-off."
    )
    freq: str | None = Field(
        None,
        description="Period of the series features: hour, day, week or a duration such as 5m "
        "(default: day when H is 1d or more, else about H / 3).",
    )
    windows: list[Annotated[int, Field(ge=1, le=100_000)] | Annotated[str, StringConstraints(max_length=32)]] | None = (
        Field(
            None,
            max_length=64,
            description="Trailing feature windows, comma-separated: periods of --freq (7) or durations (6h); "
            "default 1,7,28 when H is 1d or more, else 1,3,12.",
        )
    )
    utc_offset: float | None = Field(
        None, ge=-14, le=14, description="Local time offset in hours (default: the dataset's own, else 0)."
    )

    tasks: list[str] = Field(["target", "next_type"], description="Comma-separated: target, next_type.")
    models: list[str] = Field(
        ["logistic", "gbm", "gru", "transformer"],
        description="Comma-separated: logistic, gbm, gru, lstm, transformer (baselines always run).",
    )
    epochs: int = Field(30, ge=1, le=10000, description="Maximum epochs of the sequence classifiers.")
    max_len: int = Field(50, ge=1, le=10000, description="Events per sequence-classifier input.")
    out: str = Field("runs/behavior", description="Output folder: behavior.json and calibration plots.")
    save: str | None = Field(
        None, description="Fit the chosen model on all the data (calibrated on its last horizon) and save it here."
    )
    model: str | None = Field(None, description="A saved behaviour model: predict with it instead of evaluating.")
    at: str | None = Field(
        None, description="Prediction time (ISO or epoch seconds, UTC; default: the end of the data) for --model."
    )
    predictions: str | None = Field(
        None, description="Per-user probabilities file (.csv or .parquet; default <out>/predictions.csv)."
    )
    calibration: Literal["platt", "isotonic", "none"] = Field(
        "platt", description="Calibrator of a saved model, fitted on the validation cut-off."
    )

    @field_validator("horizon", "step", "min_history", "freq")
    @classmethod
    def _duration(cls, value: str | None, info: Any) -> str | None:
        from chronorec.errors import ConfigError
        from chronorec.temporal.durations import parse_duration

        if value is None or (info.field_name == "freq" and value in ("hour", "day", "week")):
            return value
        try:
            parse_duration(value, name=f"--{info.field_name.replace('_', '-')}")
        except ConfigError as e:
            if info.field_name == "freq":
                raise ValueError(
                    f"--freq must be hour, day, week or a duration such as 5m or 2h, not {value!r}"
                ) from None
            raise ValueError(str(e)) from None
        return value

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[int | str] | None) -> list[str] | None:
        from chronorec.errors import ConfigError
        from chronorec.temporal.durations import parse_duration

        for w in value or []:
            try:
                if not str(w).strip().isdigit():
                    parse_duration(str(w), name="--windows")
                elif int(w) < 1:
                    raise ConfigError(f"--windows are periods (1 or more) or durations, not {w!r}")
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return [str(w).strip() for w in value] if value is not None else None

    def lengths(self) -> dict[str, Any]:
        """``horizon_s``, ``step_s``, ``min_history_s`` (seconds, None: from the data) plus ``freq`` and
        ``windows``: what the library's functions take."""
        from chronorec.errors import ConfigError
        from chronorec.temporal.durations import parse_duration

        def one(text: str | None, hours: float | None, name: str) -> int | None:
            if text is not None and hours is not None:
                raise ConfigError(f"give --{name} or --{name}-hours, not both")
            if hours is not None:
                return int(round(hours * 3600))
            return parse_duration(text, name=f"--{name}") if text is not None else None

        return {
            "horizon_s": one(self.horizon, self.horizon_hours, "horizon"),
            "step_s": one(self.step, self.step_hours, "step"),
            "min_history_s": one(self.min_history, None, "min-history"),
            "freq": self.freq,
            "windows": tuple(self.windows) if self.windows is not None else None,
        }


class ForecastConfig(_Lists):
    """``chronorec forecast``: forecast the periods after the data, with intervals, a saved forecaster
    and the rolling-origin evaluation of the ladder."""

    series: str | None = Field(
        None, description="Long-format series file (CSV or Parquet) with series_id, period and the value."
    )
    value: str = Field("y", description="Value column of --series.")
    by: str = Field("product", description="online-retail: product, country or customer.")
    measure: str = Field("revenue", description="online-retail: revenue or units (net of cancellations).")
    freq: Literal["auto", "hour", "day", "week"] = Field(
        "auto", description="Period: hour, day, week, or auto (the coarsest that the data's span allows)."
    )
    top: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="Number of series, largest first: named data 50 unless given (their total is forecast "
        "apart); a --series file keeps every series unless given.",
    )
    total: bool = Field(
        True, description="Named data: also forecast the total of all entities, as series __total__ apart."
    )
    horizon: int = Field(7, ge=1, le=100_000, description="Forecast horizon h in periods.")
    origins: int = Field(
        8, ge=1, le=1000, description="Number of rolling origins (h apart, the last ending at the end)."
    )
    season: int | None = Field(
        None, ge=1, le=100_000, description="Season length in periods (default 7 daily, 24 hourly, 52 weekly)."
    )
    models: list[str] = Field(
        ["naive", "seasonal_naive", "ets", "theta", "croston_sba", "tsb", "adida"],
        description="Comma-separated ladder: naive, seasonal_naive, moving_average, ets, theta, croston, "
        "croston_sba, tsb, adida, imapa (statsforecast; the forecast chooses among these), gbm, lstm, gru, "
        "transformer (evaluated only).",
    )
    select: Literal["series", "global"] = Field(
        "series", description="Choose the method per series (lowest MAE over the origins) or one for all."
    )
    levels: list[Annotated[float, Field(gt=0, lt=100)]] = Field(
        [80.0, 95.0], min_length=1, max_length=16, description="Prediction interval levels in percent, comma-separated."
    )
    format: Literal["csv", "parquet"] = Field("csv", description="File format of the forecast table.")
    epochs: int = Field(
        40, ge=1, le=100_000, description="Maximum epochs of the neural forecasters (lstm, gru, transformer)."
    )
    out: str = Field(
        "runs/forecast",
        description="Output folder: forecast.csv/.parquet, forecaster/, forecast.json, forecast.png, evaluation.png.",
    )


class EnsembleConfig(_Lists):
    """``chronorec ensemble``: a score-level ensemble of saved models."""

    model_dirs: list[str] = Field([], description="Saved model folders fitted on the same data.")
    out: str | None = Field(None, description="Folder for the saved ensemble.")
    weights: list[Annotated[float, Field(ge=0, le=1e6)]] | None = Field(
        None, max_length=1000, description="Comma-separated member weights (default: equal)."
    )
    combine: Literal["log_softmax", "zscore"] = Field(
        "log_softmax", description="log_softmax (sum of member log-probabilities) or zscore."
    )


class BenchmarkConfig(Strict):
    """``chronorec benchmark``: its config-file section (``benchmark:``). The data folder, seed and
    threads are the config's shared ``data.data_dir``, ``seed`` and ``threads``."""

    datasets: list[str] = Field(["ml-1m", "beauty"], description="Comma-separated: ml-1m, beauty, ml-1m-full.")
    models: list[str] = Field(
        ["popular", "itemknn", "ease", "gru4rec", "sasrec"], description="Comma-separated preset names."
    )
    out: str = Field("benchmarks/results", description="Output folder for the JSON and Markdown results.")
    set: list[str] = Field(
        [], description="Override a preset value as MODEL.KEY=VALUE (JSON values; repeatable), e.g. sasrec.lr=0.001."
    )
    tag: str = Field("", description="Suffix for the output file names.")
    progress: bool = Field(True, description="Show training progress.")
    save_model: str | None = Field(
        None, description="Save each trained model under DIR/<dataset>-<model> (safetensors + JSON)."
    )
    aggregate: bool = Field(False, description="Only rebuild the summary table from the saved runs under OUT/runs.")
    refit: bool = Field(
        False,
        description="After the validated run, refit on training + validation events for the epochs and learning "
        "rates validation chose, and report the refit (and its ensemble with the validated model).",
    )
    refit_from: str | None = Field(
        None, description="Only the refit, following a finished run's JSON (one dataset and one model)."
    )

    @field_validator("datasets", "models", "set", mode="before")
    @classmethod
    def _comma_lists(cls, value: Any) -> Any:
        return value if not isinstance(value, str) else split_list(value)


__all__ = [
    "BenchmarkConfig",
    "BehaviorConfig",
    "EnsembleConfig",
    "FeaturesConfig",
    "ForecastConfig",
    "split_list",
]


class SynthConfig(Strict):
    """``chronorec datasets synth``: a Taobao-shaped synthetic log written chunk by chunk to Parquet."""

    out: str | None = Field(None, description="Folder to write: events/part-*.parquet, items.parquet, synth.json.")
    events: str = Field("1M", description="Number of events, e.g. 100M, 10M, 250K.")
    users: str = Field("10K", description="Number of users, e.g. 1M.")
    items: str = Field("40K", description="Number of items, e.g. 4M.")
    categories: int = Field(0, ge=0, le=10_000_000, description="Item categories (0: one per 400 items).")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed; the output depends only on it and the sizes.")
    chunk_events: str = Field("2M", description="Events held in memory at once (one Parquet file each).")


class StoreConfig(Strict):
    """``chronorec store build``: the out-of-core event store (DuckDB ingest, memory-mapped sequences)."""

    source: str | None = Field(None, description="Events: a CSV, Parquet or JSON Lines file, or a Parquet folder.")
    out: str | None = Field(None, description="Store folder to write (replaced atomically).")
    user_col: str = Field("user_id", description="User id column.")
    item_col: str = Field("item_id", description="Item id column.")
    time_col: str = Field("timestamp", description="Timestamp column (epoch numbers or date-time text).")
    behavior_col: str | None = Field("behavior", description="Behaviour column ('' for none).")
    format: Literal["csv", "parquet", "jsonl"] | None = Field(None, description="File format (default: from the name).")
    time_unit: Literal["auto", "s", "ms", "us", "ns"] = Field("auto", description="Unit of epoch numbers.")
    dedupe: bool = Field(True, description="Drop exact duplicate events.")
    memory_limit: str = Field("2GB", description="DuckDB's memory limit; beyond it sorts spill to disk.")
    threads: int | None = Field(None, ge=1, le=1024, description="DuckDB threads (default: all cores).")
