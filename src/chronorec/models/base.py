"""The one API every model shares.

``fit(log) -> self``; ``recommend(users, k)`` and ``recommend_from_history(histories, k)``
return a DataFrame ``user_id, item_id, score, rank`` with external ids; ``save(dir)`` and
``chronorec.load(dir)`` round-trip through safetensors + JSON + Parquet.

A model keeps the training histories of its users (so ``recommend`` needs no data passed
back) and the training popularity (the cold-start answer for an empty history).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from chronorec.artifacts import atomic_dir, load_tensors, read_manifest, save_tensors, write_manifest
from chronorec.data import columns as C
from chronorec.data.eventlog import EventLog
from chronorec.data.idmap import IdMap
from chronorec.data.sequences import SequenceStore
from chronorec.models.protocol import ListPath, Pairs
from chronorec.models.sequential import context as ctxf
from chronorec.models.topk import recommend_top_k
from chronorec.scoring.ranking_metrics import SCORE_BATCH
from chronorec.settings import Strict
from chronorec.training.tracking import log_model_folder


class ModelConfig(Strict):
    """Base of every model's configuration: unknown keys are rejected."""

    history: Literal["auto", "exclude", "include"] = Field(
        "auto",
        description="the history protocol, decided once at fit and recorded with the model: whether the user's "
        "own items are excluded from (exclude) or kept in (include) validation, evaluation and recommendations; "
        "auto: exclude when at most 1% of the validation targets repeat a history item, include otherwise",
    )


class Recommender:
    kind: ClassVar[str]
    Config: ClassVar[type[ModelConfig]]

    def __init__(self, **params: Any):
        self.config = self.Config(**params)
        self.users: IdMap | None = None
        self.items: IdMap | None = None
        self.store: SequenceStore | None = None
        self.popularity: np.ndarray | None = None
        self.item_names: pd.Series | None = None
        self.context_vocab: dict[str, list[str]] = {}  # behaviour names and context-column values (code - 1)
        self.fit_info: dict[str, Any] = {}
        self.training_data: dict[str, Any] = {}  # chronorec.data.fingerprint.training_record (+ "split")
        self.history_protocol: dict[str, Any] | None = None  # HistoryDecision.to_dict(), decided at fit
        self.query_cache: Any = None  # see enable_query_cache
        self.list_path: ListPath | None = None  # the pipeline that makes its lists (attached by chronorec.load)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items() if k != "kind")
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ fitting
    @property
    def n_items(self) -> int:
        if self.items is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(log) first")
        return self.items.size

    def fit(self, log: EventLog, *, validation: Any = None) -> "Recommender":
        """Fit on ``log``. ``validation`` (an EvalSet) drives early stopping where a model has it."""
        t0 = time.perf_counter()
        self.fit_info = {}
        self._remember(log)
        self._decide_history(validation)
        self._fit(log, validation)
        self.fit_info.setdefault("train_seconds", time.perf_counter() - t0)
        self.fit_info["history_protocol"] = self.history_protocol
        return self

    def _decide_history(self, validation: Any) -> None:
        """Decide the history protocol once, before training, so the validation metric that chooses
        epochs is the one evaluation and recommendations use (``config.history``; ``auto`` measures
        the repeat share of the validation targets, or of the last training events without them)."""
        from chronorec.scoring.history import decide_history

        store = self.store
        decision = decide_history(self.config.history, validation, training=(store.offsets, store.items))
        self.history_protocol = decision.to_dict()

    @property
    def exclude_history(self) -> bool:
        """Whether this model's protocol drops the user's own items from its rankings: the decision
        recorded at fit (``history_protocol``); for folders saved before it was recorded, kept for
        buy-again and repeat blends and dropped otherwise."""
        if self.history_protocol is not None:
            return bool(self.history_protocol["exclude"])
        return not self.ranks_own_items

    @property
    def history_label(self) -> str:
        """``"history included"`` or ``"history excluded"``: named beside every metric."""
        return "history excluded" if self.exclude_history else "history included"

    def record_split(self, split: Any) -> "Recommender":
        """Record the split whose training part this model was fitted on (``None``: all events), so
        ``chronorec evaluate`` can refuse to score it on data it has seen."""
        self.training_data["split"] = split.describe() if split is not None else {"protocol": "all events"}
        return self

    def _remember(self, log: EventLog) -> None:
        from chronorec.data.fingerprint import training_record

        self.training_data = training_record(log)
        self.users, self.items = log.users, log.items
        self.store = log.sequences()
        self.item_names = log.item_names
        self.context_vocab = {}
        if self.store.behaviors is not None and log.behaviors is not None:
            self.context_vocab["behavior"] = [str(b) for b in log.behaviors.external_ids]
        for col in log.context_columns:  # the store's codes are pd.factorize(column) + 1
            if col in log.events.columns:
                self.context_vocab[col] = [str(v) for v in pd.factorize(log.events[col])[1]]
        self.popularity = np.bincount(self.store.items, minlength=log.n_items + 1).astype(np.float32)
        self.popularity[0] = 0

    def _fit(self, log: EventLog, validation: Any) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        """Scores (len(users), n_items + 1) for internal users and their internal histories."""
        raise NotImplementedError

    def score(
        self, users: np.ndarray, histories: list[np.ndarray], context: list[dict[str, Any] | None] | None = None
    ) -> torch.Tensor:
        """Scores for a batch; rows with an empty history get training popularity (cold start).

        ``context`` (models with context only): per row, raw internal context codes aligned to the
        history (see ``chronorec.models.sequential.context``); models without context ignore it.
        """
        histories = [np.asarray(h, dtype=np.int64) for h in histories]
        empty = np.array([len(h) == 0 for h in histories])
        if empty.all():
            return torch.from_numpy(np.tile(self.popularity, (len(histories), 1)))
        users = np.asarray(users, dtype=np.int64)
        if context is not None and self.uses_context:
            scores = self._score(users, histories, context=context).float()
        else:
            scores = self._score(users, histories).float()
        if empty.any():
            scores[torch.from_numpy(empty)] = torch.from_numpy(self.popularity)
        return scores

    uses_context: ClassVar[bool] = False  # True where ``_score`` accepts ``context=``
    ranks_own_items: ClassVar[bool] = False
    """True for kinds built to rank the user's own items (buy-again and its kin): their seen-items
    default in folders saved before the history protocol was recorded."""

    def _topk(
        self,
        users: np.ndarray,
        histories: list[np.ndarray],
        k: int,
        exclude_seen: bool,
        batch_size: int = SCORE_BATCH,
        context: list[dict[str, Any] | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k internal ids and scores (see :func:`chronorec.models.topk.recommend_top_k`)."""
        return recommend_top_k(
            self.score,
            users,
            histories,
            k,
            n_items=self.n_items,
            exclude_seen=exclude_seen,
            batch_size=batch_size,
            context=context,
        )

    def _frame(self, user_labels: Sequence[Any], idx: np.ndarray, val: np.ndarray) -> pd.DataFrame:
        n, k = idx.shape
        keep = np.isfinite(val).ravel()  # fewer than k candidates left after exclusion
        df = pd.DataFrame(
            {
                C.USER: np.repeat(np.asarray(list(user_labels), dtype=object), k),
                C.ITEM: self.items.to_external(np.maximum(idx.ravel(), 1)),
                C.SCORE: val.ravel().astype(np.float64),
                C.RANK: np.tile(np.arange(1, k + 1), n),
            }
        )
        df = df[keep].reset_index(drop=True)
        if len(df) and pd.api.types.is_numeric_dtype(pd.Series(list(user_labels))):
            df[C.USER] = pd.to_numeric(df[C.USER])
        return df

    def lists(self) -> ListPath:
        """What makes this model's lists: the recommendation pipeline attached to it (``list_path``:
        :func:`chronorec.load` attaches the folder's, with its ``recommend.json``), else the pipeline's
        core with default settings (:class:`CoreLists`), which ranks as that pipeline does."""
        return self.list_path if self.list_path is not None else CoreLists(self)

    def recommend(self, users: Sequence[Any], k: int = 10, *, exclude_seen: bool | None = None) -> pd.DataFrame:
        """Top-k for known users (external ids), from their training histories.

        Users unknown to the model are answered from an empty history (popularity). ``exclude_seen``
        None: the list settings' filter, else the model's history protocol (:attr:`exclude_history`).
        Ranked by :meth:`lists`: the same lists as ``chronorec recommend``, the service and the batch job.
        """
        return self.lists().model_lists(list(users), None, k, exclude_seen=exclude_seen)

    def recommend_from_history(
        self,
        histories: Sequence[Sequence[Any]],
        k: int = 10,
        *,
        exclude_seen: bool | None = None,
        user_ids: Sequence[Any] | None = None,
        context: Sequence[dict[str, Any] | None] | None = None,
    ) -> pd.DataFrame:
        """Top-k for live histories of external item ids (oldest first). Unknown items are ignored.

        ``context`` (optional, one dict or None per history) gives the history's context with one
        value per item, e.g. ``{"behavior": ["view", "cart"], "timestamp": [t1, t2], "device": [...]}``,
        and under ``"next"`` the request's own context, e.g. ``{"behavior": "buy", "timestamp": t}``.
        Models without context ignore it. ``exclude_seen`` None: as :meth:`recommend`.
        """
        if context is not None and len(context) != len(histories):
            raise ValueError(f"context has {len(context)} entries for {len(histories)} histories")
        hist = [list(h) for h in histories]
        return self.lists().model_lists(None, hist, k, exclude_seen=exclude_seen, user_ids=user_ids, context=context)

    def encode_history_context(self, context: Mapping[str, Any], keep: np.ndarray) -> dict[str, Any]:
        """A live history's external context (one value per item, the request's under ``"next"``) as
        the raw internal codes ``score`` takes, aligned to the kept (known) items."""
        return ctxf.encode_external(context, keep, self.context_vocab)

    # ------------------------------------------------------------------ capabilities (models.protocol)
    others_by_popularity: ClassVar[bool] = False
    """True where the items outside the user's history follow by training popularity (buy-again kinds):
    their explanations add the popularity reason to those items."""

    def item_embeddings(self) -> np.ndarray | None:
        """Unit-norm item vectors (n_items + 1, d), row 0 zero; None for models without them."""
        return None

    @property
    def request_features(self) -> list[str]:
        """The context features of the next event this model conditions its scores on (empty: none)."""
        return []

    @property
    def history_context(self) -> bool:
        """Whether this model embeds the context of past events (behaviour, time, context columns)."""
        return False

    def encode_request_context(self, context: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
        """``({"next": codes} or None, warnings)`` for one request's context (``{"device": "mobile",
        "time": 1718000000, "behavior": "buy"}``), coded against the training vocabulary.

        None where the context is empty or this model does not use it (then a warning says why)."""
        ctx = {str(k): v for k, v in (context or {}).items() if v is not None}
        if not ctx:
            return None, []
        features = self.request_features
        if not features:
            return None, [self._context_ignored(sorted(ctx))]
        return ctxf.encode_request(ctx, self.context_vocab, features)

    def _context_ignored(self, keys: list[str]) -> str:
        if self.history_context:
            why = "uses the context of past events only (trained without request_context=true)"
        else:
            why = (
                "was trained without context (train a sequence model with -p use_context=true "
                "-p request_context=true to use it)"
            )
        return f"context {keys} ignored by the model: this {self.kind} model {why}"

    def explain_items(self, history: np.ndarray, items: np.ndarray, n: int) -> Pairs | None:
        """Up to ``n`` history items behind each of ``items`` by the model's own contributions; None
        where the model has none (the pipeline then explains by embeddings or categories)."""
        return None

    def history_reasons(self, history: np.ndarray, items: np.ndarray) -> list[str] | None:
        """One sentence per item on how the user's own items are ranked (repeat models); else None."""
        return None

    def describe_items(self, items: np.ndarray) -> list[str] | None:
        """One sentence per item on what it is popular in (models that rank by counts); else None."""
        return None

    def enable_query_cache(self, size: int) -> bool:
        """Keep the query vectors of up to ``size`` histories (models with one query vector); returns
        whether the cache is on (never, by default)."""
        self.query_cache = None
        return False

    @property
    def max_history_width(self) -> int | None:
        """The most history items one forward pass reads (None: no fixed width); the service groups
        a batch of requests by it."""
        return None

    @property
    def members(self) -> list[Recommender]:
        """The fitted models an ensemble combines (empty for a single model)."""
        return []

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        """Model-specific arrays to save (override)."""
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from arrays saved by ``_state`` (override)."""

    def save(self, directory: str | Path) -> Path:
        if self.items is None:
            raise RuntimeError("cannot save an unfitted model")
        final = Path(directory)
        with atomic_dir(final) as d:  # written aside, renamed into place: the old model survives a crash
            self._write(d)
        log_model_folder(self.fit_info, final)  # to the MLflow run of its training, if it was tracked
        return final

    def _write(self, d: Path, manifest_extra: dict[str, Any] | None = None) -> None:
        """Write the model's files and manifest into the (new, empty) folder ``d``."""
        tensors = {
            "_store.offsets": self.store.offsets,
            "_store.items": self.store.items,
            "_popularity": self.popularity,
        }
        if self.store.timestamps is not None:
            tensors["_store.timestamps"] = self.store.timestamps
        if self.store.behaviors is not None:
            tensors["_store.behaviors"] = self.store.behaviors
        for col, codes in self.store.extra.items():
            tensors[f"_store.extra.{col}"] = np.asarray(codes, dtype=np.int64)
        tensors.update({f"model.{k}": v for k, v in self._state().items()})
        save_tensors(d / "model.safetensors", tensors)
        (d / "config.json").write_text(
            json.dumps(
                {
                    "kind": self.kind,
                    "config": self.config.model_dump(),
                    "fit_info": self.fit_info,
                    "context_vocab": self.context_vocab,
                    "training_data": self.training_data,
                },
                indent=2,
            )
        )
        self.users.save(d / "users.parquet")
        self.items.save(d / "items.parquet")
        if self.item_names is not None:
            pd.DataFrame(
                {"internal_id": self.item_names.index, "name": self.item_names.astype(str).to_numpy()}
            ).to_parquet(d / "item_names.parquet", index=False)
        write_manifest(d, self.kind, extra=manifest_extra)

    @classmethod
    def _read_meta(cls, d: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """The checked manifest and ``config.json`` of a saved model of this kind."""
        manifest = read_manifest(d)
        if manifest["kind"] != cls.kind:
            raise ValueError(f"{d} holds a {manifest['kind']!r} model, not {cls.kind!r}")
        return manifest, json.loads((d / "config.json").read_text())

    @classmethod
    def _load_dir(cls, d: Path, device: str = "auto") -> "Recommender":
        _, meta = cls._read_meta(d)
        params = {k: v for k, v in meta["config"].items() if k != "kind"}
        if "device" in cls.Config.model_fields:
            params["device"] = device  # where it was trained does not bind where it runs
        model = cls(**params)
        model.fit_info = meta.get("fit_info", {})
        model.training_data = meta.get("training_data", {})  # absent in folders saved before it existed
        model.history_protocol = model.fit_info.get("history_protocol")  # None in folders saved before it
        model.users = IdMap.load(d / "users.parquet")
        model.items = IdMap.load(d / "items.parquet")
        if (d / "item_names.parquet").exists():
            t = pd.read_parquet(d / "item_names.parquet")
            model.item_names = pd.Series(t["name"].to_numpy(), index=t["internal_id"].to_numpy())
        t = load_tensors(d / "model.safetensors")
        model.store = SequenceStore(
            offsets=t["_store.offsets"],
            items=t["_store.items"],
            n_items=model.items.size,
            timestamps=t.get("_store.timestamps"),
            behaviors=t.get("_store.behaviors"),
            extra={k[len("_store.extra.") :]: v for k, v in t.items() if k.startswith("_store.extra.")},
        )
        model.context_vocab = meta.get("context_vocab", {})
        model.popularity = t["_popularity"]
        model._set_state({k[len("model.") :]: v for k, v in t.items() if k.startswith("model.")})
        return model

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "Recommender":
        """A saved model; ``device`` places neural weights ("auto": a GPU when present, else the CPU)."""
        return cls._load_dir(Path(directory), device=device)


class CoreLists:
    """The lists of a model that no recommendation pipeline was attached to (fitted in this process,
    or loaded with ``chronorec.models.registry.load``): the pipeline's core with its default settings,
    the one top-k (:func:`chronorec.models.topk.top_k`), the model's history protocol for seen items
    and training popularity for an empty history, so they equal ``RecommendPipeline(model)``'s."""

    def __init__(self, model: Recommender):
        self.model = model

    def model_lists(
        self,
        users: Sequence[Any] | None,
        histories: Sequence[Sequence[Any]] | None,
        k: int,
        *,
        exclude_seen: bool | None = None,
        user_ids: Sequence[Any] | None = None,
        context: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> pd.DataFrame:
        m = self.model
        exclude_seen = m.exclude_history if exclude_seen is None else exclude_seen
        if users is not None:
            internal = m.users.to_internal(list(users))
            hist = [m.store.user_items(int(u)) if u > 0 else np.zeros(0, np.int64) for u in internal]
            idx, val = m._topk(internal, hist, k, exclude_seen)
            return m._frame(users, idx, val)
        internal_hist, encoded = [], []
        for r, h in enumerate(histories or []):
            ids = m.items.to_internal(list(h))
            internal_hist.append(ids[ids > 0])
            c = context[r] if context is not None else None
            encoded.append(m.encode_history_context(c, ids > 0) if c else None)
        labels = list(user_ids) if user_ids is not None else list(range(len(internal_hist)))
        idx, val = m._topk(
            np.zeros(len(internal_hist), np.int64),
            internal_hist,
            k,
            exclude_seen,
            context=encoded if context is not None else None,
        )
        return m._frame(labels, idx, val)
