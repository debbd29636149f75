"""EASE (Steck, 2019): a linear item-item model with a closed-form solution,
B = I - P / diag(P) with P = (X^T X + lambda I)^-1 and a zero diagonal.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from chronorec.models.base import ModelConfig, Recommender


class EASEConfig(ModelConfig):
    kind: Literal["ease"] = Field("ease", description="the model kind")
    l2: float = Field(500.0, gt=0, le=1e9, description="L2 regularisation of the item-item weights")
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads for the solve (None: torch's default)")
    max_memory_gb: float = Field(
        8.0, gt=0, le=4096, description="refuse to fit when the dense item-item solve would need more memory (GiB)"
    )


class EASE(Recommender):
    kind = "ease"
    Config = EASEConfig

    def _fit(self, log, validation) -> None:
        n = self.n_items + 1
        need = 3 * n * n * 8 / 2**30  # the Gram matrix, its inverse and B, float64
        if need > self.config.max_memory_gb:
            from chronorec.errors import ConfigError

            raise ConfigError(
                f"ease: {self.n_items} items need about {need:.1f} GiB for the dense item-item solve (limit "
                f"max_memory_gb={self.config.max_memory_gb:g}); filter rare items (--min-item-events) or use itemknn"
            )
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        X = self.store.seen_matrix()
        X.data[:] = 1.0
        G = torch.from_numpy((X.T @ X).toarray().astype(np.float64))
        G[0, 0] = 1.0  # padding column is all zero; keep the matrix invertible
        G += self.config.l2 * torch.eye(G.shape[0], dtype=G.dtype)
        P = torch.linalg.inv(G)
        B = -P / torch.diagonal(P)[None, :]
        B.fill_diagonal_(0.0)
        B[0, :] = 0
        B[:, 0] = 0
        self.B = B.float()

    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        x = torch.zeros(len(histories), self.n_items + 1)
        for r, h in enumerate(histories):
            x[r, torch.from_numpy(np.array(h, dtype=np.int64))] = 1.0
        return x @ self.B

    def explain_items(self, history: np.ndarray, items: np.ndarray, n: int = 3) -> list[list[tuple[int, float]]]:
        """For each item, the up to ``n`` history items with the largest positive weights ``B[h, item]``:
        the score is the sum of these weights over the distinct history items."""
        uniq = np.unique(np.asarray(history, dtype=np.int64))
        w = self.B[torch.from_numpy(uniq)][:, torch.from_numpy(np.asarray(items, dtype=np.int64))].numpy()
        out = []
        for c in range(w.shape[1]):
            order = np.argsort(-w[:, c], kind="stable")[:n]
            out.append([(int(uniq[j]), float(w[j, c])) for j in order if w[j, c] > 0])
        return out

    def _state(self):
        return {"B": self.B}

    def _set_state(self, state):
        self.B = torch.from_numpy(state["B"].copy())
