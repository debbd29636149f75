"""What a caller may ask of :class:`~chronorec.recommend.pipeline.RecommendPipeline`.

Per-request options (:class:`RecommendOptions` with its :class:`FilterOptions`,
:class:`RerankOptions` and :class:`BlendOptions`) and the defaults of a deployment
(:class:`RecommendSettings`, saved as ``recommend.json`` next to a model). All are strict
pydantic models: an unknown key is an error, not a silent no-op.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, StringConstraints

from chronorec.settings import Strict

MAX_HISTORY = 10_000
"""Longest explicit history accepted by a request (longer ones are refused, not truncated)."""
MAX_ID_LIST = 10_000
"""Longest allow / deny list accepted by a request."""

Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
"""An integer that fits the int64 id arrays (larger ones are refused at the boundary, not overflowed)."""
ItemId = Int64 | Annotated[str, StringConstraints(min_length=1, max_length=256)]
"""An external user or item id: an int64 integer or a non-empty string of at most 256 characters."""

_Behavior = Annotated[str, StringConstraints(max_length=64)]
_Category = Annotated[str, StringConstraints(max_length=256)]


class FilterOptions(Strict):
    """Which items may be recommended."""

    exclude_seen: bool | None = Field(
        None,
        description=(
            "Drop items of the user's history. null = the model's default: kept for models that rank "
            "repeat purchases (buyagain, repeat-blend, or a model whose training found repeating "
            "validation targets), dropped otherwise."
        ),
    )
    exclude_behaviors: list[_Behavior] | None = Field(
        None,
        max_length=64,
        description=(
            "Only drop items seen with one of these behaviour types (e.g. ['buy']). null = every seen item. "
            "Events without a behaviour type (training histories, whose types a saved model does not keep) "
            "are dropped only when this is null."
        ),
    )
    allow: list[ItemId] | None = Field(None, max_length=MAX_ID_LIST, description="Only these items (null = all).")
    deny: list[ItemId] = Field(default_factory=list, max_length=MAX_ID_LIST, description="Never these items.")
    categories: list[_Category] | None = Field(
        None, max_length=1000, description="Only items of these categories (needs an item table)."
    )
    exclude_categories: list[_Category] = Field(
        default_factory=list, max_length=1000, description="Never items of these categories (needs an item table)."
    )
    available_only: bool = Field(False, description="Only items whose availability flag is true.")
    min_price: float | None = Field(
        None, ge=0, le=1e15, description="Lowest price kept; items with an unknown price are dropped by a range."
    )
    max_price: float | None = Field(
        None, ge=0, le=1e15, description="Highest price kept; items with an unknown price are dropped by a range."
    )

    @property
    def wants_attributes(self) -> bool:
        """Whether a filter needs the item table (category, availability or price)."""
        return (
            self.categories is not None
            or bool(self.exclude_categories)
            or self.available_only
            or self.min_price is not None
            or self.max_price is not None
        )


class RerankOptions(Strict):
    """Interest and diversity re-ranking of a candidate pool (the top ``candidates`` by relevance)."""

    interest_weight: float = Field(
        0.0, ge=0, le=1, description="Weight of the user's category affinity mixed with the relevance."
    )
    diversity_weight: float = Field(0.0, ge=0, le=1, description="MMR lambda: 0 = relevance only.")
    diversity_by: Literal["auto", "embedding", "category"] = Field(
        "auto",
        description="Item similarity for MMR: embeddings, categories, or auto (embeddings when the model has them).",
    )
    candidates: int = Field(100, ge=1, le=10_000, description="Size of the pool re-ranked (the top by relevance).")

    @property
    def active(self) -> bool:
        return self.interest_weight > 0 or self.diversity_weight > 0


class BlendOptions(Strict):
    """Hybrid scoring for sparse histories: weights of model, popularity and content distributions."""

    model: float = Field(1.0, ge=0, le=1e6, description="Weight of the model's calibrated distribution.")
    popularity: float = Field(0.0, ge=0, le=1e6, description="Weight of the popularity distribution.")
    content: float = Field(0.0, ge=0, le=1e6, description="Weight of the content-similarity distribution.")
    popularity_source: Literal["global", "context"] = Field(
        "global", description="Global counts, or counts in the request's context (device, daypart, ...)."
    )
    sparse_below: int = Field(5, ge=0, le=100_000, description="Histories shorter than this are blended.")

    @property
    def active(self) -> bool:
        return self.popularity > 0 or self.content > 0


class RecommendOptions(Strict):
    """Everything a caller may set per request (unset parts fall back to the deployment's settings)."""

    k: int = Field(
        10, gt=0, le=100_000, description="List length; above the catalogue size it is clamped (with a warning)."
    )
    filters: FilterOptions | None = Field(None, description="Item filters (null = the deployment's).")
    rerank: RerankOptions | None = Field(None, description="Re-ranking (null = the deployment's).")
    blend: BlendOptions | None = Field(None, description="Sparse-history blending (null = the deployment's).")
    explain: bool = Field(False, description="Name the history items most similar to each recommendation.")
    n_explain: int = Field(3, ge=0, le=20, description="At most this many explaining history items per item.")


class RecommendSettings(Strict):
    """Defaults of a deployment: the calibrated temperature, the tuned blend, default filters and re-ranking."""

    temperature: float = Field(
        1.0, gt=0, le=1e6, description="Softmax temperature T of probabilities softmax(score / T)."
    )
    blend: BlendOptions = Field(default_factory=BlendOptions, description="Default blending of sparse histories.")
    filters: FilterOptions = Field(default_factory=FilterOptions, description="Default item filters.")
    rerank: RerankOptions = Field(default_factory=RerankOptions, description="Default re-ranking.")
    calibration: dict[str, Any] | None = Field(
        None, description="Report of the temperature fit (NLL and ECE before / after), for the record."
    )

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.model_dump(), indent=2))
        return p

    @classmethod
    def load(cls, path: str | Path) -> RecommendSettings:
        return cls.model_validate_json(Path(path).read_text())

    @classmethod
    def of_folder(cls, model_dir: str | Path, path: str | Path | None = None) -> RecommendSettings | None:
        """The settings a model folder's lists use: ``path`` where given, else ``<model_dir>/recommend.json``
        where it exists, else None (the defaults). The library, the CLI, the service and the batch job
        read them here."""
        if path is not None:
            return cls.load(path)
        own = Path(model_dir) / SETTINGS_FILE
        return cls.load(own) if own.exists() else None


SETTINGS_FILE = "recommend.json"
"""A model folder's list settings (:meth:`RecommendSettings.of_folder`)."""

__all__ = [
    "MAX_HISTORY",
    "SETTINGS_FILE",
    "MAX_ID_LIST",
    "BlendOptions",
    "FilterOptions",
    "ItemId",
    "RecommendOptions",
    "RecommendSettings",
    "RerankOptions",
]
