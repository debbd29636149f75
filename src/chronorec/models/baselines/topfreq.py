"""P-TopFreq and GP-TopFreq: the next-basket baselines of Li et al., "A Next Basket Recommendation
Reality Check" (TOIS 2023).

* **GP-TopFreq** (``gptopfreq``): the user's own items by how many times they were bought, then the
  rest of the catalogue by training popularity. This is :class:`~chronorec.models.baselines.buyagain.BuyAgain`
  with ``decay=0`` (a plain count), reused rather than duplicated; equal counts are ordered by
  recency (the Reality Check's script keeps them in order of first purchase).
* **P-TopFreq** (``ptopfreq``): the user's own items by count and nothing else. Items outside the
  history score :data:`UNRANKED` (finite, so ``recommend`` still fills K slots in catalogue order);
  the next-basket evaluation (:mod:`chronorec.scoring.basket_metrics`) treats such scores as empty slots,
  as the Reality Check does with its shorter prediction lists.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from chronorec.models.base import ModelConfig
from chronorec.models.baselines.buyagain import BuyAgain
from chronorec.scoring.basket_metrics import UNRANKED

MAX_HISTORY = 100_000


class GPTopFreqConfig(ModelConfig):
    kind: Literal["gptopfreq"] = Field("gptopfreq", description="the model kind")
    max_history: int = Field(MAX_HISTORY, ge=1, le=100_000, description="the most recent history items counted")


class PTopFreqConfig(ModelConfig):
    kind: Literal["ptopfreq"] = Field("ptopfreq", description="the model kind")
    max_history: int = Field(MAX_HISTORY, ge=1, le=100_000, description="the most recent history items counted")


class GPTopFreq(BuyAgain):
    """The user's most frequent items, then global popularity (BuyAgain with a plain count)."""

    kind = "gptopfreq"
    Config = GPTopFreqConfig

    def _fit(self, log, validation) -> None:
        self.decay = 0.0  # a plain count: nothing to choose on validation


class PTopFreq(GPTopFreq):
    """The user's most frequent items only; every other item scores :data:`UNRANKED`."""

    kind = "ptopfreq"
    Config = PTopFreqConfig
    others_by_popularity = False  # every other item is unranked

    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        scores = super()._score(users, histories)
        counts = self.repeat_scores(histories)
        return torch.where(counts > 0, scores, torch.full_like(scores, UNRANKED))
