"""Shared machinery of the neural next-item models (GRU4Rec, SASRec, ...).

A subclass provides ``_build_module()`` returning an ``nn.Module`` with
``forward(items (B, L)) -> hidden (B, L, d)`` and an ``item_emb`` embedding whose weight is
tied to the output layer. Training uses the one loop in ``chronorec.train``; the loss is the
full-catalogue softmax cross-entropy over every position (or a sampled softmax).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from chronorec.evaluate import evaluate_ranking
from chronorec.models.base import ModelConfig, Recommender
from chronorec.models.losses import full_softmax_ce, sampled_softmax_ce
from chronorec.train import TrainSettings, set_threads, train


class SequentialConfig(ModelConfig):
    max_len: int = 200
    dim: int = 64
    dropout: float = 0.2
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    loss: Literal["ce", "sampled", "sampled_pop"] = "ce"
    n_negatives: int = 1000
    train_windows: Literal["last", "random"] = "last"
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
    amp: bool = False  # bfloat16 autocast for training (CPU with AVX-512 BF16, or GPU)


class SequentialRecommender(Recommender):
    Config = SequentialConfig

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.module: torch.nn.Module | None = None

    def _build_module(self) -> torch.nn.Module:
        raise NotImplementedError

    # ------------------------------------------------------------------ training
    def _training_sequences(self) -> list[np.ndarray]:
        st = self.store
        seqs = [st.user_items(u) for u in range(1, st.n_users + 1)]
        return [s for s in seqs if len(s) >= 2]

    def _fit(self, log, validation) -> None:
        cfg = self.config
        set_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.module = self._build_module()
        seqs = self._training_sequences()
        lens = np.array([len(s) for s in seqs])
        L = cfg.max_len
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        pop = torch.from_numpy(np.maximum(self.popularity, 0)) if cfg.loss == "sampled_pop" else None
        if pop is not None:
            pop[0] = 0

        def window(s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            if cfg.train_windows == "random" and len(s) > L + 1:
                end = int(rng.integers(L + 1, len(s) + 1))
                return s[end - L - 1 : end]
            return s[-(L + 1) :]

        def batches(epoch: int, rng: np.random.Generator):
            order = rng.permutation(len(seqs))
            for b in range(0, len(order), cfg.batch_size):
                idx = order[b : b + cfg.batch_size]
                ws = [window(seqs[i], rng) for i in idx]
                width = min(L, max(len(w) for w in ws) - 1)
                x = np.zeros((len(ws), width), np.int64)
                y = np.zeros((len(ws), width), np.int64)
                for r, w in enumerate(ws):
                    n = len(w) - 1
                    x[r, width - n :] = w[:-1]
                    y[r, width - n :] = w[1:]
                yield torch.from_numpy(x), torch.from_numpy(y)

        def loss_fn(module, batch):
            x, y = batch
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.amp):
                return _loss(module, x, y)

        def _loss(module, x, y):
            h = module(x)
            mask = y > 0
            hv, yv = h[mask], y[mask]
            w = module.item_emb.weight
            if cfg.loss == "ce":
                return full_softmax_ce(hv, yv, w, dtype=torch.bfloat16 if cfg.amp else torch.float32)
            return sampled_softmax_ce(hv, yv, w, n_negatives=cfg.n_negatives, generator=gen, popularity=pop)

        validate = None
        if validation is not None and len(validation):
            evalset = validation
            if cfg.eval_users and cfg.eval_users < len(validation):
                from chronorec.split import EvalSet

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
        )
        n = len(seqs)
        result = train(
            self.module,
            batches=batches,
            loss_fn=loss_fn,
            validate=validate,
            settings=settings,
            n_batches=lambda: (n + cfg.batch_size - 1) // cfg.batch_size,
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
    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        L = self.config.max_len
        width = max(1, min(L, max(len(h) for h in histories)))
        x = np.zeros((len(histories), width), np.int64)
        for r, h in enumerate(histories):
            h = h[-width:]
            if len(h):
                x[r, width - len(h) :] = h
        self.module.eval()
        with torch.inference_mode():
            h = self.module(torch.from_numpy(x))[:, -1]
            return h @ self.module.item_emb.weight.t()

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        return dict(self.module.state_dict())

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.module = self._build_module()
        self.module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
        self.module.eval()
