"""Most-popular baseline: every user gets the items with the most training events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from chronorec.models.base import ModelConfig, Recommender


class MostPopularConfig(ModelConfig):
    kind: Literal["popular"] = Field("popular", description="the model kind")
    recent_share: float = Field(
        1.0, gt=0, le=1, description="count only the most recent share of the training events (by time)"
    )


class MostPopular(Recommender):
    kind = "popular"
    Config = MostPopularConfig

    def _fit(self, log, validation) -> None:
        share = self.config.recent_share
        if not 0 < share <= 1:
            raise ValueError("recent_share must be in (0, 1]")
        items = log.events["item_idx"].to_numpy()
        if share < 1:
            ts = log.events["timestamp"].to_numpy()
            cut = np.quantile(ts, 1 - share)
            items = items[ts >= cut]
            self.fit_info["counted_since"] = int(cut)
        self.counts = np.bincount(items, minlength=self.n_items + 1).astype(np.float32)
        self.counts[0] = 0

    def describe_items(self, items: np.ndarray) -> list[str]:
        """What each item is popular in: its count and rank in the training events (or their recent window)."""
        c = self.counts[1:]
        n = int((c > 0).sum())
        where = "training events"
        since = self.fit_info.get("counted_since")
        if self.config.recent_share < 1:
            where = f"events in the most recent {self.config.recent_share:.0%} of training"
            if since is not None:
                where += f" (since {datetime.fromtimestamp(since, tz=UTC):%Y-%m-%d})"
        out = []
        for it in np.asarray(items, dtype=np.int64):
            v = float(self.counts[it])
            out.append(f"popular: {v:,.0f} {where}, rank {int((c > v).sum()) + 1:,} of {n:,}")
        return out

    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(self.counts).expand(len(histories), -1).clone()

    def _state(self):
        return {"counts": self.counts}

    def _set_state(self, state):
        self.counts = state["counts"]
