"""From model scores to the recommendation lists a product shows.

One pipeline serves the library, ``chronorec recommend`` and ``chronorec serve``:

1. **score** -- ``model.score`` over the whole catalogue for each history;
2. **calibrate** -- scores become probabilities over the items the user has not seen,
   ``softmax(score / T)`` with a temperature ``T`` fitted on validation data
   (:func:`calibrate_temperature`), so scores are comparable across users; an empty history
   gets the popularity distribution (global or in the request's context);
3. **blend** -- sparse histories mix model, popularity and content-similarity distributions
   with weights tuned on validation data (:func:`tune_blend`);
4. **filter** -- seen items (all, or only those seen with given behaviour types), allow and deny
   lists, item attributes from an :class:`ItemTable` (category, availability, price range);
5. **re-rank** -- interest (the user's category affinity mixed with the relevance by a weight)
   and diversity (maximal marginal relevance over item embeddings or categories);
6. **explain** -- for each recommended item, the history items most similar to it.

Without any option the pipeline ranks by the raw model score, exactly as
``Recommender.recommend`` does (ties broken by the smaller internal id), and reports the
calibrated probability as ``score``. :func:`evaluate_postprocessing` measures what each knob
costs: NDCG@10 (via :mod:`chronorec.evaluation.ranking`), coverage, intra-list diversity and novelty.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from chronorec.data import columns as C
from chronorec.evaluation.calibration import expected_calibration_error, reliability_curve

MAX_HISTORY = 10_000
"""Longest explicit history accepted by a request (longer ones are refused, not truncated)."""
MAX_ID_LIST = 10_000
"""Longest allow / deny list accepted by a request."""
DAYPARTS = ((0, 6, "night"), (6, 12, "morning"), (12, 18, "afternoon"), (18, 24, "evening"))

ItemId = StrictInt | Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ============================================================================ options
class FilterOptions(_Strict):
    """Which items may be recommended."""

    exclude_seen: bool = Field(True, description="Drop items of the user's history.")
    exclude_behaviors: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
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
    categories: list[Annotated[str, StringConstraints(max_length=256)]] | None = Field(
        None, max_length=1000, description="Only items of these categories (needs an item table)."
    )
    exclude_categories: list[Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=list, max_length=1000
    )
    available_only: bool = Field(False, description="Only items whose availability flag is true.")
    min_price: float | None = Field(None, ge=0, description="Items with an unknown price are dropped by a range.")
    max_price: float | None = Field(None, ge=0)

    def is_default(self) -> bool:
        return self == FilterOptions()


class RerankOptions(_Strict):
    """Interest and diversity re-ranking of a candidate pool (the top ``candidates`` by relevance)."""

    interest_weight: float = Field(0.0, ge=0, le=1, description="Weight of the user's category affinity.")
    diversity_weight: float = Field(0.0, ge=0, le=1, description="MMR lambda: 0 = relevance only.")
    diversity_by: Literal["auto", "embedding", "category"] = "auto"
    candidates: int = Field(100, ge=1, le=10_000)

    @property
    def active(self) -> bool:
        return self.interest_weight > 0 or self.diversity_weight > 0


class BlendOptions(_Strict):
    """Hybrid scoring for sparse histories: weights of model, popularity and content distributions."""

    model: float = Field(1.0, ge=0)
    popularity: float = Field(0.0, ge=0)
    content: float = Field(0.0, ge=0)
    popularity_source: Literal["global", "context"] = "global"
    sparse_below: int = Field(5, ge=0, description="Histories shorter than this are blended.")

    @property
    def active(self) -> bool:
        return self.popularity > 0 or self.content > 0


class RecommendOptions(_Strict):
    """Everything a caller may set per request."""

    k: int = Field(10, gt=0, description="List length; above the catalogue size it is clamped (with a warning).")
    filters: FilterOptions | None = None
    rerank: RerankOptions | None = None
    blend: BlendOptions | None = None
    explain: bool = False
    n_explain: int = Field(3, ge=0, le=20)


class RecommendSettings(_Strict):
    """Defaults of a deployment: the calibrated temperature, the tuned blend, default filters and re-ranking."""

    temperature: float = Field(1.0, gt=0)
    blend: BlendOptions = Field(default_factory=BlendOptions)
    filters: FilterOptions = Field(default_factory=FilterOptions)
    rerank: RerankOptions = Field(default_factory=RerankOptions)
    calibration: dict[str, Any] | None = None

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.model_dump(), indent=2))
        return p

    @classmethod
    def load(cls, path: str | Path) -> "RecommendSettings":
        return cls.model_validate_json(Path(path).read_text())


# ============================================================================ ids
def to_internal(idmap: Any, values: Sequence[Any]) -> np.ndarray:
    """External ids -> internal ids (0 = unknown), accepting ``"12"`` for integer ids and ``12`` for text ids."""
    vals = list(values)
    if not vals:
        return np.zeros(0, np.int64)
    if np.issubdtype(np.asarray(idmap.external_ids).dtype, np.integer):
        conv = []
        for v in vals:
            try:
                conv.append(int(v) if not isinstance(v, bool) else -(2**62))
            except (TypeError, ValueError):
                conv.append(-(2**62))  # never an id
        return idmap.to_internal(np.asarray(conv, dtype=np.int64))
    return idmap.to_internal(np.asarray([str(v) for v in vals], dtype=object))


# ============================================================================ item table
class ItemTable:
    """Item attributes aligned with a model's internal ids (index 0 = padding).

    Items missing from the table have no category, no price (dropped by a price range) and
    count as available.
    """

    def __init__(
        self,
        *,
        category: np.ndarray,
        category_names: list[str],
        available: np.ndarray,
        price: np.ndarray,
        names: np.ndarray | None = None,
    ):
        self.category = category  # int64 codes, 0 = none
        self.category_names = category_names  # code c -> category_names[c - 1]
        self.available = available
        self.price = price
        self.names = names

    @property
    def has_categories(self) -> bool:
        return bool(self.category_names) and bool((self.category > 0).any())

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        items: Any,
        *,
        category_col: str = "category",
        available_col: str = "available",
        price_col: str = "price",
        name_col: str = "name",
    ) -> "ItemTable":
        """Build from a frame with ``item_id`` and any of category / available / price / name columns."""
        if C.ITEM not in df.columns:
            raise ValueError(f"item table: missing column {C.ITEM!r} (columns: {list(df.columns)})")
        n = items.size + 1
        idx = to_internal(items, df[C.ITEM].tolist())
        keep = idx > 0
        df, idx = df[keep], idx[keep]
        category = np.zeros(n, np.int64)
        names_list: list[str] = []
        if category_col in df.columns:
            cats = df[category_col].astype("string")
            codes, uniques = pd.factorize(cats, sort=True)
            category[idx] = np.where(codes >= 0, codes + 1, 0)
            names_list = [str(u) for u in uniques]
        available = np.ones(n, bool)
        if available_col in df.columns:
            available[idx] = df[available_col].astype(bool).to_numpy()
        available[0] = False
        price = np.full(n, np.nan)
        if price_col in df.columns:
            price[idx] = pd.to_numeric(df[price_col], errors="coerce").to_numpy(dtype=np.float64)
        names = None
        if name_col in df.columns:
            names = np.full(n, None, dtype=object)
            names[idx] = df[name_col].astype(str).to_numpy()
        return cls(category=category, category_names=names_list, available=available, price=price, names=names)

    @classmethod
    def read(cls, path: str | Path, items: Any, **kwargs: Any) -> "ItemTable":
        """Read a Parquet or CSV item table (``item_id`` plus attribute columns)."""
        p = Path(path)
        if p.suffix.lower() == ".parquet":
            df = pd.read_parquet(p)
        elif p.suffix.lower() in (".csv", ".tsv"):
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
        else:
            raise ValueError(f"{p}: item table must be .parquet, .csv or .tsv")
        return cls.from_frame(df, items, **kwargs)

    def codes(self, names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Category codes for names, and the names that are unknown."""
        lookup = {c: i + 1 for i, c in enumerate(self.category_names)}
        return np.array([lookup[c] for c in names if c in lookup], np.int64), [c for c in names if c not in lookup]


# ============================================================================ popularity
def daypart(timestamp: float) -> str:
    """night (0-6h), morning, afternoon, evening (18-24h), in UTC."""
    hour = int((int(timestamp) % 86_400) // 3600)
    return next(name for a, b, name in DAYPARTS if a <= hour < b)


def context_keys(context: Mapping[str, Any] | None) -> list[str]:
    """``key=value`` strings of a request context; ``time`` (epoch seconds) becomes ``daypart=...``."""
    out = []
    for key, value in sorted((context or {}).items()):
        if value is None:
            continue
        if key in ("time", C.TIME):
            try:
                out.append(f"daypart={daypart(float(value))}")
            except (TypeError, ValueError, OverflowError):
                continue
        else:
            out.append(f"{key}={value}")
    return out


class PopularityIndex:
    """Global item counts plus counts per context value (``device=mobile``, ``daypart=evening``)."""

    def __init__(self, global_counts: np.ndarray, context_counts: dict[str, np.ndarray] | None = None):
        self.global_counts = np.asarray(global_counts, dtype=np.float64).copy()
        self.global_counts[0] = 0
        self.context_counts = {k: np.asarray(v, np.float64) for k, v in (context_counts or {}).items()}

    @classmethod
    def from_log(cls, log: Any, items: Any, *, context_columns: Sequence[str] | None = None) -> "PopularityIndex":
        """Counts from an EventLog, in the id space of ``items`` (a model's IdMap)."""
        ev = log.events
        lut = np.zeros(log.n_items + 1, np.int64)
        lut[1:] = to_internal(items, log.items.external_ids.tolist())
        idx = lut[ev[C.ITEM_IDX].to_numpy()]
        n = items.size + 1
        index = cls(np.bincount(idx, minlength=n)[:n])
        for col in context_columns if context_columns is not None else log.context_columns:
            vals = ev[col].astype(str).to_numpy()
            for v in pd.unique(vals):
                index.context_counts[f"{col}={v}"] = np.bincount(idx[vals == v], minlength=n)[:n].astype(np.float64)
        parts = np.array([daypart(t) for t in ev[C.TIME].to_numpy()]) if len(ev) else np.zeros(0, str)
        for _, _, name in DAYPARTS:
            index.context_counts[f"daypart={name}"] = np.bincount(idx[parts == name], minlength=n)[:n].astype(
                np.float64
            )
        return index

    def add(self, item: int, keys: Sequence[str]) -> None:
        """Count one live event of internal ``item`` (0 = unknown: ignored)."""
        if item <= 0 or item >= len(self.global_counts):
            return
        self.global_counts[item] += 1
        for key in keys:
            arr = self.context_counts.get(key)
            if arr is None:
                arr = self.context_counts[key] = np.zeros(len(self.global_counts))
            arr[item] += 1

    def distribution(self, keys: Sequence[str] = ()) -> np.ndarray:
        """Probabilities over items: global, or the mean of the known contexts' (smoothed by global)."""
        g = self.global_counts
        total = g.sum()
        glob = g / total if total > 0 else np.r_[0.0, np.full(len(g) - 1, 1.0 / max(len(g) - 1, 1))]
        parts = []
        for key in keys:
            arr = self.context_counts.get(key)
            if arr is not None and arr.sum() > 0:
                parts.append(0.9 * arr / arr.sum() + 0.1 * glob)
        return np.mean(parts, axis=0) if parts else glob


# ============================================================================ results
@dataclass
class RankedList:
    """One recommendation list, in internal ids."""

    items: np.ndarray
    scores: np.ndarray  # calibrated probabilities (or blended)
    strategy: str  # "model", "blend", "popularity"
    explanations: list[list[tuple[int, float]]] | None = None
    warnings: list[str] = field(default_factory=list)
    keys: np.ndarray | None = None  # the ranking keys before re-ranking (raw model scores where not blended)


@dataclass
class HistoryEvents:
    """A history as internal item ids with optional behaviour types (oldest first)."""

    items: np.ndarray
    behaviors: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.items)


def _softmax_masked(x: np.ndarray, ok: np.ndarray, temperature: float) -> np.ndarray:
    z = np.where(ok, x.astype(np.float64) / temperature, -np.inf)
    m = z[ok].max() if ok.any() else 0.0
    e = np.where(ok, np.exp(z - m), 0.0)
    s = e.sum()
    return e / s if s > 0 else e


def _normalise(p: np.ndarray, ok: np.ndarray) -> np.ndarray:
    q = np.where(ok, p, 0.0)
    s = q.sum()
    if s > 0:
        return q / s
    n = ok.sum()
    return ok / n if n else q


def item_embeddings(model: Any) -> np.ndarray | None:
    """Unit-norm item embeddings (n_items + 1, d) of a neural model, or None."""
    module = getattr(model, "module", None)
    emb = getattr(module, "item_emb", None) if module is not None else None
    if emb is None or not hasattr(emb, "weight"):
        return None
    w = emb.weight.detach().float().cpu().numpy().astype(np.float32)
    norm = np.linalg.norm(w, axis=1, keepdims=True)
    out = w / np.maximum(norm, 1e-12)
    out[0] = 0
    return out


# ============================================================================ pipeline
class RecommendPipeline:
    """Scores -> probabilities -> blend -> filters -> re-rank -> explanations, for any fitted model.

    Args:
        model: a fitted or loaded ``chronorec`` model.
        items: optional :class:`ItemTable` (categories, availability, prices, names).
        settings: defaults (temperature, blend, filters, re-ranking).
        popularity: a :class:`PopularityIndex` (default: the model's training counts, no contexts).
    """

    def __init__(
        self,
        model: Any,
        *,
        items: ItemTable | None = None,
        settings: RecommendSettings | None = None,
        popularity: PopularityIndex | None = None,
    ):
        self.model = model
        self.item_table = items
        self.settings = settings or RecommendSettings()
        self.popularity = popularity or PopularityIndex(model.popularity)
        self._emb: np.ndarray | None | bool = False  # False = not computed yet
        self.n_items = model.n_items
        self._ext = model.items.external_ids
        self._names = self._item_names()

    # ---------------------------------------------------------------- helpers
    @property
    def embeddings(self) -> np.ndarray | None:
        if self._emb is False:
            self._emb = item_embeddings(self.model)
        return self._emb  # type: ignore[return-value]

    def _item_names(self) -> np.ndarray:
        names = self.model.items.external_ids.astype(str).astype(object)
        out = np.empty(self.n_items + 1, dtype=object)
        out[0] = ""
        out[1:] = names
        if self.model.item_names is not None:
            s = pd.Series(self.model.item_names)
            s = s[(s.index > 0) & (s.index <= self.n_items)]
            out[s.index.to_numpy(dtype=np.int64)] = s.astype(str).to_numpy()
        if self.item_table is not None and self.item_table.names is not None:
            known = np.array([v is not None for v in self.item_table.names])
            out[known] = self.item_table.names[known]
        return out

    def item_name(self, internal: int) -> str:
        return str(self._names[internal])

    def external(self, internal: np.ndarray) -> np.ndarray:
        """External item ids of internal ids (1..n_items)."""
        idx = np.asarray(internal, dtype=np.int64)
        if idx.size and (idx.min() < 1 or idx.max() > self.n_items):
            raise KeyError("internal item id out of range")
        return self._ext[idx - 1]

    def user_history(self, user: int) -> np.ndarray:
        """Training history of an internal user (empty for 0)."""
        if user <= 0 or user > self.model.store.n_users:
            return np.zeros(0, np.int64)
        return self.model.store.user_items(int(user))

    def _options(self, options: RecommendOptions | None) -> tuple[int, FilterOptions, RerankOptions, BlendOptions]:
        o = options or RecommendOptions()
        s = self.settings
        return o.k, o.filters or s.filters, o.rerank or s.rerank, o.blend or s.blend

    def _banned(self, filters: FilterOptions, warnings: list[str]) -> np.ndarray:
        """Items removed by allow / deny lists and attribute filters (True = removed); padding always."""
        n1 = self.n_items + 1
        banned = np.zeros(n1, bool)
        banned[0] = True
        if filters.allow is not None:
            idx = to_internal(self.model.items, filters.allow)
            unknown = [v for v, i in zip(filters.allow, idx, strict=True) if i == 0]
            if unknown:
                warnings.append(f"filters.allow: {len(unknown)} unknown item ids ignored (first: {unknown[:5]})")
            keep = np.zeros(n1, bool)
            keep[idx[idx > 0]] = True
            banned |= ~keep
        if filters.deny:
            idx = to_internal(self.model.items, filters.deny)
            unknown = [v for v, i in zip(filters.deny, idx, strict=True) if i == 0]
            if unknown:
                warnings.append(f"filters.deny: {len(unknown)} unknown item ids ignored (first: {unknown[:5]})")
            banned[idx[idx > 0]] = True
        wants_attr = (
            filters.categories is not None
            or filters.exclude_categories
            or filters.available_only
            or filters.min_price is not None
            or filters.max_price is not None
        )
        if not wants_attr:
            return banned
        t = self.item_table
        if t is None:
            warnings.append("attribute filters (category / availability / price) ignored: no item table loaded")
            return banned
        if filters.categories is not None:
            codes, unknown = t.codes(filters.categories)
            if unknown:
                warnings.append(f"filters.categories: unknown categories {unknown[:5]}")
            banned |= ~np.isin(t.category, codes)
        if filters.exclude_categories:
            codes, _ = t.codes(filters.exclude_categories)
            banned |= np.isin(t.category, codes)
        if filters.available_only:
            banned |= ~t.available
        if filters.min_price is not None:
            banned |= ~(t.price >= filters.min_price)  # NaN price: dropped
        if filters.max_price is not None:
            banned |= ~(t.price <= filters.max_price)
        return banned

    @staticmethod
    def _seen(history: HistoryEvents, filters: FilterOptions) -> np.ndarray:
        if not filters.exclude_seen or not len(history):
            return np.zeros(0, np.int64)
        if filters.exclude_behaviors is None or history.behaviors is None:
            if filters.exclude_behaviors is not None:
                return np.zeros(0, np.int64)  # no behaviour types known: nothing matches
            return history.items
        wanted = set(filters.exclude_behaviors)
        sel = np.array([b in wanted for b in history.behaviors], dtype=bool)
        return history.items[sel]

    def _content(self, history: np.ndarray, ok: np.ndarray) -> np.ndarray | None:
        """Content-similarity distribution: category affinity (item table) or embedding profile."""
        if not len(history):
            return None
        t = self.item_table
        if t is not None and t.has_categories:
            cats = t.category[history]
            cats = cats[cats > 0]
            if len(cats):
                aff = np.bincount(cats, minlength=len(t.category_names) + 1).astype(np.float64)
                size = np.bincount(t.category[1:], minlength=len(aff)).astype(np.float64)
                per_item = aff[t.category] / np.maximum(size[t.category], 1)
                per_item[t.category == 0] = 0
                return _normalise(per_item, ok)
        emb = self.embeddings
        if emb is None:
            return None
        profile = emb[history[-200:]].mean(0)
        sim = emb @ profile / max(float(np.linalg.norm(profile)), 1e-12)
        return _softmax_masked(sim, ok, 0.1)

    def _affinity(self, history: np.ndarray) -> np.ndarray | None:
        t = self.item_table
        if t is None or not t.has_categories or not len(history):
            return None
        cats = t.category[history]
        aff = np.bincount(cats[cats > 0], minlength=len(t.category_names) + 1).astype(np.float64)
        aff[0] = 0
        return aff / aff.max() if aff.max() > 0 else None

    def _similarity(self, by: str, pool: np.ndarray) -> np.ndarray | None:
        emb = self.embeddings
        t = self.item_table
        if by in ("auto", "embedding") and emb is not None:
            e = emb[pool]
            return e @ e.T
        if by in ("auto", "category") and t is not None and t.has_categories:
            c = t.category[pool]
            return ((c[:, None] == c[None, :]) & (c[:, None] > 0)).astype(np.float64)
        return None

    # ---------------------------------------------------------------- probabilities
    def probabilities(
        self,
        users: np.ndarray,
        histories: Sequence[np.ndarray],
        *,
        blend: BlendOptions | None = None,
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
        exclude: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Calibrated (and, for sparse histories, blended) probabilities.

        Returns ``(probs, keys, strategies)``: ``probs`` (B, n_items + 1) sum to 1 over the items
        not in ``exclude`` (default: the histories); ``keys`` rank exactly like the model's raw
        scores where no blending applies (-inf for excluded items and padding).
        """
        import torch

        blend = blend or self.settings.blend
        hist = [np.asarray(h, dtype=np.int64) for h in histories]
        excl = list(exclude) if exclude is not None else hist
        with torch.inference_mode():
            raw = self.model.score(np.asarray(users, dtype=np.int64), hist).float().numpy()
        n1 = self.n_items + 1
        B = len(hist)
        T = self.settings.temperature
        ok = np.ones((B, n1), bool)
        ok[:, 0] = False
        lens = [len(e) for e in excl]
        if sum(lens):
            ok[np.repeat(np.arange(B), lens), np.concatenate([np.asarray(e, np.int64) for e in excl])] = False
        # the model path for every row at once: softmax(raw / T) over the allowed items
        keys = np.where(ok, raw.astype(np.float64), -np.inf)
        z = keys / T
        top = z.max(1, keepdims=True)
        top[~np.isfinite(top)] = 0.0
        probs = np.exp(z - top)
        total = probs.sum(1, keepdims=True)
        probs /= np.where(total > 0, total, 1.0)
        strategies = ["model"] * B
        for r, h in enumerate(hist):
            cold = len(h) == 0
            sparse = blend.active and 0 < len(h) < blend.sparse_below
            if not (cold or sparse):
                continue
            ctx = context_keys(contexts[r]) if contexts is not None else []
            pop_keys = ctx if blend.popularity_source == "context" else []
            if cold:
                p = _normalise(self.popularity.distribution(pop_keys), ok[r])
                key = raw[r].astype(np.float64) if not pop_keys else p.copy()
                strategies[r] = "popularity"
            else:
                p = probs[r]
                key = keys[r]
                mix = blend.model * p
                weight = blend.model
                if blend.popularity > 0:
                    mix = mix + blend.popularity * _normalise(self.popularity.distribution(pop_keys), ok[r])
                    weight += blend.popularity
                content = self._content(h, ok[r]) if blend.content > 0 else None
                if content is not None:
                    mix = mix + blend.content * content
                    weight += blend.content
                if weight > 0:
                    p = mix / weight
                    key = p.copy()
                    strategies[r] = "blend"
            key = np.where(ok[r], key, -np.inf)
            probs[r] = p
            keys[r] = key
        return probs, keys, strategies

    # ---------------------------------------------------------------- ranking
    def rank(
        self,
        users: np.ndarray,
        histories: Sequence[HistoryEvents | np.ndarray],
        options: RecommendOptions | None = None,
        *,
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
        batch_size: int = 512,
    ) -> list[RankedList]:
        """Recommendation lists for internal users and their internal histories (oldest first)."""
        k, filters, rerank, blend = self._options(options)
        explain = options.explain if options is not None else False
        n_explain = options.n_explain if options is not None else 3
        hist = [h if isinstance(h, HistoryEvents) else HistoryEvents(np.asarray(h, np.int64)) for h in histories]
        base_warnings: list[str] = []
        if k > self.n_items:
            base_warnings.append(f"k={k} is above the catalogue size {self.n_items}; clamped to {self.n_items}")
            k = self.n_items
        banned = self._banned(filters, base_warnings)
        if rerank.interest_weight > 0 and (self.item_table is None or not self.item_table.has_categories):
            base_warnings.append("rerank.interest_weight ignored: interest needs item categories (an item table)")
        out: list[RankedList] = []
        users = np.asarray(users, dtype=np.int64)
        for s in range(0, len(hist), batch_size):
            chunk = hist[s : s + batch_size]
            items_only = [h.items for h in chunk]
            seen = [self._seen(h, filters) for h in chunk]
            probs, keys, strategies = self.probabilities(
                users[s : s + batch_size],
                items_only,
                blend=blend,
                contexts=None if contexts is None else contexts[s : s + batch_size],
                exclude=seen,
            )
            keys[:, banned] = -np.inf
            for r, h in enumerate(chunk):
                out.append(
                    self._finish(
                        h.items, probs[r], keys[r], strategies[r], k, rerank, explain, n_explain, list(base_warnings)
                    )
                )
        return out

    def _finish(
        self,
        history: np.ndarray,
        p: np.ndarray,
        key: np.ndarray,
        strategy: str,
        k: int,
        rerank: RerankOptions,
        explain: bool,
        n_explain: int,
        warnings: list[str],
    ) -> RankedList:
        n_valid = int(np.isfinite(key).sum())
        pool_size = min(n_valid, max(k, rerank.candidates) if rerank.active else k)
        if pool_size <= 0:
            warnings.append("no item passes the filters")
            return RankedList(
                np.zeros(0, np.int64), np.zeros(0), strategy, [] if explain else None, warnings, np.zeros(0)
            )
        neg = -key
        if pool_size < len(key):  # every item tied with the last one kept stays a candidate
            kth = np.partition(neg, pool_size - 1)[pool_size - 1]
            pool = np.flatnonzero(neg <= kth)
        else:
            pool = np.arange(len(key))
        pool = pool[np.lexsort((pool, neg[pool]))][:pool_size]  # by key desc, then internal id asc
        if rerank.active:
            pool = self._rerank(history, pool, p, rerank, warnings)
        final = pool[:k]
        if len(final) < k:
            warnings.append(f"only {len(final)} items pass the filters (k={k})")
        expl = self.explain(history, final, n_explain) if explain else None
        return RankedList(final.astype(np.int64), p[final], strategy, expl, warnings, key[final])

    def _rerank(
        self, history: np.ndarray, pool: np.ndarray, p: np.ndarray, rerank: RerankOptions, warnings: list[str]
    ) -> np.ndarray:
        rel = p[pool].astype(np.float64)
        rel = rel / rel.max() if rel.max() > 0 else rel
        w = rerank.interest_weight
        if w > 0:
            aff = self._affinity(history)
            if aff is not None:
                rel = (1 - w) * rel + w * aff[self.item_table.category[pool]]
                order = np.lexsort((np.arange(len(pool)), -rel))  # stable: ties keep relevance order
                pool, rel = pool[order], rel[order]
        lam = rerank.diversity_weight
        if lam > 0:
            sim = self._similarity(rerank.diversity_by, pool)
            if sim is None:
                warnings.append(
                    f"rerank.diversity_weight ignored: no item embeddings or categories ({rerank.diversity_by})"
                )
            else:
                chosen: list[int] = []
                left = np.ones(len(pool), bool)
                max_sim = np.zeros(len(pool))
                for _ in range(len(pool)):
                    mmr = np.where(left, (1 - lam) * rel - lam * max_sim, -np.inf)
                    j = int(np.argmax(mmr))  # first maximum: ties keep the current order
                    chosen.append(j)
                    left[j] = False
                    max_sim = np.maximum(max_sim, sim[j])
                pool = pool[np.asarray(chosen)]
        return pool

    def explain(self, history: np.ndarray, items: np.ndarray, n: int = 3) -> list[list[tuple[int, float]]]:
        """For each item, up to ``n`` distinct history items most similar to it: ``(internal id, similarity)``.

        Similarity is the cosine of item embeddings; without embeddings, history items of the
        same category (most recent first, similarity 1.0); otherwise nothing.
        """
        if n <= 0 or not len(history):
            return [[] for _ in items]
        recent = history[-200:]
        _, first = np.unique(recent[::-1], return_index=True)
        uniq = recent[::-1][np.sort(first)]  # distinct, most recent first
        emb = self.embeddings
        out = []
        if emb is not None:
            sims = emb[items] @ emb[uniq].T  # (k, h)
            for r in range(len(items)):
                order = np.lexsort((np.arange(len(uniq)), -sims[r]))[:n]
                out.append([(int(uniq[j]), float(sims[r, j])) for j in order if sims[r, j] > 0])
            return out
        t = self.item_table
        for it in items:
            if t is not None and t.has_categories and t.category[it] > 0:
                same = uniq[t.category[uniq] == t.category[it]][:n]
                out.append([(int(j), 1.0) for j in same])
            else:
                out.append([])
        return out

    # ---------------------------------------------------------------- external-id front doors
    def recommend(
        self,
        users: Sequence[Any] | None = None,
        *,
        histories: Sequence[Sequence[Any]] | None = None,
        options: RecommendOptions | None = None,
        user_ids: Sequence[Any] | None = None,
        with_names: bool | None = None,
        score: Literal["probability", "raw"] = "probability",
    ) -> pd.DataFrame:
        """A DataFrame ``user_id, item_id, score, rank`` (+ ``item_name``, ``explanation``).

        Give ``users`` (external ids: their training histories; unknown users get the cold-start
        path) or ``histories`` (external item ids, oldest first; unknown items are ignored).
        ``score="probability"`` reports calibrated probabilities; ``"raw"`` the ranking key (the
        model's own score where no blending applies, as ``Recommender.recommend`` reports it).
        """
        if (users is None) == (histories is None):
            raise ValueError("give either users or histories")
        if users is not None:
            labels = list(users)
            internal = to_internal(self.model.users, labels)
            hist: list[np.ndarray] = [self.user_history(int(u)) for u in internal]
        else:
            labels = list(user_ids) if user_ids is not None else list(range(len(histories)))
            internal = np.zeros(len(histories), np.int64)
            hist = []
            for h in histories:
                ids = to_internal(self.model.items, list(h))
                hist.append(ids[ids > 0])
        lists = self.rank(internal, hist, options)
        return self.to_frame(labels, lists, with_names=with_names, score=score)

    def to_frame(
        self,
        labels: Sequence[Any],
        lists: Sequence[RankedList],
        *,
        with_names: bool | None = None,
        score: Literal["probability", "raw"] = "probability",
    ) -> pd.DataFrame:
        """Ranked lists as a long DataFrame with external ids (see :meth:`recommend`)."""
        if score not in ("probability", "raw"):
            raise ValueError("score must be 'probability' or 'raw'")
        lens = [len(x.items) for x in lists]
        flat = np.concatenate([x.items for x in lists]) if lists else np.zeros(0, np.int64)
        df = pd.DataFrame(
            {
                C.USER: np.repeat(np.asarray(list(labels), dtype=object), lens),
                C.ITEM: self.external(flat) if len(flat) else np.zeros(0, dtype=object),
                C.SCORE: np.concatenate([x.scores if score == "probability" else x.keys for x in lists]).astype(
                    np.float64
                )
                if lists
                else np.zeros(0),
                C.RANK: np.concatenate([np.arange(1, n + 1) for n in lens]).astype(np.int64) if lists else [],
            }
        )
        if len(df) and pd.api.types.is_numeric_dtype(pd.Series(list(labels))):
            df[C.USER] = pd.to_numeric(df[C.USER])
        has_names = self.model.item_names is not None or (
            self.item_table is not None and self.item_table.names is not None
        )
        names = with_names if with_names is not None else has_names
        if names:
            df["item_name"] = self._names[flat] if len(flat) else []
        if lists and lists[0].explanations is not None:
            ext = self.model.items.external_ids
            df["explanation"] = ["|".join(str(ext[j - 1]) for j, _ in e) for x in lists for e in (x.explanations or [])]
        return df


# ============================================================================ calibration
def _collect_logits(model: Any, evalset: Any, batch_size: int = 512) -> tuple[list[np.ndarray], np.ndarray]:
    """Per batch: raw scores with history and padding at -inf; and the target ids (single-target cases)."""
    import torch

    from chronorec.evaluation.ranking import exclude_items

    rows_all = [r for r in range(len(evalset)) if len(evalset.inputs([r])[0]) > 0]
    out, targets = [], []
    with torch.inference_mode():
        for s in range(0, len(rows_all), batch_size):
            rows = np.asarray(rows_all[s : s + batch_size])
            hist = evalset.inputs(rows)
            scores = model.score(evalset.users[rows], hist).float()
            exclude_items(scores, hist)
            out.append(scores.numpy().astype(np.float64))
            targets.extend(int(t[0]) for t in evalset.targets(rows))
    return out, np.asarray(targets, dtype=np.int64)


def _nll_and_top(logits: list[np.ndarray], targets: np.ndarray, T: float) -> tuple[float, np.ndarray, np.ndarray]:
    nll, conf, correct = 0.0, [], []
    pos = 0
    for z in logits:
        zt = z / T
        m = zt.max(1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(zt - m).sum(1))
        t = targets[pos : pos + len(z)]
        tz = zt[np.arange(len(z)), t]
        nll += float(np.where(np.isfinite(tz), lse - tz, 50.0).sum())  # a seen (excluded) target: capped loss
        top = zt.argmax(1)
        conf.append(np.exp(zt[np.arange(len(z)), top] - lse))
        correct.append(top == t)
        pos += len(z)
    n = max(len(targets), 1)
    return nll / n, np.concatenate(conf) if conf else np.zeros(0), np.concatenate(correct) if correct else np.zeros(0)


def calibrate_temperature(
    model: Any, evalset: Any, *, bounds: tuple[float, float] = (1e-2, 1e3), n_bins: int = 10
) -> dict[str, Any]:
    """Fit ``T`` minimising the NLL of the true next item under ``softmax(score / T)`` (history excluded).

    Returns ``temperature``, ``nll_before`` (T = 1), ``nll_after``, ``ece_before``, ``ece_after``,
    ``n_cases`` and the two reliability curves (``curve_before``, ``curve_after`` as DataFrames).
    Cases with an empty input history are skipped (they get popularity, not model scores).
    """
    from scipy.optimize import minimize_scalar

    if not evalset.single_target:
        raise ValueError("calibrate_temperature needs single-target cases (e.g. leave-one-out validation)")
    logits, targets = _collect_logits(model, evalset)
    if not len(targets):
        raise ValueError("no validation case with a non-empty history to calibrate on")
    res = minimize_scalar(
        lambda lt: _nll_and_top(logits, targets, math.exp(lt))[0],
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-3},
    )
    T = float(math.exp(res.x))
    nll0, conf0, cor0 = _nll_and_top(logits, targets, 1.0)
    nll1, conf1, cor1 = _nll_and_top(logits, targets, T)
    before = reliability_curve(conf0, cor0, n_bins=n_bins)
    after = reliability_curve(conf1, cor1, n_bins=n_bins)
    return {
        "temperature": T,
        "nll_before": nll0,
        "nll_after": nll1,
        "ece_before": expected_calibration_error(before),
        "ece_after": expected_calibration_error(after),
        "n_cases": int(len(targets)),
        "curve_before": before,
        "curve_after": after,
    }


# ============================================================================ tuning and offline evaluation
def _sparse_evalset(evalset: Any, sparse_below: int) -> Any:
    """The validation cases with inputs cut to their last 1 .. sparse_below - 1 items (row r keeps r % m + 1)."""
    from chronorec.evaluation.split import EvalSet

    m = max(sparse_below - 1, 1)
    inputs = [h[-(r % m + 1) :] if len(h) else h for r, h in enumerate(evalset.inputs(slice(None)))]
    return EvalSet.build(evalset.users, inputs, evalset.targets(slice(None)), evalset.name + "-sparse")


def tune_blend(
    pipeline: RecommendPipeline,
    evalset: Any,
    *,
    sparse_below: int = 5,
    grid: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0),
    popularity_source: Literal["global", "context"] = "global",
    metric: str = "NDCG@10",
) -> tuple[BlendOptions, pd.DataFrame]:
    """Grid-search the popularity and content weights (model weight 1) on sparse validation histories.

    Sparse users are simulated by cutting each validation input to its last 1..sparse_below-1
    items. Metrics come from :func:`chronorec.evaluation.ranking.evaluate_ranking` on the blended
    probabilities. Returns the best :class:`BlendOptions` and the table of every combination.
    """
    import torch

    from chronorec.evaluation.ranking import evaluate_ranking

    es = _sparse_evalset(evalset, sparse_below)
    rows = []
    for wp in grid:
        for wc in grid:
            opts = BlendOptions(
                model=1.0, popularity=wp, content=wc, popularity_source=popularity_source, sparse_below=sparse_below
            )

            def score_fn(users, hist, opts=opts):
                probs, _, _ = pipeline.probabilities(users, hist, blend=opts)
                return torch.from_numpy(probs)

            m = evaluate_ranking(score_fn, es, n_items=pipeline.n_items, ks=(10,))
            rows.append({"popularity": wp, "content": wc, **m})
    table = pd.DataFrame(rows)
    best = table.sort_values(metric, ascending=False, kind="stable").iloc[0]
    return (
        BlendOptions(
            model=1.0,
            popularity=float(best["popularity"]),
            content=float(best["content"]),
            popularity_source=popularity_source,
            sparse_below=sparse_below,
        ),
        table,
    )


def list_metrics(
    pipeline: RecommendPipeline, lists: Sequence[RankedList], targets: Sequence[np.ndarray] | None, *, k: int = 10
) -> dict[str, float]:
    """NDCG@k / HR@k (through :func:`chronorec.evaluation.ranking.ranking_metrics_from_ranks`), coverage,
    intra-list diversity (mean pairwise 1 - similarity) and novelty (mean -log2 popularity share)."""
    from chronorec.evaluation.ranking import ranking_metrics_from_ranks

    out: dict[str, float] = {}
    if targets is not None:
        ranks = np.full(len(lists), np.inf)
        for r, (x, t) in enumerate(zip(lists, targets, strict=True)):
            hit = np.flatnonzero(x.items[:k] == int(t[0]))
            if len(hit):
                ranks[r] = hit[0] + 1
        m = ranking_metrics_from_ranks(ranks, ks=(k,))
        out[f"NDCG@{k}"], out[f"HR@{k}"] = m[f"NDCG@{k}"], m[f"HR@{k}"]
    shown = np.concatenate([x.items[:k] for x in lists]) if lists else np.zeros(0, np.int64)
    out[f"Coverage@{k}"] = float(len(np.unique(shown)) / pipeline.n_items)
    ild = []
    for x in lists:
        items = x.items[:k]
        if len(items) < 2:
            continue
        sim = pipeline._similarity("auto", items)
        if sim is None:
            continue
        iu = np.triu_indices(len(items), 1)
        ild.append(float((1 - sim[iu]).mean()))
    out["ILD"] = float(np.mean(ild)) if ild else float("nan")
    pop = pipeline.model.popularity.astype(np.float64)
    share = (pop + 1) / (pop[1:].sum() + pipeline.n_items)
    out["novelty"] = float((-np.log2(share[shown])).mean()) if len(shown) else float("nan")
    return out


def evaluate_postprocessing(
    pipeline: RecommendPipeline,
    evalset: Any,
    variants: Mapping[str, RecommendOptions],
    *,
    k: int = 10,
) -> pd.DataFrame:
    """One row per variant (e.g. ``{"plain": RecommendOptions(), "mmr 0.3": ...}``): NDCG@k, HR@k,
    Coverage@k, ILD and novelty of the final lists on the single-target cases of ``evalset``."""
    if not evalset.single_target:
        raise ValueError("evaluate_postprocessing needs single-target cases")
    hist = evalset.inputs(slice(None))
    targets = evalset.targets(slice(None))
    rows = []
    for name, opts in variants.items():
        opts = opts.model_copy(update={"k": k})
        lists = pipeline.rank(evalset.users, hist, opts)
        rows.append({"variant": name, **list_metrics(pipeline, lists, targets, k=k)})
    return pd.DataFrame(rows)
