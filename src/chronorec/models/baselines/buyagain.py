"""Buy-again baseline: the user's own items first, by a recency-decayed count, then popularity.

The score of an item of the history is ``1 + sum_j exp(-decay * steps_j)`` over its occurrences,
``steps_j`` being how many events ago the occurrence was (0 = the last event): ``decay = 0`` ranks
by frequency, a large decay by recency. Items outside the history follow, by training popularity
(scaled below 1). Evaluate it with the history included (``history="include"`` or ``auto`` on
repeat-heavy data): with the history excluded it is the popularity baseline.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from chronorec.models.base import ModelConfig, Recommender

DECAY_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
DEFAULT_DECAY = 0.1
TIE_DECAY = 0.5  # the recency that orders equal counts


class BuyAgainConfig(ModelConfig):
    kind: Literal["buyagain"] = Field("buyagain", description="the model kind")
    decay: float | None = Field(
        None,
        ge=0,
        le=100,
        description="weight of an occurrence k events ago = exp(-decay * k); None: chosen on validation "
        f"among {list(DECAY_GRID)} (NDCG@10 under the history protocol), {DEFAULT_DECAY} without validation",
    )
    max_history: int = Field(500, ge=1, le=100_000, description="the most recent history items counted")


def repeat_counts(histories: list[np.ndarray], n_items: int, decay: float, max_history: int = 500) -> torch.Tensor:
    """(len(histories), n_items + 1): each history's recency-decayed count of every item (0 elsewhere)."""
    n = len(histories)
    rows, cols, vals = [], [], []
    for r, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)[-max_history:]
        rows.append(np.full(len(h), r, dtype=np.int64))
        cols.append(h)
        vals.append(np.exp(-decay * np.arange(len(h))[::-1]))
    out = torch.zeros((n, n_items + 1), dtype=torch.float32)
    if rows:
        r = torch.from_numpy(np.concatenate(rows))
        c = torch.from_numpy(np.concatenate(cols))
        out.index_put_((r, c), torch.from_numpy(np.concatenate(vals).astype(np.float32)), accumulate=True)
    out[:, 0] = 0.0
    return out


class BuyAgain(Recommender):
    kind = "buyagain"
    ranks_own_items = True
    others_by_popularity = True
    Config = BuyAgainConfig

    def _fit(self, log, validation) -> None:
        self.decay = self.config.decay
        if self.decay is None:
            self.decay = DEFAULT_DECAY
            if validation is not None and len(validation):
                self.decay, table = self._choose_decay(validation)
                self.fit_info["decay_grid"] = table
        self.fit_info["decay"] = self.decay

    def _choose_decay(self, validation) -> tuple[float, list[dict[str, float]]]:
        from chronorec.scoring.monitor import validation_metrics

        table = []
        for decay in DECAY_GRID:
            self.decay = decay
            m = validation_metrics(self.score, validation, n_items=self.n_items, exclude_history=self.exclude_history)
            table.append({"decay": decay, "NDCG@10": m["NDCG@10"], "HR@10": m["HR@10"]})
        best = max(table, key=lambda row: row["NDCG@10"])  # first of equals: the smaller decay
        return float(best["decay"]), table

    def repeat_scores(self, histories: list[np.ndarray]) -> torch.Tensor:
        """The decayed counts alone (0 outside each history)."""
        return repeat_counts(histories, self.n_items, float(self.decay), self.config.max_history)

    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        counts = self.repeat_scores(histories)
        # equal counts (frequent with decay 0) ordered by recency, so the top K does not depend on how
        # top-k breaks ties; at most 1e-3 * 2.55, below any difference of whole counts
        recency = repeat_counts(histories, self.n_items, TIE_DECAY, self.config.max_history)
        pop = torch.from_numpy(np.asarray(self.popularity, dtype=np.float32))
        fallback = (pop / (pop.max() + 1.0)).expand_as(counts)
        return torch.where(counts > 0, 1.0 + counts + 1e-3 * recency, fallback)

    def explain_items(self, history: np.ndarray, items: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
        """For each item of the history: itself with its decayed count (the part of the score that
        ranks it); nothing for the items that follow by popularity."""
        counts = self.repeat_scores([np.asarray(history, np.int64)])[0].numpy()
        return [[(int(it), float(counts[it]))] if counts[it] > 0 and n > 0 else [] for it in items]

    def history_reasons(self, history: np.ndarray, items: np.ndarray) -> list[str]:
        """``"bought 3 times, last 2 events ago"`` for the items of the history ("" for the others).

        Counted over the last ``max_history`` events, as the score is; "0 events ago" is the last event."""
        h = np.asarray(history, dtype=np.int64)[-self.config.max_history :]
        out = []
        for it in np.asarray(items, dtype=np.int64):
            where = np.flatnonzero(h == it)
            if not len(where):
                out.append("")
                continue
            times = "once" if len(where) == 1 else f"{len(where)} times"
            out.append(f"bought {times}, last {len(h) - 1 - int(where[-1])} events ago (decay {self.decay:g})")
        return out

    def _state(self):
        return {"decay": np.asarray([self.decay], dtype=np.float64)}

    def _set_state(self, state):
        self.decay = float(state["decay"][0])
