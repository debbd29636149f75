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
    l2: float = Field(500.0, description="L2 regularisation of the item-item weights")
    threads: int | None = Field(None, description="CPU threads for the solve (None: torch's default)")


class EASE(Recommender):
    kind = "ease"
    Config = EASEConfig

    def _fit(self, log, validation) -> None:
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

    def _state(self):
        return {"B": self.B}

    def _set_state(self, state):
        self.B = torch.from_numpy(state["B"].copy())
