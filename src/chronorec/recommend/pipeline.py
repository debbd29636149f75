"""From model scores to the recommendation lists a product shows.

One pipeline serves the library, ``chronorec recommend`` and ``chronorec serve``:

1. **score** -- ``model.score`` over the whole catalogue for each history;
2. **calibrate** -- scores become probabilities over the items the user has not seen,
   ``softmax(score / T)`` with a temperature ``T`` fitted on validation data
   (:func:`chronorec.recommend.calibrate.calibrate_temperature`), so scores are comparable
   across users; an empty history gets the popularity distribution (global or in the
   request's context);
3. **blend** -- sparse histories mix model, popularity and content-similarity distributions
   with weights tuned on validation data (:func:`chronorec.recommend.calibrate.tune_blend`);
4. **filter** -- seen items (all, or only those seen with given behaviour types; by default
   kept for models that rank repeat purchases, such as buyagain), allow and deny
   lists, item attributes from an :class:`~chronorec.recommend.items.ItemTable` (category,
   availability, price range);
5. **re-rank** -- interest (the user's category affinity mixed with the relevance by a weight)
   and diversity (maximal marginal relevance over item embeddings or categories);
6. **explain** -- for each recommended item, why: the history items behind it (contributions,
   embedding similarity or category) or what it is popular in (:mod:`chronorec.recommend.explain`).

A request's context reaches models trained to condition on it; otherwise the list's warnings say
it was ignored (:mod:`chronorec.recommend.context`).

It is the one path to lists: ``Recommender.recommend`` and ``recommend_from_history`` rank through
the pipeline attached by :func:`chronorec.load` (:func:`chronorec.recommend.folder.pipeline_for`: the
folder's ``recommend.json``), as the CLI, the service and the batch job do. A model no pipeline was attached
to (fitted in this process) ranks with the pipeline's core alone, :func:`chronorec.models.topk.top_k`
(higher score first, ties by the smaller internal id), which is what the pipeline does without any
option. ``score`` reports the calibrated probability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from chronorec.models.topk import SCORE_BATCH, top_k  # SCORE_BATCH: the rows scored at once, shared with evaluation
from chronorec.recommend import frames
from chronorec.recommend.context import context_notes, request_contexts
from chronorec.recommend.explain import explain_items, fill_explanations
from chronorec.recommend.filters import banned_items, default_exclude_seen, seen_items
from chronorec.recommend.items import ItemTable, PopularityIndex, context_keys, item_embeddings
from chronorec.recommend.options import (
    BlendOptions,
    FilterOptions,
    RecommendOptions,
    RecommendSettings,
    RerankOptions,
)
from chronorec.recommend.probabilities import allowed, lean_top, model_probabilities, normalise, softmax_masked
from chronorec.recommend.rerank import mmr_order, rerank_order, similarity


# ============================================================================ results
@dataclass
class RankedList:
    """One recommendation list, in internal ids."""

    items: np.ndarray
    scores: np.ndarray | None  # calibrated probabilities (or blended); None when ranked without them
    strategy: str  # "model", "blend", "popularity"
    explanations: list[list[tuple[int, float]]] | None = None
    warnings: list[str] = field(default_factory=list)
    keys: np.ndarray | None = None  # the ranking keys before re-ranking (raw model scores where not blended)
    reasons: list[str] | None = None  # with explanations: one sentence per item, with item names
    basis: str = "none"  # what an explanation's weight is: contribution, similarity, category (explain.BASES)
    exclude_seen: bool = True  # whether the user's seen items were dropped (the request's, or the model's default)


@dataclass
class HistoryEvents:
    """A history as internal item ids with optional behaviour types (oldest first)."""

    items: np.ndarray
    behaviors: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class _Plan:
    """The options of one :meth:`RecommendPipeline.rank` call, with the deployment's defaults filled in."""

    k: int
    filters: FilterOptions
    rerank: RerankOptions
    blend: BlendOptions
    explain: bool
    n_explain: int

    @property
    def pool_size(self) -> int:
        """How many candidates the ranking keeps before re-ranking (k without re-ranking)."""
        return max(self.k, self.rerank.candidates) if self.rerank.active else self.k


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
        self._names = self._item_names()

    # ---------------------------------------------------------------- items and users
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

    def item_names(self, internal: np.ndarray) -> list[str]:
        """Names of internal ids (the external id where the model and item table have none)."""
        return [str(x) for x in self._names[np.asarray(internal, np.int64)].tolist()]

    def external(self, internal: np.ndarray) -> np.ndarray:
        """External item ids of internal ids (1..n_items): the model's :class:`~chronorec.data.idmap.IdMap`."""
        return self.model.items.to_external(internal)

    def user_history(self, user: int) -> np.ndarray:
        """Training history of an internal user (empty for 0)."""
        if user <= 0 or user > self.model.store.n_users:
            return np.zeros(0, np.int64)
        return self.model.store.user_items(int(user))

    # ---------------------------------------------------------------- filter
    def _plan(self, options: RecommendOptions | None, warnings: list[str]) -> _Plan:
        o = options or RecommendOptions()
        s = self.settings
        k = o.k
        if k > self.n_items:
            warnings.append(f"k={k} is above the catalogue size {self.n_items}; clamped to {self.n_items}")
            k = self.n_items
        filters = o.filters or s.filters
        if filters.exclude_seen is None:
            filters = filters.model_copy(update={"exclude_seen": self.default_exclude_seen[0]})
        return _Plan(k, filters, o.rerank or s.rerank, o.blend or s.blend, o.explain, o.n_explain)

    @property
    def default_exclude_seen(self) -> tuple[bool, str]:
        """Whether seen items are dropped when a request does not say, and why (see
        :func:`~chronorec.recommend.filters.default_exclude_seen`)."""
        return default_exclude_seen(self.model)

    def banned(self, filters: FilterOptions, warnings: list[str]) -> np.ndarray:
        """Items removed by allow / deny lists and attribute filters (True = removed); padding always."""
        return banned_items(filters, self.model.items, self.item_table, self.n_items + 1, warnings)

    # ---------------------------------------------------------------- score and blend
    def probabilities(
        self,
        users: np.ndarray,
        histories: Sequence[np.ndarray],
        *,
        blend: BlendOptions | None = None,
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
        exclude: Sequence[np.ndarray] | None = None,
        model_contexts: Sequence[dict[str, Any] | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Calibrated (and, for sparse histories, blended) probabilities.

        Returns ``(probs, keys, strategies)``: ``probs`` (B, n_items + 1) sum to 1 over the items
        not in ``exclude`` (default: the histories); ``keys`` rank exactly like the model's raw
        scores where no blending applies (-inf for excluded items and padding). ``contexts`` are
        the requests' contexts; ``model_contexts`` their coding for the model
        (:func:`~chronorec.recommend.context.request_contexts`, done here when not given).
        """
        blend = blend or self.settings.blend
        hist = [np.asarray(h, dtype=np.int64) for h in histories]
        excl = list(exclude) if exclude is not None else hist
        if model_contexts is None and contexts is not None:
            model_contexts = request_contexts(self.model, contexts, len(hist))[0]
        raw = self._scores(users, hist, model_contexts).numpy()
        B = len(hist)
        ok = allowed(B, self.n_items + 1, excl)
        probs, keys = model_probabilities(raw, ok, self.settings.temperature)
        strategies = ["model"] * B
        for r, h in enumerate(hist):
            cold = len(h) == 0
            if not (cold or (blend.active and 0 < len(h) < blend.sparse_below)):
                continue
            ctx = context_keys(contexts[r]) if contexts is not None else []
            pop_keys = ctx if blend.popularity_source == "context" else []
            if cold:
                p = normalise(self.popularity.distribution(pop_keys), ok[r])
                key = raw[r].astype(np.float64) if not pop_keys else p.copy()
                strategies[r] = "popularity"
            else:
                p = self._blend_row(h, probs[r], ok[r], blend, pop_keys)
                if p is None:
                    continue  # nothing to mix in: the model's row stands
                key, strategies[r] = p.copy(), "blend"
            probs[r] = p
            keys[r] = np.where(ok[r], key, -np.inf)
        return probs, keys, strategies

    def _scores(
        self, users: np.ndarray, histories: list[np.ndarray], model_contexts: Sequence[dict[str, Any] | None] | None
    ) -> Any:
        """The model's raw scores (B, n_items + 1) as a float32 tensor."""
        import torch

        with torch.inference_mode():
            u = np.asarray(users, dtype=np.int64)
            scores = (
                self.model.score(u, histories, list(model_contexts))
                if model_contexts
                else self.model.score(u, histories)
            )
            return scores.float()

    @staticmethod
    def _plain(chunk: Sequence[HistoryEvents], plan: _Plan) -> bool:
        """Whether every row is ranked by the model alone: a history, not blended, not re-ranked."""
        shortest = min((len(h.items) for h in chunk), default=0)
        return (
            shortest > 0 and not plan.rerank.active and not (plan.blend.active and shortest < plan.blend.sparse_below)
        )

    def _blend_row(
        self, history: np.ndarray, p: np.ndarray, ok: np.ndarray, blend: BlendOptions, pop_keys: list[str]
    ) -> np.ndarray | None:
        """A sparse history's mix of the model, popularity and content distributions (None: all weights 0)."""
        mix = blend.model * p
        weight = blend.model
        if blend.popularity > 0:
            mix = mix + blend.popularity * normalise(self.popularity.distribution(pop_keys), ok)
            weight += blend.popularity
        content = self.content_distribution(history, ok) if blend.content > 0 else None
        if content is not None:
            mix = mix + blend.content * content
            weight += blend.content
        return mix / weight if weight > 0 else None

    def content_distribution(self, history: np.ndarray, ok: np.ndarray) -> np.ndarray | None:
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
                return normalise(per_item, ok)
        emb = self.embeddings
        if emb is None:
            return None
        profile = emb[history[-200:]].mean(0)
        sim = emb @ profile / max(float(np.linalg.norm(profile)), 1e-12)
        return softmax_masked(sim, ok, 0.1)

    # ---------------------------------------------------------------- rank
    def rank(
        self,
        users: np.ndarray,
        histories: Sequence[HistoryEvents | np.ndarray],
        options: RecommendOptions | None = None,
        *,
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
        batch_size: int = SCORE_BATCH,
        probabilities: bool = True,
        model_contexts: Sequence[dict[str, Any] | None] | None = None,
    ) -> list[RankedList]:
        """Recommendation lists for internal users and their internal histories (oldest first).

        ``probabilities=False`` spares the normalisation over the catalogue where the caller reports
        raw scores only: lists ranked by the model alone then have ``scores`` None (blended and
        popularity lists keep theirs)."""
        base_warnings: list[str] = []
        plan = self._plan(options, base_warnings)
        hist = [h if isinstance(h, HistoryEvents) else HistoryEvents(np.asarray(h, np.int64)) for h in histories]
        banned = self.banned(plan.filters, base_warnings)
        if plan.rerank.interest_weight > 0 and (self.item_table is None or not self.item_table.has_categories):
            base_warnings.append("rerank.interest_weight ignored: interest needs item categories (an item table)")
        out: list[RankedList] = []
        users = np.asarray(users, dtype=np.int64)
        for s in range(0, len(hist), batch_size):
            chunk = hist[s : s + batch_size]
            ctx = None if contexts is None else list(contexts[s : s + batch_size])
            if model_contexts is not None:  # already coded by the model (a live history's own context)
                model_ctx, ctx_warnings = list(model_contexts[s : s + batch_size]), [[] for _ in chunk]
            else:
                model_ctx, ctx_warnings = request_contexts(self.model, ctx, len(chunk))
            exclude = [seen_items(h.items, h.behaviors, plan.filters) for h in chunk]
            if self._plain(chunk, plan):  # the evaluation pass's steps: no full-size float64
                scores = self._scores(users[s : s + batch_size], [h.items for h in chunk], model_ctx)
                top = lean_top(scores, exclude, banned, plan.k, self.settings.temperature, probabilities)
                rows = self._lean_rows(top)
            else:
                rows = self._full_rows(users[s : s + batch_size], chunk, exclude, banned, plan, ctx, model_ctx)
            exclude_seen = bool(plan.filters.exclude_seen)
            for r, (h, row) in enumerate(zip(chunk, rows, strict=True)):
                warnings = base_warnings + context_notes(ctx_warnings[r], row[3], plan.blend.popularity_source)
                ranked = self._finish(h.items, row, plan, warnings, ctx[r] if ctx is not None else None)
                ranked.exclude_seen = exclude_seen
                out.append(ranked)
        return out

    @staticmethod
    def _lean_rows(top: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> list[tuple]:
        """:func:`lean_top`'s rows as pools for :meth:`_finish`: views of the batch's arrays, cut where a
        row has fewer than k allowed items (its -inf keys come last)."""
        items, keys, probs = top
        rows: list[tuple] = []
        for r, n in enumerate(np.isfinite(keys).sum(1).tolist()):
            p = None if probs is None else probs[r][:n]
            rows.append((items[r][:n], p, keys[r][:n], "model"))
        return rows

    def _full_rows(
        self,
        users: np.ndarray,
        chunk: list[HistoryEvents],
        exclude: list[np.ndarray],
        banned: np.ndarray,
        plan: _Plan,
        ctx: list[Mapping[str, Any] | None] | None,
        model_ctx: list[dict[str, Any] | None] | None,
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
        """Each row's candidate pool with its probabilities, keys and strategy, from the full distributions."""
        probs, keys, strategies = self.probabilities(
            users, [h.items for h in chunk], blend=plan.blend, contexts=ctx, exclude=exclude, model_contexts=model_ctx
        )
        keys[:, banned] = -np.inf
        order, _ = top_k(keys, plan.pool_size)  # the one top-k path: key desc, then internal id asc
        n_valid = np.isfinite(keys).sum(1)
        pools = [order[r][: min(int(n_valid[r]), plan.pool_size)] for r in range(len(chunk))]
        return [(pool, probs[r][pool], keys[r][pool], strategies[r]) for r, pool in enumerate(pools)]

    def _finish(
        self,
        history: np.ndarray,
        row: tuple[np.ndarray, np.ndarray | None, np.ndarray, str],
        plan: _Plan,
        warnings: list[str],
        context: Mapping[str, Any] | None = None,
    ) -> RankedList:
        """Re-rank a row's candidate pool (items, probabilities, keys, strategy), cut it to k, explain it."""
        pool, p, key, strategy = row
        if not len(pool):
            warnings.append("no item passes the filters")
            empty = np.zeros(0, np.int64)
            none = [] if plan.explain else None
            return RankedList(empty, np.zeros(0), strategy, none, warnings, np.zeros(0), none)
        if plan.rerank.active:
            order = self.rerank(history, pool, p, plan.rerank, warnings)  # a re-ranked row has probabilities
            pool, p, key = pool[order], p[order], key[order]
        final = np.asarray(pool[: plan.k], np.int64)
        if len(final) < plan.k:
            warnings.append(f"only {len(final)} items pass the filters (k={plan.k})")
        out = RankedList(final, None if p is None else p[: plan.k], strategy, None, warnings, key[: plan.k])
        if plan.explain:
            fill_explanations(self, out, history, plan.n_explain, plan.blend.popularity_source, context)
        return out

    # ---------------------------------------------------------------- re-rank
    def rerank(
        self, history: np.ndarray, pool: np.ndarray, p: np.ndarray, rerank: RerankOptions, warnings: list[str]
    ) -> np.ndarray:
        """Interest, then diversity (MMR) re-ranking of a candidate pool ordered by relevance; ``p`` the
        pool's probabilities. The new order, as indices into ``pool`` (:func:`~chronorec.recommend.rerank.rerank_order`)."""
        return rerank_order(self.item_table, self.similarity, history, pool, p, rerank, warnings)

    def similarity(self, by: str, pool: np.ndarray) -> np.ndarray | None:
        """Pairwise item similarity of ``pool``: embedding cosine, or same category (1/0); None if neither."""
        return similarity(self.item_table, self.embeddings, by, pool)

    # ---------------------------------------------------------------- explain
    def explain(self, history: np.ndarray, items: np.ndarray, n: int = 3) -> list[list[tuple[int, float]]]:
        """For each item, up to ``n`` distinct history items behind it: ``(internal id, weight)``.

        The model's own contributions where it has them (ItemKNN, EASE), else the cosine of item
        embeddings, else history items of the same category (most recent first, weight 1.0);
        otherwise nothing (see :mod:`chronorec.recommend.explain`).
        """
        return explain_items(self.model, history, items, n, self.embeddings, self.item_table)[0]

    # ---------------------------------------------------------------- external-id front doors
    def known_items(self, values: Sequence[Any], warnings: list[str], what: str = "history") -> np.ndarray:
        """Internal ids of the known external item ids in ``values`` (order kept); the rest are reported."""
        return frames.known_items(self, values, warnings, what)

    def recommend_lists(
        self,
        users: Sequence[Any] | None = None,
        *,
        histories: Sequence[Sequence[Any]] | None = None,
        options: RecommendOptions | None = None,
        user_ids: Sequence[Any] | None = None,
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
        probabilities: bool = True,
    ) -> tuple[list[Any], list[RankedList]]:
        """``(labels, ranked lists)`` for external users or histories (see :meth:`recommend`); each
        list's ``warnings`` name unknown users and items and the popularity fallback, as the service does.
        ``probabilities=False``: raw scores only (see :meth:`rank`)."""
        return frames.recommend_lists(self, users, histories, options, user_ids, contexts, probabilities)

    def recommend(
        self,
        users: Sequence[Any] | None = None,
        *,
        histories: Sequence[Sequence[Any]] | None = None,
        options: RecommendOptions | None = None,
        user_ids: Sequence[Any] | None = None,
        with_names: bool | None = None,
        score: Literal["probability", "raw"] = "probability",
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> pd.DataFrame:
        """A DataFrame ``user_id, item_id, score, rank, source`` (+ ``item_name``, ``explanation``).

        Give ``users`` (external ids: their training histories; unknown users get the cold-start
        path) or ``histories`` (external item ids, oldest first; unknown items are ignored).
        ``score="probability"`` reports calibrated probabilities; ``"raw"`` the ranking key (the
        model's own score where no blending applies, as ``Recommender.recommend`` reports it).
        ``source`` says where a row's score comes from (``model``, ``blend`` or ``popularity``: raw
        popularity scores are counts, not model scores). ``contexts``: one request context per row.
        The lists' warnings are in ``frame.attrs["warnings"]`` (see :func:`~chronorec.recommend.frames.summarise_warnings`).
        """
        labels, lists = self.recommend_lists(
            users,
            histories=histories,
            options=options,
            user_ids=user_ids,
            contexts=contexts,
            probabilities=score == "probability",
        )
        df = self.to_frame(labels, lists, with_names=with_names, score=score)
        df.attrs["warnings"] = frames.summarise_warnings(lists)
        return df

    def to_frame(
        self,
        labels: Sequence[Any],
        lists: Sequence[RankedList],
        *,
        with_names: bool | None = None,
        score: Literal["probability", "raw"] = "probability",
    ) -> pd.DataFrame:
        """Ranked lists as a long DataFrame with external ids (see :meth:`recommend`)."""
        return frames.to_frame(self, labels, lists, with_names=with_names, score=score)


__all__ = ["HistoryEvents", "RankedList", "RecommendPipeline", "mmr_order"]
