"""Shared machinery of the neural next-item models (GRU4Rec, SASRec, BERT4Rec, HSTU, ...).

A subclass provides ``_build_module()`` returning an ``nn.Module`` with
``forward(items (B, L), feats=None) -> hidden (B, L, d)`` and an ``item_emb`` embedding whose
weight is tied to the output layer (rows 0..n_items; extra rows such as a mask token are never
candidates). ``feats`` maps context feature names to (B, L) codes (and ``timestamp`` to raw
seconds for models that use time directly). Training uses the one loop in ``chronorec.training.trainer``;
a subclass changes what it learns through two hooks: ``_make_batch`` (which tensors one batch
holds; default: causal next-item inputs and targets) and ``_loss`` (default: the configured
next-item loss over every target position: full softmax, sampled softmax or gBCE).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch

from chronorec.evaluation.ranking import evaluate_ranking
from chronorec.models.base import ModelConfig, Recommender
from chronorec.models.sequential import context as ctxf
from chronorec.models.sequential.losses import full_softmax_ce, gbce, sampled_softmax_ce
from chronorec.training.trainer import TrainSettings, resolve_device, set_threads, to_device, train

Batch = dict[str, Any]


def token_batches(lengths: np.ndarray, budget: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of ``lengths`` grouped into batches of similar length whose padded size (rows x
    longest) stays within ``budget`` tokens (a longer sequence gets a batch of its own), in random
    order; ties in length are broken at random, so equal-length sequences meet different partners."""
    order = np.lexsort((rng.random(len(lengths)), lengths))
    out, start = [], 0
    for pos in range(1, len(order) + 1):
        # sorted ascending: the batch [start, pos] is padded to the length of its last member
        if pos == len(order) or (pos - start + 1) * lengths[order[pos]] > budget:
            out.append(order[start:pos])
            start = pos
    return [out[i] for i in rng.permutation(len(out))]


class SequentialConfig(ModelConfig):
    max_len: int = 200
    dim: int = 64
    dropout: float = 0.2
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    loss: Literal["ce", "sampled", "sampled_pop", "gbce"] = "ce"
    n_negatives: int = 1000
    logq_correction: bool | None = None  # sampled softmax: None = for popularity negatives only
    gbce_t: float = 0.75  # gBCE calibration: 0 = plain BCE, 1 = fully calibrated
    use_context: bool = False  # sum context embeddings (behaviour, time gap, hour, weekday, columns) into tokens
    context_features: list[str] | None = None  # None = every feature the log carries
    request_context: bool = False  # condition the prediction on the next event's context (its behaviour, time)
    train_windows: Literal["last", "random"] = "last"
    # "random": batches of ``batch_size`` random sequences, padded to the longest; "tokens": sequences
    # of similar length batched together up to ``batch_size`` x the mean length in tokens (about as
    # many batches and targets per batch as "random", without the padding: faster epochs)
    batching: Literal["random", "tokens"] = "random"
    seed: int = 0
    threads: int | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    progress: bool = True
    time_budget_s: float | None = None
    eval_every: int = 1
    eval_users: int | None = None  # validate on a fixed random subset (None = all)
    plateau_factor: float | None = None  # learning-rate decay factor when validation stops improving
    plateau_patience: int = 3
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: decay over epochs / time budget
    min_lr_ratio: float = 0.01
    # learning rate per epoch for a fixed-length run without validation (see TrainSettings.lr_plan);
    # ``refit_plan`` builds it from a validated run
    lr_plan: list[float] | None = None
    amp: bool = False  # mixed-precision autocast for training (CPU with AVX-512 BF16, or GPU)
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"  # float16: GPU only, with a gradient scaler
    device: str = "auto"  # "auto" (a GPU when present, else CPU), "cpu", "cuda", "cuda:1", ...
    compile: bool = False  # torch.compile the training forward (static shapes: batches padded to max_len)
    compile_mode: str | None = None  # torch.compile mode, e.g. "reduce-overhead" (CUDA graphs), "max-autotune"
    # "dot": logits are hidden . item embedding; "cosine": both are L2-normalised and the
    # logits divided by ``temperature`` (as in HSTU's training recipe)
    similarity: Literal["dot", "cosine"] = "dot"
    temperature: float = 0.05


class SequentialRecommender(Recommender):
    Config = SequentialConfig
    uses_context = True
    window_extra: ClassVar[int] = 1  # events per training window beyond max_len (1: inputs + shifted targets)
    query_token: ClassVar[bool] = False  # scoring appends a query (mask) token after the history
    needs_timestamps: ClassVar[bool] = False  # the module reads raw timestamps (feats["timestamp"])

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.module: torch.nn.Module | None = None
        self._codes: dict[str, np.ndarray] | None = None
        self._device: torch.device | None = None

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
            raise ValueError(f"unknown context features {bad}; this log has {sorted(known)}")
        return list(wanted)

    @property
    def context_sizes(self) -> dict[str, int]:
        """Embedding table size per context feature (for ``blocks.ContextEmbedding``)."""
        return ctxf.feature_sizes(self.context_features, self.context_vocab)

    def _init_module(self) -> torch.nn.Module:
        from chronorec.models.sequential.blocks import ContextEmbedding

        module = self._build_module()
        if self.config.use_context and self.config.request_context and not self.query_token:
            module.next_context = ContextEmbedding(self.context_sizes, self.config.dim)
        return module

    def _flat_codes(self) -> dict[str, np.ndarray]:
        """Context feature codes for every event of the store (flat, aligned with ``store.items``)."""
        if self._codes is None:
            st = self.store
            codes: dict[str, np.ndarray] = {}
            feats = self.context_features
            if feats:
                raw = {"behavior": st.behaviors, "timestamp": st.timestamps, **st.extra}
                raw = {k: v for k, v in raw.items() if v is not None}
                first = np.zeros(len(st.items), bool)
                starts = st.offsets[:-1][st.lengths > 0]
                first[starts] = True
                codes = ctxf.event_features(raw, first, feats)
            if self.needs_timestamps and st.timestamps is not None:
                codes["timestamp"] = st.timestamps
            self._codes = codes
        return self._codes

    # ------------------------------------------------------------------ training hooks
    @staticmethod
    def _gather(flat: np.ndarray, spans: list[tuple[int, int]], width: int, tail: int = 0) -> torch.Tensor:
        """Left-padded (len(spans), width + tail) rows of ``flat[a:b]``, each ending at column ``width``."""
        out = np.zeros((len(spans), width + tail), dtype=np.int64)
        for r, (a, b) in enumerate(spans):
            if b > a:
                out[r, width - (b - a) : width] = flat[a:b]
        return torch.from_numpy(out)

    def _batch_width(self, longest: int) -> int:
        """Columns of a training batch: its longest window, or always ``max_len`` when compiled
        (one static shape, so the compiled graph is not rebuilt for every batch width)."""
        return self.config.max_len if self.config.compile else min(self.config.max_len, longest)

    def _make_batch(self, spans: list[tuple[int, int]], rng: np.random.Generator) -> Batch:
        """One batch from event spans ``[a, b)`` of the flat store (causal next-item by default).

        Returns ``items`` and ``targets`` (B, W), ``feats`` (context codes of the input events) and,
        with ``request_context``, ``next`` (the context codes of each target event).
        """
        inputs = [(a, b - 1) for a, b in spans]
        targets = [(a + 1, b) for a, b in spans]
        width = self._batch_width(max(b - a for a, b in inputs))
        codes = self._flat_codes()
        batch: Batch = {
            "items": self._gather(self.store.items, inputs, width),
            "targets": self._gather(self.store.items, targets, width),
            "feats": {f: self._gather(c, inputs, width) for f, c in codes.items()} or None,
        }
        if self.config.use_context and self.config.request_context:
            batch["next"] = {f: self._gather(codes[f], targets, width) for f in self.context_features}
        return batch

    def _hidden(self, module, items: torch.Tensor, feats, nxt=None) -> torch.Tensor:
        h = module(items, feats) if feats else module(items)
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
            return full_softmax_ce(hidden, targets, w, dtype=self.amp_dtype if cfg.amp else torch.float32)
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
    def _training_spans(self) -> list[tuple[int, int]]:
        st = self.store
        off, lens = st.offsets, st.lengths
        users = np.flatnonzero(lens >= 2)
        return [(int(off[u]), int(off[u + 1])) for u in users if u > 0]

    def _fit(self, log, validation) -> None:
        cfg = self.config
        set_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self._codes = None
        device = self.device
        if cfg.amp and cfg.amp_dtype == "float16" and device.type != "cuda":
            raise ValueError("amp_dtype='float16' needs a GPU; use 'bfloat16' on CPU")
        if cfg.compile and cfg.batching == "tokens":
            raise ValueError("compile=True pads every batch to max_len, which batching='tokens' is there to avoid; "
                             "use batching='random' with compile")  # fmt: skip
        self.module = self._init_module().to(device)
        spans = self._training_spans()
        lens = np.array([b - a for a, b in spans])
        span_len = cfg.max_len + self.window_extra
        self._gen = torch.Generator().manual_seed(cfg.seed + 1)
        self._pop = None
        if cfg.loss == "sampled_pop":
            self._pop = torch.from_numpy(np.maximum(self.popularity, 0))
            self._pop[0] = 0

        def window(a: int, b: int, rng: np.random.Generator) -> tuple[int, int]:
            if cfg.train_windows == "random" and b - a > span_len:
                end = int(rng.integers(a + span_len, b + 1))
                return end - span_len, end
            return max(a, b - span_len), b

        widths = np.minimum(lens, span_len)
        budget = cfg.batch_size * max(float(widths.mean()), 1.0) if len(widths) else 1.0

        def groups(rng: np.random.Generator) -> list[np.ndarray]:
            if cfg.batching == "tokens":
                return token_batches(widths, budget, rng)
            order = rng.permutation(len(spans))
            return [order[s : s + cfg.batch_size] for s in range(0, len(order), cfg.batch_size)]

        n_batches = len(groups(np.random.default_rng(0)))  # the same every epoch: lengths fix the packing

        def batches(epoch: int, rng: np.random.Generator):
            for idx in groups(rng):
                yield self._make_batch([window(*spans[i], rng) for i in idx], rng)

        # torch.compile'd forward for training; the eager module keeps the weights, the optimiser
        # and the checkpoints, and scores
        fwd = torch.compile(self.module, dynamic=False, mode=cfg.compile_mode) if cfg.compile else self.module

        def loss_fn(module, batch):
            with torch.autocast(device.type, dtype=self.amp_dtype, enabled=cfg.amp):
                return self._loss(fwd, to_device(batch, device))

        validate = None
        if validation is not None and len(validation):
            evalset = validation
            if cfg.eval_users and cfg.eval_users < len(validation):
                from chronorec.evaluation.split import EvalSet

                rows = np.sort(np.random.default_rng(cfg.seed).choice(len(validation), cfg.eval_users, replace=False))
                evalset = EvalSet.build(
                    validation.users[rows], validation.inputs(rows), validation.targets(rows), "validation"
                )

            def validate() -> float:
                return evaluate_ranking(self.score, evalset, n_items=self.n_items, ks=(10,))["NDCG@10"]

        settings = TrainSettings(
            epochs=cfg.epochs,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            patience=cfg.patience,
            seed=cfg.seed,
            threads=cfg.threads,
            checkpoint_dir=cfg.checkpoint_dir,
            resume=cfg.resume,
            progress=cfg.progress,
            time_budget_s=cfg.time_budget_s,
            eval_every=cfg.eval_every,
            label=self.kind,
            plateau_factor=cfg.plateau_factor,
            plateau_patience=cfg.plateau_patience,
            lr_schedule=cfg.lr_schedule,
            min_lr_ratio=cfg.min_lr_ratio,
            grad_scaler=cfg.amp and cfg.amp_dtype == "float16",
            lr_plan=cfg.lr_plan,
        )
        n = len(spans)
        result = train(
            self.module,
            batches=batches,
            loss_fn=loss_fn,
            validate=validate,
            settings=settings,
            n_batches=lambda: n_batches,
        )
        self.fit_info = {
            "history": result.history,
            "best_epoch": result.best_epoch,
            "best_val_ndcg10": result.best_metric if np.isfinite(result.best_metric) else None,
            "train_seconds": result.train_seconds,
            "epochs_run": len(result.history),
            "stopped": result.stopped,
            "n_train_sequences": int(n),
            "mean_train_len": float(lens.mean()) if len(lens) else 0.0,
        }

    # ------------------------------------------------------------------ scoring
    def _row_context(self, user: int, hist: np.ndarray, ctx: dict[str, Any] | None):
        """(feature codes aligned to ``hist``, raw timestamps or None, next-event codes or None) for one row.

        Without an explicit context, a known user's stored context is used where the history
        starts with the user's training sequence (later events get code 0 = unknown).
        """
        feats = self.context_features
        n = len(hist)
        nxt_raw = None
        if ctx is not None:
            raw = {k: v for k, v in ctx.items() if k != "next"}
            nxt_raw = ctx.get("next")
            m = n
        else:
            raw, m = {}, 0
            st = self.store
            if user > 0 and (st.timestamps is not None or st.behaviors is not None or st.extra):
                a, b = int(st.offsets[user]), int(st.offsets[user + 1])
                m = min(n, b - a)
                if m and np.array_equal(hist[:m], st.items[a : a + m]):
                    flat = self._flat_codes()
                    codes = {f: np.pad(flat[f][a : a + m], (0, n - m)) for f in feats}
                    ts = None
                    if st.timestamps is not None:
                        ts = st.timestamps[a : a + m]
                        ts = np.concatenate([ts, np.full(n - m, ts[-1] if m else 0, np.int64)])
                    return codes, ts, None
                m = 0
        first = np.zeros(m, bool)
        first[:1] = True
        codes = ctxf.event_features({k: np.asarray(v)[:m] for k, v in raw.items()}, first, feats)
        codes = {f: np.pad(c, (0, n - m)) for f, c in codes.items()}
        ts = raw.get("timestamp")
        ts = None if ts is None else np.asarray(ts, dtype=np.int64)
        nxt = None
        if nxt_raw:
            last = int(ts[-1]) if ts is not None and len(ts) else None
            nxt = ctxf.next_features(nxt_raw, last, feats)
        return codes, ts, nxt

    def _score(
        self, users: np.ndarray, histories: list[np.ndarray], context: list[dict[str, Any] | None] | None = None
    ) -> torch.Tensor:
        L = self.config.max_len
        q = int(self.query_token)
        width = max(1, min(L - q, max(len(h) for h in histories)))
        B = len(histories)
        x = np.zeros((B, width + q), np.int64)
        if q:
            x[:, width] = self.n_items + 1  # the mask token
        feats_np: dict[str, np.ndarray] = {}
        nxt_np: dict[str, np.ndarray] = {}
        want_ctx = bool(self.context_features) or self.needs_timestamps
        if want_ctx:
            feats_np = {f: np.zeros((B, width + q), np.int64) for f in self.context_features}
            if self.needs_timestamps:
                feats_np["timestamp"] = np.zeros((B, width + q), np.int64)
            nxt_np = {f: np.zeros(B, np.int64) for f in self.context_features}
        for r, h in enumerate(histories):
            hh = h[-width:]
            if len(hh):
                x[r, width - len(hh) : width] = hh
            if not want_ctx:
                continue
            codes, ts, nxt = self._row_context(
                int(users[r]) if r < len(users) else 0, h, context[r] if context is not None else None
            )
            k = len(hh)
            for f, c in codes.items():
                if k:
                    feats_np[f][r, width - k : width] = c[-k:]
            if nxt:
                for f, v in nxt.items():
                    nxt_np[f][r] = v
                    if q:
                        feats_np[f][r, width] = v  # the query token carries the request's context
            if self.needs_timestamps and ts is not None and len(ts):
                feats_np["timestamp"][r, width - k : width] = ts[-k:]
                if q:
                    t_next = (context[r] or {}).get("next", {}).get("timestamp") if context is not None else None
                    feats_np["timestamp"][r, width] = int(t_next) if t_next is not None else ts[-1]
        dev = self.device
        feats = {f: torch.from_numpy(v).to(dev) for f, v in feats_np.items()} or None
        nxt_t = None
        if self.config.request_context and nxt_np and not q:
            nxt_t = {f: torch.from_numpy(v)[:, None].to(dev) for f, v in nxt_np.items()}
        self.module.eval()
        with torch.inference_mode():
            h = self._hidden(self.module, torch.from_numpy(x).to(dev), feats)[:, -1:]
            if nxt_t is not None and getattr(self.module, "next_context", None) is not None:
                h = h + self.module.next_context(nxt_t, h)
            q, w = self._logit_space(h[:, 0], self._output_weight(self.module))
            return (q @ w.t()).float().cpu()

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        return {k: v.detach().cpu() for k, v in self.module.state_dict().items()}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._codes = None
        self.module = self._init_module()
        self.module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
        self.module.to(self.device).eval()
