"""One running service: the verified model, its recommendation pipeline, live events and metrics.

:class:`Service` holds what the routes of :mod:`chronorec.serving.app` share and does their
work: ``recommend`` (training history + live events + an explicit history, through
:class:`~chronorec.recommend.RecommendPipeline`) and ``add_events`` (committed to the store
before they change the next answer).
"""

from __future__ import annotations

import difflib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.artifacts import ALLOWED_SUFFIXES, MANIFEST, read_manifest
from chronorec.errors import ModelLoadError
from chronorec.recommend import (
    HistoryEvents,
    ItemTable,
    PopularityIndex,
    RankedList,
    RecommendOptions,
    RecommendPipeline,
    RecommendSettings,
    context_keys,
    to_internal,
)
from chronorec.recommend.frames import POPULARITY_FALLBACK
from chronorec.serving.metrics import ServiceMetrics
from chronorec.serving.microbatch import BatchedRanker
from chronorec.serving.schemas import Event, HistoryItem, RecommendRequest
from chronorec.serving.store import LiveEventStore, LiveHistories
from chronorec.settings import STATE_DIR_NAME, ServeSettings

logger = logging.getLogger(__name__)


def check_model_dir(model_dir: str | Path, *, ignore: tuple[str, ...] = (STATE_DIR_NAME,)) -> dict[str, Any]:
    """Refuse a directory holding anything but JSON, safetensors and Parquet (and PNG pictures at its
    top, such as the training curve, which are never loaded); return its verified manifest.

    ``ignore`` names sub-folders that are not part of the model (the live-event state folder).
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such model directory")
    bad = []
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d)
        if rel.parts[0] in ignore or p.is_dir():
            continue
        if len(rel.parts) == 1 and p.is_file() and p.suffix.lower() == ".png":
            continue  # pictures of the model (its training curve): never loaded
        if not p.is_file() or p.suffix.lower() not in ALLOWED_SUFFIXES:
            bad.append(str(rel))
    if bad:
        raise ModelLoadError(
            f"{d}: refusing to serve a model directory holding files other than JSON, safetensors and Parquet: "
            f"{bad[:10]} (remove them; models are never loaded from pickle / .pt / .bin files)"
        )
    if not (d / MANIFEST).exists():
        raise FileNotFoundError(f"{d}: no {MANIFEST}; not a chronorec model directory")
    return read_manifest(d)


def _py(v: Any) -> Any:
    """numpy scalars -> Python scalars for JSON."""
    return v.item() if isinstance(v, np.generic) else v


class Service:
    """Model, pipeline, live events and metrics of one running service."""

    def __init__(self, settings: ServeSettings):
        from chronorec.models.registry import load

        if settings.model is None:
            raise ModelLoadError("no model: give the saved model folder (--model DIR)")
        self.settings = settings
        self.model_dir = Path(settings.model)
        manifest = check_model_dir(self.model_dir)
        self.model = load(self.model_dir)
        self.api_key = settings.key()
        digest = manifest["files"].get("model.safetensors", "")[:12]
        self.model_version = f"{manifest['kind']}-{digest}"
        rec_settings = RecommendSettings.of_folder(self.model_dir, settings.settings)
        items = ItemTable.read(settings.items, self.model.items) if settings.items is not None else None
        self.popularity = PopularityIndex(self.model.popularity)
        self.model.enable_query_cache(settings.query_cache)  # sequence models: repeat users skip the forward
        self.pipeline = RecommendPipeline(self.model, items=items, settings=rec_settings, popularity=self.popularity)
        self.ranker = BatchedRanker.from_settings(self.pipeline, settings)  # concurrent requests: one forward pass
        self.user_int_ids = np.issubdtype(np.asarray(self.model.users.external_ids).dtype, np.integer)
        self.behaviors = tuple(
            str(b) for b in self.model.context_vocab.get("behavior", ())
        )  # empty: trained without behaviour types
        self._known_behaviors = frozenset(self.behaviors)
        self.metrics = ServiceMetrics(
            {
                "kind": manifest["kind"],
                "version": self.model_version,
                "chronorec_version": str(manifest.get("chronorec_version", "")),
            }
        )
        if self.model.query_cache is not None:
            self.metrics.watch_query_cache(self.model.query_cache)
        self.store = LiveEventStore(settings.live_dir)
        self.live = LiveHistories()
        self._replay()
        self.started = time.time()
        self.pipeline.rank(np.zeros(1, np.int64), [np.ones(1, np.int64)], RecommendOptions(k=1))  # warm-up
        logger.info("serving %s from %s (%d live events)", self.model_version, self.model_dir, len(self.store))

    # ---------------------------------------------------------------- ids and live events
    def user_key(self, user: Any) -> tuple[Any, str]:
        """The user id in the model's id type (``"12"`` -> 12 for integer ids) and its live-state key."""
        if self.user_int_ids and isinstance(user, str):
            try:
                user = int(user)
            except ValueError:
                pass
        if not self.user_int_ids and not isinstance(user, str):
            user = str(user)
        return user, json.dumps(user)

    def _replay(self) -> None:
        """Apply the stored live events; one that cannot be applied is quarantined (moved aside,
        logged and counted on /metrics), so a bad row never stops the service from starting."""
        bad: dict[int, str] = {}
        for e in self.store:
            try:
                if "error" in e:
                    raise ValueError(e["error"])
                self._apply(e)
            except (ValueError, TypeError, OverflowError, KeyError) as err:
                bad[e["seq"]] = f"{type(err).__name__}: {err}"[:500]
        if bad:
            self.store.quarantine(bad)
            logger.warning(
                "quarantined %d stored live events that cannot be applied (table quarantined_events in %s): %s",
                *(len(bad), self.store.path, "; ".join(f"seq {k}: {v}" for k, v in list(bad.items())[:5])),
            )
        self.metrics.set_quarantined(self.store.n_quarantined())

    def unknown_behaviors(self, names: Sequence[str | None]) -> str:
        """A warning naming the behaviour types among ``names`` that the model was not trained on, with
        the nearest known name where one is close ("" when all are known, or when the model was trained
        without behaviour types: it has no names to check against)."""
        known = self._known_behaviors
        if not known or known.issuperset(set(names) - {None}):  # the usual case: one set operation
            return ""
        unknown = list(dict.fromkeys(b for b in names if b is not None and b not in known))
        hints = []
        for b in unknown[:10]:
            close = difflib.get_close_matches(b.lower(), self.behaviors, n=1, cutoff=0.6)
            if close:
                hints.append(f"{b!r} -> {close[0]!r}?")
        return f"behaviour types {unknown[:10]} unknown to the model, which knows {list(self.behaviors)[:20]}" + (
            f" (did you mean {', '.join(hints)})" if hints else ""
        )

    def _apply(self, e: dict[str, Any]) -> int:
        """Add a stored event to the live histories and popularity; its internal item (0 = unknown)."""
        _, key = self.user_key(e["user_id"])
        if isinstance(e["item_id"], int) and not -(2**63) <= e["item_id"] < 2**63:  # POST /events refuses these
            raise OverflowError(f"item_id {e['item_id']} is beyond 64-bit integers")
        item = int(to_internal(self.model.items, [e["item_id"]])[0])
        if item > 0:
            self.live.add(key, item, e.get("behavior"))
            ctx = dict(e.get("context") or {})
            ctx.setdefault("time", e["timestamp"])
            self.popularity.add(item, context_keys(ctx))
        return item

    def add_events(self, events: list[Event], idempotency: tuple[str, str] | None = None) -> dict[str, Any]:
        """Commit events to the store, then let them count; events of unknown items are only stored.

        ``idempotency`` (key, body digest) is committed with them (see :meth:`LiveEventStore.append`)."""
        now = int(time.time())
        rows = [
            {
                "user_id": self.user_key(e.user_id)[0],
                "item_id": e.item_id,
                "behavior": e.behavior,
                "timestamp": e.timestamp if e.timestamp is not None else now,
                "context": e.context or {},
            }
            for e in events
        ]
        self.store.append(rows, idempotency=idempotency)
        unknown = [row["item_id"] for row in rows if self._apply(row) == 0]
        self.metrics.add_live_events(len(rows))
        warnings = []
        if unknown:
            warnings.append(
                f"{len(unknown)} events name items unknown to the model: stored for retraining, "
                f"not used for recommendations: {unknown[:10]}"
            )
        odd = self.unknown_behaviors([row["behavior"] for row in rows])
        if odd:
            n = sum(row["behavior"] is not None and row["behavior"] not in self._known_behaviors for row in rows)
            warnings.append(
                f"{n} events name {odd}: stored as given and used like any event; only a model retrained on "
                "them learns these types, and only exclude_behaviors filters naming them match them"
            )
        return {"accepted": len(rows), "warnings": warnings}

    # ---------------------------------------------------------------- recommendations
    def _user_events(self, user_id: Any, warnings: list[str]) -> tuple[Any, int, np.ndarray, list[str | None]]:
        """``(user id, internal user, items, behaviours)``: the training history and live events of a user."""
        user_out, key = self.user_key(user_id)
        user_int = int(to_internal(self.model.users, [user_out])[0])
        base = self.pipeline.user_history(user_int)
        live_items, live_beh = self.live.get(key)
        if user_int == 0:
            warnings.append(
                f"user_id {user_out!r} is unknown to the model"
                + (f"; using its {len(live_items)} live events" if len(live_items) else "; cold-start path")
            )
        return user_out, user_int, np.concatenate([base, live_items]), [None] * len(base) + live_beh

    def _explicit_events(self, history: list[Any], warnings: list[str]) -> tuple[np.ndarray, list[str | None]]:
        """An explicit history's known items (in time order when every event has a timestamp) and behaviours."""
        hist = [h if isinstance(h, HistoryItem) else HistoryItem(item_id=h) for h in history]
        if all(h.timestamp is not None for h in hist):
            hist = sorted(hist, key=lambda h: h.timestamp)  # stable: ties keep the given order
        idx = to_internal(self.model.items, [h.item_id for h in hist])
        self.pipeline.known_items([h.item_id for h in hist], warnings)
        if self._known_behaviors:
            odd = self.unknown_behaviors([h.behavior for h in hist])
            if odd:
                warnings.append(
                    f"history: {odd}: the events count as history as usual; only exclude_behaviors "
                    "filters naming these types match them"
                )
        return idx[idx > 0], [h.behavior for h, i in zip(hist, idx, strict=True) if i > 0]

    def prepare(self, req: RecommendRequest) -> tuple[list[str], int, HistoryEvents]:
        """``(warnings, internal user, history)`` of a request: training history, live events and the
        explicit history, before ranking."""
        warnings: list[str] = []
        user_int = 0
        items, behaviors = np.zeros(0, np.int64), []
        if req.user_id is not None:
            _, user_int, items, behaviors = self._user_events(req.user_id, warnings)
        if req.history:
            more, more_beh = self._explicit_events(req.history, warnings)
            items, behaviors = np.concatenate([items, more]), behaviors + more_beh
            if not len(items):
                warnings.append(POPULARITY_FALLBACK)
        has_beh = behaviors.count(None) != len(behaviors)  # C speed: histories run to thousands
        return warnings, user_int, HistoryEvents(items, behaviors if has_beh else None)

    def answer(self, req: RecommendRequest, warnings: list[str], history: HistoryEvents, ranked: RankedList) -> dict:
        """The body of ``POST /recommend`` (see :class:`~chronorec.serving.schemas.RecommendResponse`)."""
        return {
            "user_id": _py(req.user_id) if req.user_id is not None else None,  # as the request gave it
            "items": self._items_out(ranked),
            "strategy": ranked.strategy,
            "history_length": int(len(history)),
            "warnings": warnings + ranked.warnings,
            "model_version": self.model_version,
        }

    async def recommend(self, req: RecommendRequest) -> dict[str, Any]:
        """The answer of ``POST /recommend``, from the event loop: admitted (past ``max_queue``,
        :class:`~chronorec.serving.microbatch.Overloaded`), prepared and answered here, and ranked by
        :meth:`BatchedRanker.rank <chronorec.serving.microbatch.BatchedRanker.rank>` with the requests
        that arrive with it."""
        with self.ranker.admitted():
            warnings, user_int, history = self.prepare(req)
            # the request is a RecommendOptions with its k, filters, rerank, blend and explain
            ranked = await self.ranker.rank(user_int, history, req, req.context)
            return self.answer(req, warnings, history, ranked)

    def _items_out(self, ranked: RankedList) -> list[dict[str, Any]]:
        """A ranked list as response items with external ids, names and explanations."""
        pipe = self.pipeline
        items = np.asarray(ranked.items, np.int64)
        if not len(items):
            return []
        reasons = ranked.explanations or [[] for _ in items]
        because_ids = np.array([j for row in reasons for j, _ in row], np.int64)
        # every external id and name of the answer in one lookup each, as Python scalars for JSON
        ids = np.concatenate([items, because_ids])
        ext, names = pipe.external(ids).tolist(), pipe.item_names(ids)
        scores = np.asarray(ranked.scores, np.float64).tolist()
        texts = ranked.reasons or [""] * len(items)
        out, at = [], len(items)
        for r in range(len(items)):
            row = reasons[r]
            because = [
                {"item_id": ext[a], "name": names[a], "similarity": round(sim, 6), "basis": ranked.basis}
                for a, (_, sim) in enumerate(row, start=at)
            ]
            at += len(row)
            out.append(
                {
                    "item_id": ext[r],
                    "name": names[r],
                    "score": scores[r],
                    "rank": r + 1,
                    "because": because,
                    "reason": texts[r],
                }
            )
        return out

    def health(self) -> dict[str, Any]:
        """Liveness and what is served."""
        return {
            "status": "ok",
            "model_version": self.model_version,
            "model_dir": str(self.model_dir),
            "n_items": self.model.n_items,
            "n_users": self.model.users.size,
            "live_events": len(self.store),
            "quarantined_events": self.store.n_quarantined(),
            "query_cache": cache.stats() if (cache := self.model.query_cache) is not None else None,
            "uptime_s": round(time.time() - self.started, 3),
        }


__all__ = ["Service", "check_model_dir"]
