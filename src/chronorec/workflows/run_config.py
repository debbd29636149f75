"""One pydantic v2 configuration tree for the CLI and config files (YAML, TOML or JSON).

Unknown keys are rejected everywhere, and every error names the offending key, e.g.
``models.0.gru4rec.dimm: Extra inputs are not permitted``. Model parameters are never
redeclared here: each ``models`` entry is validated by the model class's own ``Config``
(chosen by its ``kind`` field, a discriminated union built lazily from the registry), plus an
optional ``name`` to tell two entries of the same kind apart.

Example (YAML)::

    data: {dataset: synthetic}
    split: {protocol: loo}
    models:
      - {kind: popular}
      - {kind: gru4rec, name: lstm, cell: lstm, epochs: 5}
    evaluation: {ks: [5, 10, 20]}
    output_dir: runs/example
    seed: 0
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, ValidationError, create_model, field_validator, model_validator

from chronorec.errors import ConfigError  # re-exported: chronorec.workflows.run_config.ConfigError
from chronorec.settings import ServeSettings
from chronorec.settings import Strict as _Strict
from chronorec.workflows.sections import (
    BehaviorConfig,
    BenchmarkConfig,
    EnsembleConfig,
    FeaturesConfig,
    ForecastConfig,
    StoreConfig,
    SynthConfig,
)


class DataConfig(_Strict):
    """Where the events come from: a file (``path`` + column mapping) or a named dataset."""

    path: str | None = Field(None, description="CSV / Parquet / JSON Lines file of events")
    dataset: str | None = Field(None, description="named dataset (see chronorec.datasets.formats), or 'synthetic'")
    data_dir: str | None = Field(
        None, description="folder holding named datasets (default: $CHRONOREC_DATA or ../shared/data)"
    )
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str | None = "timestamp"
    behavior_col: str | None = None
    value_col: str | None = None
    context_cols: list[str] = Field(default_factory=list)
    item_name_col: str | None = None
    basket_col: str | None = Field(None, description="basket / order / invoice id column (kept as 'basket')")
    session_col: str | None = Field(None, description="session id column (kept as 'session')")
    time_unit: str = Field("auto", description="unit of numeric timestamps: auto, s, ms, us, ns")
    format: str | None = Field(None, description="csv, tsv, parquet, jsonl (default: from the file name)")
    sep: str | None = Field(None, description="CSV separator (default: detected)")
    header: bool = Field(True, description="whether a CSV file starts with a header line")
    names: list[str] | None = Field(None, description="column names (for a file without a header, or to rename)")
    encoding: str = Field("utf-8-sig", description="text encoding of CSV / JSON files, e.g. latin-1")
    timezone: str | None = Field(None, description="IANA zone of naive date-times (default: read as UTC)")
    recipe: str | None = Field(None, description="data recipe: a bundled name (online-retail, taobao) or a YAML path")
    dedupe: bool = True
    min_user_events: int = Field(0, ge=0, le=1_000_000)
    min_item_events: int = Field(0, ge=0, le=1_000_000)
    reject_time_outliers: bool = Field(False, description="reject negative, pre-1990 and future timestamps")

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        if self.path is not None and self.dataset is not None:
            raise ValueError("give either data.path or data.dataset, not both")
        return self

    def read_options(self) -> dict[str, Any]:
        """Keyword arguments for ``chronorec.data.ingest.read_events``."""
        return {
            "user_col": self.user_col,
            "item_col": self.item_col,
            "time_col": self.time_col,
            "behavior_col": self.behavior_col,
            "value_col": self.value_col,
            "context_cols": list(self.context_cols),
            "item_name_col": self.item_name_col,
            "basket_col": self.basket_col,
            "session_col": self.session_col,
            "time_unit": self.time_unit,
            "fmt": self.format,
            "sep": self.sep,
            "header": self.header,
            "names": self.names,
            "encoding": self.encoding,
            "timezone": self.timezone,
            "recipe": self.recipe,
            "dedupe": self.dedupe,
            "min_user_events": self.min_user_events,
            "min_item_events": self.min_item_events,
            "reject_time_outliers": self.reject_time_outliers,
        }


Epoch = Annotated[int, Field(ge=-(2**41), le=2**41)]
"""Epoch seconds (about +-70,000 years: far enough for any log, small enough for every time type)."""


class SplitConfig(_Strict):
    protocol: Literal["loo", "temporal", "next-basket", "session"] = Field(
        "loo",
        description="loo (leave-one-out), temporal (global cut-off), next-basket (whole last basket) or session "
        "(the last item of each user's last session, given everything before it)",
    )
    cutoff: Epoch | str | None = Field(None, description="temporal test cut-off: epoch seconds or an ISO date")
    validation_cutoff: Epoch | str | None = None
    min_events: int = Field(
        3, ge=2, le=1_000_000, description="leave-one-out: users with fewer events are not evaluated"
    )
    min_baskets: int = Field(
        3, ge=3, le=1_000_000, description="next-basket: users with fewer baskets are not evaluated"
    )

    @model_validator(mode="after")
    def _cutoff_needed(self) -> "SplitConfig":
        if self.protocol == "temporal" and self.cutoff is None:
            raise ValueError("split.cutoff is required when split.protocol is 'temporal'")
        for name in ("cutoff", "validation_cutoff"):  # a date that does not parse is refused before any training
            try:
                self.to_seconds(getattr(self, name))
            except (ValueError, OverflowError) as e:
                raise ValueError(
                    f"split.{name} {getattr(self, name)!r} is not a time: give epoch seconds or an ISO date "
                    "such as 2024-03-01 or 2024-03-01T12:00"
                ) from e
        return self

    @staticmethod
    def to_seconds(value: int | str | None) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
            return int(value)
        import pandas as pd

        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return int(ts.timestamp())


class EvaluationConfig(_Strict):
    ks: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=lambda: [5, 10, 20], max_length=64)
    history: Literal["exclude", "include", "auto"] = Field(
        "auto", description="exclude or include history items, or auto: exclude when validation targets never repeat"
    )
    exclude_history: bool | None = Field(None, description="older spelling of history: true = exclude, false = include")
    allow_leak: bool = Field(False, description="score a model on data it was trained on (recorded as leaked)")
    model_dirs: list[str] = Field(default_factory=list, description="saved model folders to evaluate")

    @field_validator("ks")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v):
            raise ValueError("ks must be a non-empty list of positive integers")
        return sorted(set(v))


class RecommendConfig(_Strict):
    model: str | None = None
    users: list[str] = Field(default_factory=list)
    users_file: str | None = None
    k: int = Field(10, ge=1, le=100_000)
    out: str | None = None
    exclude_seen: bool | None = None  # None: the model's default (kept for buyagain / repeat-blend)


class _EntryMixin:
    """Adds ``params()`` to a model entry: the model's own parameters, without ``name``."""

    def params(self) -> dict[str, Any]:
        """The model's constructor keywords, including run settings left out of saved configs
        (e.g. ``tracking_uri``)."""
        out = self.model_dump(exclude={"name", "kind"})  # type: ignore[attr-defined]
        for key, info in type(self).model_fields.items():  # type: ignore[attr-defined]
            if info.exclude and getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @property
    def label(self) -> str:
        return self.name or self.kind  # type: ignore[attr-defined]


class _RootBase(_Strict):
    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig, description="chronorec features")
    behavior: BehaviorConfig = Field(default_factory=BehaviorConfig, description="chronorec predict-behavior")
    forecast: ForecastConfig = Field(default_factory=ForecastConfig, description="chronorec forecast")
    serve: ServeSettings = Field(default_factory=ServeSettings, description="chronorec serve")
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig, description="chronorec ensemble")
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig, description="chronorec benchmark")
    synth: SynthConfig = Field(default_factory=SynthConfig, description="chronorec datasets synth")
    store: StoreConfig = Field(default_factory=StoreConfig, description="chronorec store build")
    output_dir: str | None = None
    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed: 0 .. 2^32 - 1")
    threads: int | None = Field(None, ge=1, le=1024)

    @model_validator(mode="after")
    def _unique_names(self):
        labels = [m.label for m in getattr(self, "models", [])]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"models: duplicate names {dup}; give entries of the same kind distinct 'name's")
        return self


def available_kinds() -> list[str]:
    from chronorec.models import registry

    return registry.kinds()


@functools.cache
def _entry_classes() -> tuple[type[BaseModel], ...]:
    """One entry class per model kind whose module imports: the model's Config plus ``name``."""
    from chronorec.models import registry

    out = []
    for kind in registry.kinds():
        module = registry.module(kind)
        try:
            cls = registry.get(kind)
        except ModuleNotFoundError as e:  # a model module not written/installed yet: leave the kind out
            if e.name == module:
                continue
            raise
        base = cls.Config
        if "kind" not in base.model_fields:
            raise TypeError(f"{cls.__name__}.Config has no 'kind' field; cannot use it in a config file")
        entry = create_model(
            f"{base.__name__}Entry",
            __base__=(base, _EntryMixin),
            name=(str | None, Field(None, description="label of this entry (default: its kind)")),
        )
        out.append(entry)
    return tuple(out)


@functools.cache
def config_model() -> type[BaseModel]:
    """The root configuration class (built on first use: importing it imports the model modules)."""
    entries = _entry_classes()
    if not entries:
        raise RuntimeError("no model kinds could be imported")
    entry_type = Annotated[Union[entries], Field(discriminator="kind")] if len(entries) > 1 else entries[0]  # noqa: UP007
    return create_model(
        "ChronorecConfig",
        __base__=_RootBase,
        models=(list[entry_type], Field(default_factory=list, description="models to train, by kind")),
    )


@functools.cache
def lean_config_model() -> type[BaseModel]:
    """The root configuration class of a config without ``models``: the same sections, no model
    modules imported (so a command that trains nothing, or refuses its options, starts without torch)."""
    return create_model(
        "ChronorecConfig",
        __base__=_RootBase,
        models=(list[Any], Field(default_factory=list, max_length=0, description="models to train, by kind")),
    )


def model_entry(params: dict[str, Any]) -> Any:
    """Validate one model entry (a dict with ``kind``) into its config entry."""
    return parse_config({"models": [params]}).models[0]


def format_validation_error(err: ValidationError, source: str = "config") -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "union_tag_invalid":
            msg = f"unknown model kind {e['input'].get('kind')!r}; expected one of {available_kinds()}"
        elif e["type"] == "union_tag_not_found":
            msg = "each model entry needs a 'kind'"
        lines.append(f"  {key}: {msg}")
    return f"{source}: invalid configuration ({len(lines)} error{'s' if len(lines) != 1 else ''}):\n" + "\n".join(lines)


def parse_config(data: dict[str, Any] | None, *, source: str = "config") -> Any:
    """Validate a plain dict into the configuration tree; raises ``ConfigError`` naming the key."""
    data = data or {}
    root = config_model() if data.get("models") else lean_config_model()
    try:
        return root.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML (.yaml/.yml), TOML (.toml) or JSON (.json) file into a dict, without validating."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    if not p.is_file():
        raise ConfigError(f"{p}: is a folder, not a config file; give a .yaml, .toml or .json file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read the config file ({e})") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"{p}: unknown config format {suffix!r}; use .yaml, .yml, .toml or .json")
    except ConfigError:
        raise
    except Exception as e:  # parser errors carry line numbers
        raise ConfigError(f"{p}: cannot parse: {' '.join(str(e).split())[:300]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Any:
    """Read and validate a config file. ``overrides`` (nested dicts) are merged over the file's values."""
    data = read_config_file(path)
    if overrides:
        data = merge(data, overrides)
    return parse_config(data, source=str(path))


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values of ``over`` win, ``None`` values in ``over`` are ignored."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            continue
        if isinstance(v, dict):
            out[k] = merge(out[k] if isinstance(out.get(k), dict) else {}, v)
        else:
            out[k] = v
    return out
