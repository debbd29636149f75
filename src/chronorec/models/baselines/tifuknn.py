"""TIFU-KNN (Hu et al., "Modeling Personalized Item Frequency Information for Next-basket
Recommendation", SIGIR 2020), as run by the Next Basket Recommendation Reality Check.

A user's baskets (oldest first, ``n`` of them) become one vector over the catalogue:

1. basket ``i`` (0-based) is a multi-hot vector weighted ``within_decay ** (n - 1 - i)`` (the last
   basket weighs 1);
2. the baskets are cut into ``group_size`` consecutive groups as evenly as possible (the first
   groups get ``n // group_size`` baskets, the last ``n % group_size`` one more); a group's vector is
   the mean of its baskets' vectors; with fewer baskets than ``group_size`` every basket is a group;
3. the user vector is ``sum_g group_decay ** (group_size - 1 - g) * group_g / n_groups``.

Scores = ``alpha * user vector + (1 - alpha) * mean of the vectors of the user's ``neighbours``
nearest other users`` (Euclidean distance between user vectors; the user itself is never its own
neighbour). Step 1 weights baskets by their position from the user's last basket over the whole
history, as the Reality Check's ``tifuknn_new.py`` does (the paper decays within each group).

Baskets come from the training log: its ``basket`` column, else events sharing a timestamp. A known
user scored on (a prefix of) their training sequence gets their own basket boundaries, and the items
of a history beyond that sequence form one more basket; another history (a live request) has no
boundaries, and each of its items counts as a basket.

Hyper-parameters left ``None`` are chosen on the validation cases given to ``fit`` (Recall@10 of
the next-basket metrics, history included; on a tie the value held so far stays), one at a time,
in the order of :data:`GRID`, from the Reality Check's Ta Feng setting
(``neighbours=300, within_decay=0.9, group_decay=0.7, alpha=0.7, group_size=7``), which is also
used without validation.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from chronorec.models.base import ModelConfig, Recommender

logger = logging.getLogger(__name__)

DEFAULTS = {"alpha": 0.7, "neighbours": 300, "group_size": 7, "within_decay": 0.9, "group_decay": 0.7}
"""The Reality Check's TIFU-KNN setting for Ta Feng (README: ``300 0.9 0.7 0.7 7``)."""
GRID = {
    "alpha": (0.1, 0.3, 0.5, 0.7, 0.9, 1.0),
    "neighbours": (100, 300, 900, 2000),
    "group_size": (1, 3, 7, 20),
    "within_decay": (0.8, 0.9, 1.0),
    "group_decay": (0.4, 0.6, 0.7, 0.9),
}
PARAMS = tuple(GRID)


class TIFUKNNConfig(ModelConfig):
    kind: Literal["tifuknn"] = Field("tifuknn", description="the model kind")
    neighbours: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description=f"nearest users blended in; None: chosen on validation in {GRID['neighbours']}",
    )
    within_decay: float | None = Field(
        None, gt=0, le=1, description=f"decay per basket back from the last; None: chosen in {GRID['within_decay']}"
    )
    group_decay: float | None = Field(
        None,
        gt=0,
        le=1,
        description=f"decay per basket group back from the last; None: chosen in {GRID['group_decay']}",
    )
    group_size: int | None = Field(
        None, ge=1, le=100, description=f"number of basket groups; None: chosen in {GRID['group_size']}"
    )
    alpha: float | None = Field(
        None,
        ge=0,
        le=1,
        description=f"weight of the user's own vector against the neighbours'; None: chosen in {GRID['alpha']}",
    )
    batch_size: int = Field(256, ge=1, le=65_536, description="users scored at once (memory: batch x users)")


def user_vectors(
    rows: np.ndarray, basket: np.ndarray, items: np.ndarray, n_rows: int, n_items: int, p: dict[str, Any]
) -> sp.csr_matrix:
    """(n_rows, n_items + 1) TIFU user vectors from events ``(row, basket index within the row, item)``;
    ``basket`` counts 0, 1, ... within each row, oldest first."""
    m, rb, rg = int(p["group_size"]), float(p["within_decay"]), float(p["group_decay"])
    rows, basket, items = (np.asarray(a, dtype=np.int64) for a in (rows, basket, items))
    span_b, span_i = int(basket.max(initial=0)) + 1, n_items + 1
    key = np.unique((rows * span_b + basket) * span_i + items)  # multi-hot: an item counts once per basket
    rows, rest = np.divmod(key, span_b * span_i)
    basket, items = np.divmod(rest, span_i)
    n_b = np.zeros(n_rows, dtype=np.int64)
    np.maximum.at(n_b, rows, basket + 1)
    n = n_b[rows]
    w = rb ** (n - 1 - basket).astype(np.float64)
    small = n < m
    base = np.maximum(n // m, 1)
    extra = n - base * m  # groups with one basket more (the last ones)
    plain = np.maximum(m - extra, 0) * base
    group = np.where(basket < plain, basket // base, (m - extra) + (basket - plain) // (base + 1))
    size = np.where(basket < plain, base, base + 1)
    group = np.where(small, basket, group)
    size = np.where(small, 1, size)
    n_groups = np.where(small, n, m)
    w = w / size * rg ** (m - 1 - group).astype(np.float64) / n_groups
    return sp.csr_matrix((w, (rows, items)), shape=(n_rows, n_items + 1))


class TIFUKNN(Recommender):
    kind = "tifuknn"
    ranks_own_items = True
    Config = TIFUKNNConfig

    def _fit(self, log, validation) -> None:
        from chronorec.scoring.basket_metrics import basket_ids

        codes, key = basket_ids(log)
        users = log.events["user_idx"].to_numpy()
        first = np.full(log.n_users + 1, np.iinfo(np.int64).max)
        np.minimum.at(first, users, codes)  # a user's baskets are numbered consecutively from here
        self.event_basket = (codes - first[users]).astype(np.int64) if len(codes) else np.zeros(0, np.int64)
        self.fit_info["baskets_from"] = key
        self.params = {name: getattr(self.config, name) for name in PARAMS}
        free = [name for name in PARAMS if self.params[name] is None]
        self.params.update({name: DEFAULTS[name] for name in free})
        if free and validation is not None and len(validation):
            self.fit_info["search"] = self._search(validation, free)
            self.fit_info["chosen"] = {name: self.params[name] for name in free}
        self.fit_info.update(self.params)
        self._build()

    def _search(self, validation, free: list[str]) -> list[dict[str, Any]]:
        """Coordinate search: each free parameter in turn over its grid, the others held."""
        from chronorec.scoring.basket_metrics import evaluate_baskets

        table: list[dict[str, Any]] = []
        done: dict[tuple, dict[str, Any]] = {}
        for name in free:
            held = self.params[name]
            best, best_recall = held, -1.0
            for value in sorted(GRID[name], key=lambda v: v != held):  # the held value first: it wins ties
                self.params[name] = value
                key = tuple(self.params[p] for p in PARAMS)
                if key not in done:  # the held values recur once per parameter
                    self._build()
                    m = evaluate_baskets(self.score, validation, n_items=self.n_items, ks=(10,))
                    done[key] = {**self.params, "Recall@10": m["Recall@10"], "NDCG@10": m["NDCG@10"]}
                    table.append(done[key])
                    logger.info("tifuknn validation: %s", done[key])
                if done[key]["Recall@10"] > best_recall + 1e-12:
                    best, best_recall = value, done[key]["Recall@10"]
            self.params[name] = best
        return table

    def _build(self) -> None:
        """The training users' vectors and their squared norms, for the current parameters."""
        off = self.store.offsets
        rows = np.repeat(np.arange(len(off) - 1), np.diff(off))
        self.vectors = user_vectors(rows, self.event_basket, self.store.items, len(off) - 1, self.n_items, self.params)
        self.vectors_t = self.vectors.T.tocsr()
        self.sq_norms = np.asarray(self.vectors.multiply(self.vectors).sum(axis=1)).ravel()
        self.candidates = np.asarray(self.vectors.getnnz(axis=1) > 0)

    def _baskets_of(self, users: np.ndarray, histories: list[np.ndarray]) -> list[np.ndarray]:
        """Basket index per history item. A known user's training sequence keeps its baskets: a history
        that is a prefix of it takes them as they are, one that extends it takes them and puts the new
        items in one more basket (the validation basket, when scoring test after training). Any other
        history (a live request) has no baskets: each item counts as one."""
        out = []
        for u, h in zip(users, histories, strict=True):
            known = 0 < u < len(self.store.offsets) - 1
            own = self.store.user_items(int(u)) if known else np.zeros(0, np.int64)
            a = self.store.offsets[int(u)] if known else 0
            n = min(len(h), len(own))
            if n and np.array_equal(own[:n], h[:n]):
                mine = self.event_basket[a : a + n]
                out.append(np.concatenate([mine, np.full(len(h) - n, mine[-1] + 1, dtype=np.int64)]))
            else:
                out.append(np.arange(len(h), dtype=np.int64))
        return out

    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        out = []
        for s in range(0, len(users), self.config.batch_size):
            out.append(
                self._score_batch(users[s : s + self.config.batch_size], histories[s : s + self.config.batch_size])
            )
        return torch.from_numpy(np.concatenate(out).astype(np.float32))

    def _score_batch(self, users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        n = len(users)
        rows = np.repeat(np.arange(n), [len(h) for h in histories])
        baskets = self._baskets_of(users, histories)
        flat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
        q = user_vectors(rows, flat(baskets).astype(np.int64), flat(histories), n, self.n_items, self.params)
        alpha = float(self.params["alpha"])
        own = q.toarray()
        if alpha >= 1.0:
            return own
        dist = self.sq_norms[None, :] - 2.0 * (q @ self.vectors_t).toarray()  # |q|^2 is the same along a row
        dist[:, ~self.candidates] = np.inf
        inside = (users > 0) & (users < dist.shape[1])
        dist[np.flatnonzero(inside), users[inside]] = np.inf  # never one's own neighbour
        k = int(min(self.params["neighbours"], max(int(self.candidates.sum()) - 1, 1)))
        nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
        ok = np.isfinite(np.take_along_axis(dist, nearest, axis=1))
        w = sp.csr_matrix(
            (np.where(ok, 1.0 / k, 0.0).ravel(), (np.repeat(np.arange(n), k), nearest.ravel())),
            shape=(n, self.vectors.shape[0]),
        )
        return alpha * own + (1.0 - alpha) * (w @ self.vectors).toarray()  # sparse x sparse: the fast way here

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "event_basket": self.event_basket,
            "params": np.asarray([float(self.params[name]) for name in PARAMS], dtype=np.float64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.event_basket = np.asarray(state["event_basket"], dtype=np.int64)
        values = state["params"]
        self.params = {name: float(values[i]) for i, name in enumerate(PARAMS)}
        self.params["neighbours"] = int(self.params["neighbours"])
        self.params["group_size"] = int(self.params["group_size"])
        self._build()
