"""What every command shares: the one error handler, logging, config loading, id parsing.

Every command takes ``--config FILE`` (YAML, TOML or JSON; :mod:`chronorec.workflows.run_config`):
the file's values are the base and the options given on the command line win. The shared options
and option groups are in :mod:`chronorec.cli.options`; the use cases the commands call are in
:mod:`chronorec.workflows.run`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

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
        from chronorec.workflows.run_config import format_validation_error

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
    from chronorec.workflows.run_config import merge, parse_config, read_config_file

    raw = read_config_file(config) if config else {}
    data_over = overrides.get("data") or {}
    if "data" in raw and isinstance(raw["data"], dict):  # a source given on the command line replaces the file's
        if data_over.get("path") is not None:
            raw["data"] = {k: v for k, v in raw["data"].items() if k != "dataset"}
        if data_over.get("dataset") is not None:
            raw["data"] = {k: v for k, v in raw["data"].items() if k != "path"}
    return parse_config(merge(raw, overrides), source=str(config) if config else "command line")


def require_fitted(model: Any) -> Any:
    """``model`` itself, or :class:`chronorec.errors.NotFittedError` (one line) when it was never fitted."""
    from chronorec.errors import NotFittedError

    if model.items is None:
        raise NotFittedError(f"{type(model).__name__} is not fitted: train it (chronorec train) before recommending")
    return model


def set_threads(threads: int | None) -> None:
    """torch's CPU threads (the training runtime's helper; nothing when ``threads`` is None)."""
    from chronorec.training.runtime import set_threads as _set

    _set(threads)


# ---------------------------------------------------------------------- small helpers
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


def timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
