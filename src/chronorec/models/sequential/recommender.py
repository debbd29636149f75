"""Shared machinery of the neural next-item models (GRU4Rec, SASRec, BERT4Rec, HSTU, ...).

A subclass provides ``_build_module()`` returning an ``nn.Module`` with
``forward(items (B, L), feats=None) -> hidden (B, L, d)`` and an ``item_emb`` embedding whose
weight is tied to the output layer (rows 0..n_items; extra rows such as a mask token are never
candidates). ``feats`` maps context feature names to (B, L) codes (and ``timestamp`` to raw
seconds for models that use time directly).

The parts live beside this module: the settings in ``model_config``, the training windows and batches
in ``windows``, the context codes in ``context``, the losses in ``losses``; training runs in the
one :class:`chronorec.training.trainer.Trainer`. A subclass changes what it learns through two
hooks: ``_make_batch`` (which tensors one batch holds; default: causal next-item inputs and
targets) and ``_loss`` (default: the configured next-item loss over every target position: full
softmax, sampled softmax or gBCE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from chronorec.data import columns as C
from chronorec.errors import ConfigError
from chronorec.models.base import Recommender
from chronorec.models.sequential import context as ctxf
from chronorec.models.sequential.losses import full_softmax_ce, gbce, sampled_softmax_ce
from chronorec.models.sequential.model_config import SequentialConfig, check_network_size
from chronorec.models.sequential.query_cache import QueryCache
from chronorec.models.sequential.windows import (
    WindowBatcher,
    gather,
    next_time_groups,
    next_time_targets,
    pad_left,
    pad_right,
    token_batches,
    training_spans,
)
from chronorec.scoring.monitor import validation_metric_name, validation_ndcg10
from chronorec.training.checkpoint import data_record
from chronorec.training.runtime import resolve_device, set_threads, to_device
from chronorec.training.settings import TrainSettings
from chronorec.training.trainer import train

Batch = dict[str, Any]
MONITOR = "ndcg10"  # validation NDCG@10: the history's ``val_ndcg10``

__all__ = ["Batch", "SequentialConfig", "SequentialRecommender", "TrainingParts", "token_batches"]


class TrainingParts(NamedTuple):
    """The parts ``fit`` trains a sequence model with (:meth:`SequentialRecommender.training_parts`)."""

    batcher: WindowBatcher  # the epoch's windows: ``batcher.epoch(rng)`` yields spans per batch
    make_batch: Callable[[list[tuple[int, int]], np.random.Generator], Batch]  # spans -> one batch
    loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor]  # the trainer's loss_fn(module, batch)


class SequentialRecommender(Recommender):
    Config = SequentialConfig
    uses_context = True
    window_extra: ClassVar[int] = 1  # events per training window beyond max_len (1: inputs + shifted targets)
    query_token: ClassVar[bool] = False  # scoring appends a query (mask) token after the history
    needs_timestamps: ClassVar[bool] = False  # the module reads raw timestamps (feats["timestamp"])
    # rows padded on the right in training and scoring (a causal softmax model then needs no mask:
    # ``scaled_dot_product_attention(is_causal=True)``); the others are padded on the left
    right_padding: ClassVar[bool] = False

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.module: torch.nn.Module | None = None
        self._codes: dict[str, np.ndarray] | None = None
        self._next_time: tuple[np.ndarray, np.ndarray] | None = None  # targets="next_time": each event's next basket
        self._device: torch.device | None = None
        self.query_cache: QueryCache | None = None

    @property
    def device(self) -> torch.device:
        """Where the module lives (``config.device`` resolved once: "auto" picks a GPU when present)."""
        if self._device is None:
            self._device = resolve_device(self.config.device)
        return self._device

    @property
    def amp_dtype(self) -> torch.dtype:
        return torch.float16 if self.config.amp_dtype == "float16" else torch.bfloat16

    def _build_module(self) -> torch.nn.Module:
        raise NotImplementedError

    # ------------------------------------------------------------------ context
    @property
    def context_features(self) -> list[str]:
        """Context features the model embeds (empty unless ``use_context``)."""
        if not self.config.use_context:
            return []
        has_time = self.store is not None and self.store.timestamps is not None
        avail = ctxf.available_features(self.context_vocab, has_time)
        wanted = self.config.context_features
        if wanted is None:
            return avail
        known = set(ctxf.TIME_FEATURES) | set(self.context_vocab)
        bad = [f for f in wanted if f not in known]
        if bad:
            raise ConfigError(f"unknown context features {bad}; this log has {sorted(known)}")
        return list(wanted)

    @property
    def request_features(self) -> list[str]:
        """The context features of the next event it conditions on: its context features when
        trained with ``use_context`` and ``request_context``, else none."""
        cfg = self.config
        return self.context_features if cfg.use_context and cfg.request_context else []

    @property
    def history_context(self) -> bool:
        return bool(self.config.use_context)

    @property
    def max_history_width(self) -> int | None:
        """``max_len``: a forward pass reads at most the last ``max_len`` items of a history."""
        return int(self.config.max_len)

    def item_embeddings(self) -> np.ndarray | None:
        """Unit-norm rows 0..n_items of the module's item embedding (tied to the output layer), row 0 zero."""
        emb = getattr(self.module, "item_emb", None) if self.module is not None else None
        if emb is None or not hasattr(emb, "weight"):
            return None
        w = emb.weight[: self.n_items + 1].detach().float().cpu().numpy().astype(np.float32)  # not a mask token
        out = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
        out[0] = 0
        return out

    @property
    def context_sizes(self) -> dict[str, int]:
        """Embedding table size per context feature (for ``blocks.ContextEmbedding``)."""
        return ctxf.feature_sizes(self.context_features, self.context_vocab)

    def _init_module(self) -> torch.nn.Module:
        from chronorec.nn.blocks import ContextEmbedding, set_attention

        module = self._build_module()
        if self.config.use_context and self.config.request_context and not self.query_token:
            module.next_context = ContextEmbedding(self.context_sizes, self.config.dim)
        set_attention(module, self.config.attention, self.config.scoring_attention_fp32)
        return module

    def _flat_codes(self) -> dict[str, np.ndarray]:
        """Context feature codes for every event of the store (flat, aligned with ``store.items``)."""
        if self._codes is None:
            self._codes = ctxf.store_codes(self.store, self.context_features, self.needs_timestamps)
        return self._codes

    # ------------------------------------------------------------------ training hooks
    _gather = staticmethod(gather)

    def _batch_width(self, longest: int) -> int:
        """Columns of a training batch: its longest window, or always ``max_len`` when compiled
        (one static shape, so the compiled graph is not rebuilt for every batch width)."""
        return self.config.max_len if self.config.compile else min(self.config.max_len, longest)

    @property
    def training_targets(self) -> str:
        """``config.targets`` with ``auto`` resolved: next_time when the training log has baskets."""
        if self.config.targets != "auto":
            return self.config.targets
        return "next_time" if C.BASKET in self.context_vocab else "next_event"

    def _make_batch(self, spans: list[tuple[int, int]], rng: np.random.Generator) -> Batch:
        """One batch from event spans ``[a, b)`` of the flat store (causal next-item by default).

        Returns ``items`` and ``targets`` (B, W), ``feats`` (context codes of the input events) and,
        with ``request_context``, ``next`` (the context codes of each target event).
        """
        inputs = [(a, b - 1) for a, b in spans]
        targets = [(a + 1, b) for a, b in spans]
        width = self._batch_width(max(b - a for a, b in inputs))
        codes = self._flat_codes()
        right = self.right_padding
        if self.training_targets == "next_time" and self.store.timestamps is not None:
            return self._next_time_batch(inputs, width, codes, rng)
        batch: Batch = {
            "items": gather(self.store.items, inputs, width, right=right),
            "targets": gather(self.store.items, targets, width, right=right),
            "feats": {f: gather(c, inputs, width, right=right) for f, c in codes.items()} or None,
        }
        if self.config.use_context and self.config.request_context:
            batch["next"] = {f: gather(codes[f], targets, width, right=right) for f in self.context_features}
        return batch

    def _next_time_batch(self, inputs, width: int, codes, rng: np.random.Generator) -> Batch:
        """``_make_batch`` with ``targets="next_time"``: each input event's target is a random event of
        its user's next later timestamp (right-padded rows; left-padded ones are moved to the right)."""
        if self._next_time is None:
            self._next_time = next_time_groups(self.store)
        idx = next_time_targets(inputs, self._next_time, width, rng)
        if not self.right_padding:
            idx = pad_left(idx, np.array([b - a for a, b in inputs]))

        def at(flat: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.where(idx >= 0, flat[np.maximum(idx, 0)], 0))

        right = self.right_padding
        batch: Batch = {
            "items": gather(self.store.items, inputs, width, right=right),
            "targets": at(self.store.items),
            "feats": {f: gather(c, inputs, width, right=right) for f, c in codes.items()} or None,
        }
        if self.config.use_context and self.config.request_context:
            batch["next"] = {f: at(codes[f]) for f in self.context_features}
        return batch

    def _hidden(self, module, items: torch.Tensor, feats, nxt=None, last_only: bool = False) -> torch.Tensor:
        if last_only and getattr(module, "supports_last_only", False):
            h = module(items, feats or None, last_only=True)
        else:
            h = module(items, feats) if feats else module(items)
            h = h[:, -1:] if last_only else h
        if nxt and getattr(module, "next_context", None) is not None:
            h = h + module.next_context(nxt, h)
        return h

    def _output_weight(self, module) -> torch.Tensor:
        """Output embeddings of the candidates 0..n_items (0 = padding)."""
        return module.item_emb.weight[: self.n_items + 1]

    def _logit_space(self, hidden: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(query, candidate) vectors whose dot products are the logits, per ``similarity``."""
        if self.config.similarity == "cosine":
            hidden = torch.nn.functional.normalize(hidden, dim=-1) / self.config.temperature
            weight = torch.nn.functional.normalize(weight, dim=-1)
        return hidden, weight

    def _item_loss(self, module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The configured next-item loss for hidden states (N, d) and their targets (N,)."""
        cfg = self.config
        hidden, w = self._logit_space(hidden, self._output_weight(module))
        if cfg.loss == "ce":
            dtype = self.amp_dtype if cfg.amp else torch.float32
            return full_softmax_ce(hidden, targets, w, dtype=dtype, chunk=cfg.ce_chunk_rows, kernel=cfg.ce_kernel)
        if cfg.loss == "gbce":
            return gbce(hidden, targets, w, n_negatives=cfg.n_negatives, t=cfg.gbce_t, generator=self._gen)
        return sampled_softmax_ce(
            hidden,
            targets,
            w,
            n_negatives=cfg.n_negatives,
            generator=self._gen,
            popularity=self._pop,
            logq_correction=cfg.logq_correction,
        )

    def _loss(self, module, batch: Batch) -> torch.Tensor:
        """Mean loss of one batch (default: every non-padding target position)."""
        h = self._hidden(module, batch["items"], batch.get("feats"), batch.get("next"))
        y = batch["targets"]
        mask = y > 0
        return self._item_loss(module, h[mask], y[mask])

    # ------------------------------------------------------------------ training
    def _check_execution(self, device: torch.device) -> None:
        cfg = self.config
        if cfg.amp and cfg.amp_dtype == "float16" and device.type != "cuda":
            raise ConfigError("amp_dtype='float16' needs a GPU; use 'bfloat16' on CPU")
        if cfg.compile and cfg.batching == "tokens":
            raise ConfigError("compile=True pads every batch to max_len, which batching='tokens' is there to avoid; "
                              "use batching='random' with compile")  # fmt: skip

    def _sampling(self) -> None:
        """The generator and popularity of the sampled losses' negatives."""
        self._gen = torch.Generator().manual_seed(self.config.seed + 1)
        self._pop = None
        if self.config.loss == "sampled_pop":
            self._pop = torch.from_numpy(np.maximum(self.popularity, 0))
            self._pop[0] = 0

    def _loss_fn(self, device: torch.device):
        """The trainer's ``loss_fn``: the batch moved to ``device``, under autocast when asked for."""
        cfg = self.config
        # torch.compile'd forward for training; the eager module keeps the weights, the optimiser
        # and the checkpoints, and scores
        fwd = torch.compile(self.module, dynamic=False, mode=cfg.compile_mode) if cfg.compile else self.module

        def loss_fn(module, batch):
            with torch.autocast(device.type, dtype=self.amp_dtype, enabled=cfg.amp):
                return self._loss(fwd, to_device(batch, device))

        return loss_fn

    def _validator(self, validation):
        """The trainer's ``validate``: NDCG@10 on ``validation`` (or a fixed subset of its users), under
        the history protocol decided at fit (:attr:`exclude_history`) and the cases' own protocol (next
        item or next basket): the number evaluation reports (:mod:`chronorec.scoring.monitor`)."""
        cfg = self.config
        if validation is None or not len(validation):
            return None
        evalset = validation
        if cfg.eval_users and cfg.eval_users < len(validation):
            rows = np.sort(np.random.default_rng(cfg.seed).choice(len(validation), cfg.eval_users, replace=False))
            evalset = validation.subset(rows)

        def validate() -> float:
            return validation_ndcg10(self.score, evalset, n_items=self.n_items, exclude_history=self.exclude_history)

        return validate

    def training_parts(self, log: Any = None) -> TrainingParts:
        """What ``fit`` trains with, to step or time training outside it: a fresh module on the
        device (``self.module``), the epoch's window batcher, ``make_batch(spans, rng)`` and the
        trainer's ``loss_fn``. ``log``: the training log, remembered as ``fit`` does (its users,
        items and sequences); None: the ``users``, ``items`` and ``store`` already set on the model.
        No validation, no history protocol: ``fit`` decides those."""
        if log is not None:
            self._remember(log)
        batcher, loss_fn = self._training_setup()
        return TrainingParts(batcher, self._make_batch, loss_fn)

    def _training_setup(self) -> tuple[WindowBatcher, Any]:
        """A fresh module on the device, the epoch's window batcher and the trainer's ``loss_fn``
        (what ``_fit`` trains with; :meth:`training_parts` gives the same parts)."""
        cfg = self.config
        set_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self._codes = self._next_time = None
        device = self.device
        self._check_execution(device)
        check_network_size(self.config, self.n_items, self.kind)
        self.module = self._init_module().to(device)
        batcher = WindowBatcher(
            training_spans(self.store),
            cfg.max_len + self.window_extra,
            batch_size=cfg.batch_size,
            windows=cfg.train_windows,
            batching=cfg.batching,
        )
        self._sampling()
        return batcher, self._loss_fn(device)

    def _fit(self, log, validation) -> None:
        cfg = self.config
        self.query_cache = None  # new weights: cached queries are stale
        batcher, loss_fn = self._training_setup()
        result = train(
            self.module,
            batches=lambda epoch, rng: (self._make_batch(spans, rng) for spans in batcher.epoch(rng)),
            loss_fn=loss_fn,
            validate=self._validator(validation),
            settings=TrainSettings.of(cfg, label=self.kind, grad_scaler=cfg.amp and cfg.amp_dtype == "float16"),
            n_batches=lambda: batcher.n_batches,
            monitor=MONITOR,
            params={
                "kind": self.kind,
                **cfg.model_dump(exclude={"progress"}),
                "history_protocol": self.history_label,  # named on every epoch line
                "data": data_record(
                    self.training_data["fingerprint"], self.store.offsets, self.store.items, self.items.external_ids
                ),
            },
        )
        lens = batcher.lengths
        self.fit_info = {
            "history": result.history,
            "best_epoch": result.best_epoch,
            f"best_val_{MONITOR}": result.best_metric if np.isfinite(result.best_metric) else None,
            "validation_metric": validation_metric_name(validation),
            "train_seconds": result.train_seconds,
            "epochs_run": len(result.history),
            "targets": self.training_targets,
            "stopped": result.stopped,
            "n_train_sequences": len(batcher.spans),
            "mean_train_len": float(lens.mean()) if len(lens) else 0.0,
            **result.tracking,
        }

    # ------------------------------------------------------------------ scoring
    def _row_context(self, user: int, hist: np.ndarray, ctx: dict[str, Any] | None):
        """(feature codes aligned to ``hist``, raw timestamps or None, next-event codes or None) for one row."""
        return ctxf.row_context(self.store, self._flat_codes(), self.context_features, user, hist, ctx)

    def _score_inputs(self, users: np.ndarray, histories: list[np.ndarray], context) -> tuple[np.ndarray, dict, dict]:
        """Left-padded item ids (B, W [+ query token]), context codes of the same shape, next-event codes (B,)."""
        q = int(self.query_token)
        width = max(1, min(self.config.max_len - q, max(len(h) for h in histories)))
        B = len(histories)
        x = np.zeros((B, width + q), np.int64)
        if q:
            x[:, width] = self.n_items + 1  # the mask token
        want_ctx = bool(self.context_features) or self.needs_timestamps
        feats: dict[str, np.ndarray] = {}
        nxt: dict[str, np.ndarray] = {}
        if want_ctx:
            feats = {f: np.zeros((B, width + q), np.int64) for f in self.context_features}
            if self.needs_timestamps:
                feats["timestamp"] = np.zeros((B, width + q), np.int64)
            nxt = {f: np.zeros(B, np.int64) for f in self.context_features}
        for r, h in enumerate(histories):
            hh = h[-width:]
            if len(hh):
                x[r, width - len(hh) : width] = hh
            if want_ctx:
                row_ctx = context[r] if context is not None else None
                self._fill_row_context(feats, nxt, r, width, int(users[r]) if r < len(users) else 0, h, row_ctx)
        return x, feats, nxt

    def _fill_row_context(self, feats, nxt_np, r: int, width: int, user: int, h: np.ndarray, row_ctx) -> None:
        """Write row ``r``'s context codes (and its query token's) into the score inputs."""
        q = int(self.query_token)
        codes, ts, nxt = self._row_context(user, h, row_ctx)
        k = min(len(h), width)
        for f, c in codes.items():
            if k:
                feats[f][r, width - k : width] = c[-k:]
        if nxt:
            for f, v in nxt.items():
                nxt_np[f][r] = v
                if q:
                    feats[f][r, width] = v  # the query token carries the request's context
        if self.needs_timestamps and ts is not None and len(ts):
            feats["timestamp"][r, width - k : width] = ts[-k:]
            if q:
                t_next = (row_ctx or {}).get("next", {}).get("timestamp")
                feats["timestamp"][r, width] = int(t_next) if t_next is not None else ts[-1]

    def enable_query_cache(self, size: int) -> bool:
        """Keep the query vectors of up to ``size`` histories, so a history scored again skips the
        forward pass (see :mod:`~chronorec.models.sequential.query_cache`); 0 turns it off. Models that
        score from more than the items (context features, timestamps) are never cached: returns
        whether the cache is on."""
        cacheable = not self.context_features and not self.needs_timestamps and not self.config.request_context
        self.query_cache = QueryCache(size) if size > 0 and cacheable else None
        return self.query_cache is not None

    def _score(
        self, users: np.ndarray, histories: list[np.ndarray], context: list[dict[str, Any] | None] | None = None
    ) -> torch.Tensor:
        with torch.inference_mode():
            if self.query_cache is not None:
                window = self.config.max_len - int(self.query_token)
                none = np.zeros(0, np.int64)  # no context: the queries depend on the items alone
                h = self.query_cache.rows(
                    [np.asarray(x)[-window:] for x in histories],
                    lambda rows: self._queries(none, [histories[i] for i in rows], None),
                )
            else:
                h = self._queries(users, histories, context)
        with torch.no_grad():  # outside inference mode: callers may write into the scores (exclusions)
            q, w = self._logit_space(h, self._output_weight(self.module))
            return (q @ w.t()).float().cpu()

    def _queries(
        self, users: np.ndarray, histories: list[np.ndarray], context: list[dict[str, Any] | None] | None
    ) -> torch.Tensor:
        """The query vector (B, d) of each history: the last position's output, float32."""
        x, feats_np, nxt_np = self._score_inputs(users, histories, context)
        if self.right_padding:
            lengths = np.minimum([len(h) for h in histories], x.shape[1])
            x, feats_np = pad_right(x, lengths), {f: pad_right(v, lengths) for f, v in feats_np.items()}
        dev = self.device
        feats = {f: torch.from_numpy(v).to(dev) for f, v in feats_np.items()} or None
        nxt_t = None
        if self.config.request_context and nxt_np and not self.query_token:
            nxt_t = {f: torch.from_numpy(v)[:, None].to(dev) for f, v in nxt_np.items()}
        if self.module.training:  # eval() walks every submodule: skip it when already in eval mode
            self.module.eval()
        with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=self.config.amp):
            h = self._hidden(self.module, torch.from_numpy(x).to(dev), feats, last_only=True).float()
        if nxt_t is not None and getattr(self.module, "next_context", None) is not None:
            h = h + self.module.next_context(nxt_t, h)
        return h[:, 0]

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        return {k: v.detach().cpu() for k, v in self.module.state_dict().items()}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._codes = None
        self.query_cache = None
        self.module = self._init_module()
        self.module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
        self.module.to(self.device).eval()
