"""Most-popular baseline: every user gets the items with the most training events."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from chronorec.models.base import ModelConfig, Recommender


class MostPopularConfig(ModelConfig):
    kind: Literal["popular"] = Field("popular", description="the model kind")
    recent_share: float = Field(1.0, description="count only the most recent share of the training events (by time)")


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
        self.counts = np.bincount(items, minlength=self.n_items + 1).astype(np.float32)
        self.counts[0] = 0

    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(self.counts).expand(len(histories), -1).clone()

    def _state(self):
        return {"counts": self.counts}

    def _set_state(self, state):
        self.counts = state["counts"]
