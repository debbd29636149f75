"""What every command shares: the data / split / run options, the one error handler, config loading.

Every command takes ``--config FILE`` (YAML, TOML or JSON; :mod:`chronorec.workflows.config`):
the file's values are the base and the options given on the command line win. Options default
to ``None`` here so that "not given" can be told apart from a value; the defaults live in the
config models, whose field descriptions are the options' help texts where the option is a field
of a command section (:func:`field_option`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

# ---------------------------------------------------------------------- shared options
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML / TOML / JSON config file carrying any of these options (command-line options win).",
    ),
]
DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Events file (CSV/TSV/Parquet/JSON Lines, optionally compressed) or a folder written by `chronorec ingest`.",
    ),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Named dataset instead of --data: ml-1m, ml-1m-full, beauty, ml-100k, 'synthetic'; "
        "features / predict-behavior: taobao; forecast: online-retail.",
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Folder holding the named datasets (default: $CHRONOREC_DATA, else ../shared/data)."
    ),
]
UserColOpt = Annotated[
    str | None, typer.Option("--user-col", help="Name of the user id column of the events (default user_id).")
]
ItemColOpt = Annotated[
    str | None, typer.Option("--item-col", help="Name of the item id column of the events (default item_id).")
]
TimeColOpt = Annotated[
    str | None, typer.Option("--time-col", help="Name of the timestamp column of the events (default timestamp).")
]
BehaviorColOpt = Annotated[
    str | None, typer.Option("--behavior-col", help="Optional behaviour type column (e.g. view/cart/buy).")
]
ValueColOpt = Annotated[
    str | None, typer.Option("--value-col", help="Optional numeric value column (rating, price, ...).")
]
ContextColOpt = Annotated[
    list[str] | None,
    typer.Option("--context-col", help="Extra context column to keep (repeat the option for several)."),
]
TimeUnitOpt = Annotated[
    str | None, typer.Option("--time-unit", help="Unit of numeric timestamps: auto, s, ms, us or ns (default auto).")
]
SplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="Evaluation protocol: loo (leave-one-out, default), temporal (global cut-off, needs --cutoff) or "
        "next-basket (each user's whole last basket; baskets from a basket file, --basket-col or shared timestamps) "
        "or session (next item within the user's last session; needs --session-col).",
    ),
]
CutoffOpt = Annotated[
    str | None,
    typer.Option("--cutoff", help="Temporal split: test cut-off as epoch seconds or an ISO date (e.g. 2024-03-01)."),
]
ValCutoffOpt = Annotated[
    str | None,
    typer.Option("--validation-cutoff", help="Temporal split: validation cut-off (default: same as --cutoff)."),
]
MinEventsOpt = Annotated[
    int | None,
    typer.Option("--min-events", help="Leave-one-out: users with fewer events are not evaluated (default 3)."),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads for torch (default: torch's choice).")]


def field_option(model: Any, field: str, *names: str, help: str | None = None, **kwargs: Any) -> Any:
    """A typer option for ``model.<field>``: help from the field's description plus its default."""
    info = model.model_fields[field]
    default = info.get_default(call_default_factory=True)
    if isinstance(default, list):
        default = ",".join(map(str, default))
    elif isinstance(default, bool):
        default = "on" if default else "off"
    text = help or info.description or ""
    if default is not None and default != "" and "(default" not in text:
        text = f"{text} (default {default})"
    return typer.Option(*(names or (f"--{field.replace('_', '-')}",)), help=text, **kwargs)


# ---------------------------------------------------------------------- logging
LOG_LEVELS = ("debug", "info", "warning", "error")


class _CliHandler(logging.StreamHandler):
    """The handler the CLI puts on the ``chronorec`` logger (replaced, not stacked, per invocation)."""


def configure_logging(level: str = "info") -> None:
    """Send the library's log records (epoch lines, warnings) to stderr as plain lines.

    The library only logs (``logging.getLogger(__name__)``); the command line decides where the
    records go. One handler on the ``chronorec`` logger, writing to the current stderr.
    """
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    logger = logging.getLogger("chronorec")
    for h in [h for h in logger.handlers if isinstance(h, _CliHandler)]:
        logger.removeHandler(h)
    handler = _CliHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


# ---------------------------------------------------------------------- the one error handler
def report_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``command`` turning the errors a user can fix into one red ``error: ...`` line and exit code 1.

    User errors are :class:`chronorec.errors.ChronorecError` (config, ingest, data, model load,
    not fitted), a missing file and a pydantic validation error of user input. Anything else is a
    bug and keeps its traceback.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from chronorec.errors import ChronorecError
        from chronorec.workflows.config import format_validation_error

        try:
            return command(*args, **kwargs)
        except (ChronorecError, FileNotFoundError) as e:
            message = str(e)
        except ValidationError as e:
            message = format_validation_error(e, e.title)
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)

    return run


# ---------------------------------------------------------------------- config loading
def load_config(config: Path | None, overrides: dict[str, Any]) -> Any:
    """The validated config tree: the file's values (if any) with the command-line values on top."""
    from chronorec.workflows.config import merge, parse_config, read_config_file

    raw = read_config_file(config) if config else {}
    data_over = overrides.get("data") or {}
    if "data" in raw and isinstance(raw["data"], dict):  # a source given on the command line replaces the file's
        if data_over.get("path") is not None:
            raw["data"] = {k: v for k, v in raw["data"].items() if k != "dataset"}
        if data_over.get("dataset") is not None:
            raw["data"] = {k: v for k, v in raw["data"].items() if k != "path"}
    return parse_config(merge(raw, overrides), source=str(config) if config else "command line")


_DATA_OPTIONS = {
    "data": "path",
    "dataset": "dataset",
    "data_dir": "data_dir",
    "user_col": "user_col",
    "item_col": "item_col",
    "time_col": "time_col",
    "behavior_col": "behavior_col",
    "value_col": "value_col",
    "context_col": "context_cols",
    "time_unit": "time_unit",
}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value] or None
    return value


def data_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` section from a command's data options (its ``locals()``; absent ones are None)."""
    return {key: _plain(options.get(opt)) for opt, key in _DATA_OPTIONS.items()}


def run_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Config overrides from the data, split, seed and thread options of a command (its ``locals()``)."""
    return {
        "data": data_overrides(options),
        "split": {
            "protocol": options.get("split"),
            "cutoff": options.get("cutoff"),
            "validation_cutoff": options.get("validation_cutoff"),
            "min_events": options.get("min_events"),
        },
        "seed": options.get("seed"),
        "threads": options.get("threads"),
    }


def section_overrides(section_model: Any, options: dict[str, Any]) -> dict[str, Any]:
    """A command section's overrides: the options (a command's ``locals()``) named like its fields."""
    return {name: _plain(options.get(name)) for name in section_model.model_fields if name in options}


# ---------------------------------------------------------------------- data and split
def load_events(cfg: Any) -> Any:
    """The EventLog described by the config's data section (and its seed, for the synthetic set)."""
    from chronorec.data.eventlog import EventLog
    from chronorec.errors import ConfigError

    d = cfg.data
    if d.dataset is not None:
        if d.dataset.lower() == "synthetic":
            from chronorec.datasets.synthetic import make_ecommerce_log

            return make_ecommerce_log(seed=cfg.seed)
        from chronorec.datasets.formats import load_dataset

        return load_dataset(d.dataset, data_dir=d.data_dir)
    if d.path is None:
        raise ConfigError("no data: give --data PATH or --dataset NAME (or data.path / data.dataset in --config)")
    p = Path(d.path)
    if p.is_dir() and ((p / "eventlog.json").exists() or (p / "store.json").exists()):  # ingest / store build
        return EventLog.load(p)
    from chronorec.data import read_events

    return read_events(p, **d.read_options())


def data_label(cfg: Any) -> str:
    d = cfg.data
    if d.dataset is not None:
        return f"dataset:{d.dataset}" + (f" (data_dir={d.data_dir})" if d.data_dir else "")
    return str(d.path)


def make_split(log: Any, cfg: Any) -> Any:
    from chronorec.evaluation.split import leave_one_out, temporal_split
    from chronorec.workflows.config import SplitConfig

    s = cfg.split
    if s.protocol == "loo":
        return leave_one_out(log, min_events=s.min_events)
    if s.protocol == "session":
        from chronorec.evaluation.split import session_split

        return session_split(log)
    if s.protocol == "next-basket":
        from chronorec.evaluation.basket import next_basket_split

        return next_basket_split(log, min_baskets=s.min_baskets)
    return temporal_split(
        log, test_cutoff=SplitConfig.to_seconds(s.cutoff), validation_cutoff=SplitConfig.to_seconds(s.validation_cutoff)
    )


def require_fitted(model: Any) -> Any:
    """``model`` itself, or :class:`chronorec.errors.NotFittedError` (one line) when it was never fitted."""
    from chronorec.errors import NotFittedError

    if getattr(model, "items", None) is None:
        raise NotFittedError(f"{type(model).__name__} is not fitted: train it (chronorec train) before recommending")
    return model


def set_threads(threads: int | None) -> None:
    """torch's CPU threads (the training runtime's helper; nothing when ``threads`` is None)."""
    from chronorec.training.runtime import set_threads as _set

    _set(threads)


# ---------------------------------------------------------------------- small helpers
def parse_value(text: str) -> Any:
    """A ``key=value`` option's value, read as plain YAML (numbers, lists, ...): tags such as
    ``!!python/object`` are refused, never constructed."""
    import yaml

    from chronorec.errors import ConfigError

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        first = " ".join(str(e).split())[:200]
        raise ConfigError(
            f"cannot read the value {text[:80]!r}: {first} (plain values only: numbers, text, lists)"
        ) from None


def split_ids(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def typed_ids(ids: list[Any], idmap: Any) -> list[Any]:
    """Command-line ids are text; convert them to the id map's integer type where it has one."""
    import numpy as np

    from chronorec.errors import ConfigError

    if np.issubdtype(np.asarray(idmap.external_ids).dtype, np.integer):
        try:
            out = [int(x) for x in ids]
        except ValueError as e:
            raise ConfigError(f"this model's ids are integers: {e}") from None
        info = np.iinfo(np.int64)
        huge = [x for x in out if not info.min <= x <= info.max]
        if huge:
            raise ConfigError(f"id {huge[0]} is out of range: this model's ids are 64-bit integers")
        return out
    return [str(x) for x in ids]


def json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
