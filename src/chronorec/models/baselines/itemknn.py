"""Item-to-item collaborative filtering: cosine similarity between item columns of the
user-item matrix, pruned to each item's top neighbours. A user's score for item j is the
sum of similarities between j and the history items, recent items weighted higher.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from chronorec.models.base import ModelConfig, Recommender


class ItemKNNConfig(ModelConfig):
    kind: Literal["itemknn"] = Field("itemknn", description="the model kind")
    neighbours: int = Field(100, ge=1, le=100_000, description="neighbours kept per item")
    shrink: float = Field(10.0, ge=0, le=1e6, description="shrinkage of the cosine similarity towards 0 for rare pairs")
    recency_decay: float = Field(
        0.0, ge=0, le=100, description="weight of the i-th most recent history item = exp(-decay * i)"
    )
    max_history: int = Field(
        200, ge=1, le=100_000, description="the most recent history items a recommendation looks at"
    )


class ItemKNN(Recommender):
    kind = "itemknn"
    Config = ItemKNNConfig

    def _fit(self, log, validation) -> None:
        X = self.store.seen_matrix()
        X.data[:] = 1.0  # binary
        X = X.tocsc()
        co = (X.T @ X).tocsr().astype(np.float32)
        norms = np.sqrt(np.asarray(co.diagonal()).ravel())
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        sim = co.data / (norms[co.row] * norms[co.col] + self.config.shrink)
        S = sp.csr_matrix((sim.astype(np.float32), (co.row, co.col)), shape=co.shape)
        self.sim = _top_per_row(S, self.config.neighbours)

    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        cfg = self.config
        rows, cols, vals = [], [], []
        for r, h in enumerate(histories):
            h = h[-cfg.max_history :]
            w = np.exp(-cfg.recency_decay * np.arange(len(h))[::-1])
            rows.append(np.full(len(h), r))
            cols.append(h)
            vals.append(w)
        H = sp.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(histories), self.n_items + 1),
        )
        return torch.from_numpy((H @ self.sim).toarray())

    def explain_items(self, history: np.ndarray, items: np.ndarray, n: int = 3) -> list[list[tuple[int, float]]]:
        """For each item, the up to ``n`` history items that voted most for it: ``(item, vote)``.

        A vote is the item-item similarity times the history item's recency weight (summed over its
        repeats), so the votes of all history items add up to the item's score.
        """
        cfg = self.config
        h = np.asarray(history, dtype=np.int64)[-cfg.max_history :]
        w = np.exp(-cfg.recency_decay * np.arange(len(h))[::-1])
        uniq, inv = np.unique(h, return_inverse=True)
        weight = np.bincount(inv, weights=w)
        votes = self.sim[uniq][:, np.asarray(items, dtype=np.int64)].toarray() * weight[:, None]  # (history, items)
        last = np.zeros(len(uniq), np.int64)
        last[inv] = np.arange(len(h))  # position of each history item's latest event
        out = []
        for c in range(votes.shape[1]):
            order = np.lexsort((-last, -votes[:, c]))[:n]  # the largest votes; ties: the most recent first
            out.append([(int(uniq[j]), float(votes[j, c])) for j in order if votes[j, c] > 0])
        return out

    def _state(self):
        S = self.sim
        return {"indptr": S.indptr.astype(np.int64), "indices": S.indices.astype(np.int64), "data": S.data}

    def _set_state(self, state):
        n = self.n_items + 1
        self.sim = sp.csr_matrix((state["data"], state["indices"], state["indptr"]), shape=(n, n))


def _top_per_row(S: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row."""
    S = S.tocsr()
    indptr, indices, data = [0], [], []
    for r in range(S.shape[0]):
        a, b = S.indptr[r], S.indptr[r + 1]
        d, i = S.data[a:b], S.indices[a:b]
        if len(d) > k:
            top = np.argpartition(-d, k)[:k]
            d, i = d[top], i[top]
        indices.append(i)
        data.append(d)
        indptr.append(indptr[-1] + len(d))
    return sp.csr_matrix(
        (np.concatenate(data) if data else [], np.concatenate(indices) if indices else [], np.array(indptr)),
        shape=S.shape,
    )
