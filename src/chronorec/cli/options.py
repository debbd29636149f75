"""The options commands share, and the mechanism that hands a group of them to a command as one object.

Options default to ``None`` so that "not given" can be told apart from a value; the defaults live in
the config models, whose field descriptions are the options' help texts where the option is a field
of a command section (:func:`field_option`).

Typer reads a command's options from its signature. A command with many options declares a
parameter typed with an *option group* (a dataclass of annotated option fields, :func:`option_group`)
and is decorated with :func:`grouped`: the command line then shows the group's fields as options, in
place of that parameter, and the function gets them back as one instance of the group.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
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
        "features / predict-behavior also taobao; forecast: online-retail, taobao, ml-100k (its series).",
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


# ---------------------------------------------------------------------- option groups
def option_group(cls: type) -> type:
    """Make ``cls`` (annotated fields with defaults) a dataclass that :func:`grouped` expands into options."""
    cls = dataclasses.dataclass(cls)
    cls.__option_group__ = True
    return cls


def grouped(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with each parameter typed as an :func:`option_group` shown as that group's options
    (in its place, in field order) and passed back to ``command`` as one instance of the group.

    A group parameter after one with a default needs a placeholder default (``= None``); it is
    never used, the group's fields carry the defaults. Typer reads the wrapper's ``__signature__``
    (and ``__annotations__``), so ``--help`` shows exactly the options a flat signature would.
    """
    hints = typing.get_type_hints(command, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for p in inspect.signature(command).parameters.values():
        kind = hints.get(p.name)
        if getattr(kind, "__option_group__", False):
            fields = typing.get_type_hints(kind, include_extras=True)
            groups[p.name] = (kind, [f.name for f in dataclasses.fields(kind)])
            params += [_keyword(f.name, fields[f.name], f.default) for f in dataclasses.fields(kind)]
        else:
            params.append(_keyword(p.name, hints.get(p.name, p.annotation), p.default))

    @functools.wraps(command)
    def run(**options: Any) -> Any:
        for name, (kind, fields) in groups.items():
            options[name] = kind(**{f: options.pop(f) for f in fields})
        return command(**options)

    run.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return run


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    default = inspect.Parameter.empty if default is dataclasses.MISSING else default
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def plain(value: Any) -> Any:
    """An option's value as config data: paths as text, an empty list as None."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value] or None
    return value


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


def data_section(options: Any) -> dict[str, Any]:
    """The ``data`` config section from an object's data options (attributes named like the options; absent: None)."""
    return {key: plain(getattr(options, opt, None)) for opt, key in _DATA_OPTIONS.items()}


def section(section_model: Any, options: Any) -> dict[str, Any]:
    """A command section's overrides: the object's attributes named like the section model's fields."""
    return {name: plain(getattr(options, name)) for name in section_model.model_fields if hasattr(options, name)}


@option_group
class DataArgs:
    """The data options: where the events are and how their columns are named."""

    data: DataOpt = None
    dataset: DatasetOpt = None
    data_dir: DataDirOpt = None
    user_col: UserColOpt = None
    item_col: ItemColOpt = None
    time_col: TimeColOpt = None
    behavior_col: BehaviorColOpt = None
    value_col: ValueColOpt = None
    context_col: ContextColOpt = None
    time_unit: TimeUnitOpt = None


@option_group
class SplitArgs:
    """The split options: the evaluation protocol and its cut-offs."""

    split: SplitOpt = None
    cutoff: CutoffOpt = None
    validation_cutoff: ValCutoffOpt = None
    min_events: MinEventsOpt = None


def run_overrides(data: DataArgs, split: SplitArgs, seed: int | None, threads: int | None) -> dict[str, Any]:
    """Config overrides from a command's data and split options, seed and threads."""
    return {
        "data": data_section(data),
        "split": {
            "protocol": split.split,
            "cutoff": split.cutoff,
            "validation_cutoff": split.validation_cutoff,
            "min_events": split.min_events,
        },
        "seed": seed,
        "threads": threads,
    }
