"""Every number a user can set has declared bounds: each numeric field of every settings model (config
sections, model configurations, service settings) and each numeric command-line option.

The bounds live where the option is declared (the pydantic field, or the item type of a list); the
CLI, config files and HTTP share them. A number without an upper bound is how ``--step-hours -1`` or
``-p dim=100000000`` reached the machine's memory before any check."""

from __future__ import annotations

import importlib
import pkgutil
import types
import typing

import annotated_types as at
import pytest
import typer
from pydantic import BaseModel

import chronorec
from chronorec.settings import Strict


def _all_settings_models() -> list[type[BaseModel]]:
    for mod in pkgutil.walk_packages(chronorec.__path__, "chronorec."):
        if ".cli" in mod.name or mod.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except ImportError:  # an optional extra that is not installed
            continue
    out, todo = [], [Strict]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            out.append(sub)
    return sorted(set(out), key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _bounds(metadata) -> tuple[bool, bool]:
    lo = hi = False
    for m in metadata:
        lo |= isinstance(m, at.Ge | at.Gt) or (isinstance(m, at.Interval) and (m.ge, m.gt) != (None, None))
        hi |= isinstance(m, at.Le | at.Lt) or (isinstance(m, at.Interval) and (m.le, m.lt) != (None, None))
        if hasattr(m, "metadata"):  # a FieldInfo inside Annotated
            a, b = _bounds(m.metadata)
            lo, hi = lo or a, hi or b
    return lo, hi


def _unbounded(ann, metadata=()) -> list[str]:
    """The numeric parts of annotation ``ann`` without both bounds (``metadata``: the field's own)."""
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(ann)
        return _unbounded(base, (*metadata, *meta))
    if origin in (typing.Union, types.UnionType):
        return [x for a in typing.get_args(ann) for x in _unbounded(a, metadata)]
    if origin in (list, tuple, set, frozenset):
        return [f"[{x}]" for a in typing.get_args(ann) if a is not Ellipsis for x in _unbounded(a)]
    if origin is dict:
        return [f"{{{x}}}" for x in _unbounded(typing.get_args(ann)[1])]
    if ann in (int, float):
        lo, hi = _bounds(metadata)
        return (
            []
            if lo and hi
            else [f"{ann.__name__} (lower {'set' if lo else 'missing'}, upper {'set' if hi else 'missing'})"]
        )
    return []


MODELS = _all_settings_models()

VALUES = "a value compared with or stored as data, not a size: any finite number (inf and NaN are refused)"
EXEMPT = {
    **{("Condition", op): VALUES for op in ("eq", "ne", "lt", "le", "gt", "ge")},
    **{(m, "context"): VALUES + "; at most 32 keys" for m in ("Event", "RecommendRequest")},
}
"""Fields whose numbers are data rather than sizes, with the reason."""


def test_the_walk_finds_the_settings_models():
    names = {c.__name__ for c in MODELS}
    assert {"DataConfig", "SplitConfig", "ServeSettings", "SASRecConfig", "TrainSettings"} <= names


@pytest.mark.parametrize("model", MODELS, ids=lambda c: f"{c.__module__.removeprefix('chronorec.')}.{c.__name__}")
def test_every_numeric_field_has_bounds(model):
    missing = {
        name: bad
        for name, f in model.model_fields.items()
        if (bad := _unbounded(f.annotation, f.metadata)) and (model.__name__, name) not in EXEMPT
    }
    assert not missing, f"{model.__name__}: numbers without declared bounds: {missing}"


def test_the_check_catches_an_unbounded_field():
    from pydantic import Field

    class Planted(Strict):
        ok: int = Field(1, ge=1, le=9)
        items: list[typing.Annotated[float, Field(gt=0, le=1)]] = []
        step: float = Field(1.0, gt=0)
        sizes: list[int] = []

    bad = {n: _unbounded(f.annotation, f.metadata) for n, f in Planted.model_fields.items()}
    assert bad == {
        "ok": [],
        "items": [],
        "step": ["float (lower set, upper missing)"],
        "sizes": ["[int (lower missing, upper missing)]"],
    }


def _bounded_field_names() -> set[str]:
    return {n for m in MODELS for n, f in m.model_fields.items() if not _unbounded(f.annotation, f.metadata)}


def _is_number(annotation) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_number(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_number(typing.get_args(annotation)[0])
    return annotation in (int, float)


def _numeric_options(group, prefix: str = ""):
    """(option, destination) of every numeric option without both ends of a range (typer's own
    parameters carry ``type_descriptor.annotation`` and ``min`` / ``max``)."""
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _numeric_options(cmd, f"{prefix}{name} ")
            continue
        for p in cmd.params:
            desc = getattr(p, "type_descriptor", None)
            if desc is not None and _is_number(desc.annotation) and (p.min is None or p.max is None):
                yield f"{prefix}{name} {p.opts[0]}", p.name


def test_every_numeric_command_line_option_is_a_bounded_field():
    """A numeric option is either a click range with both ends or carries a config field of that name
    whose bounds the config check enforces (the options are typed ``int | None`` and passed to it)."""
    from chronorec.cli.main import app

    group = typer.main.get_command(app)
    fields = _bounded_field_names()
    unbounded = [opt for opt, dest in _numeric_options(group) if dest not in fields]
    assert not unbounded, f"numeric options without bounds: {unbounded}"
