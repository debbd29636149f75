"""BERT4Rec: a bidirectional Transformer trained to fill in masked items (Sun et al., 2019).

Training masks each item of a window with probability ``mask_prob`` (at least one per
sequence; the last item is masked alone with probability ``mask_last_prob`` to match serving)
and predicts the masked items with the configured loss. Serving appends the mask token
(id ``n_items + 1``) after the history and ranks the catalogue from its hidden state; with
``request_context`` the mask token carries the context of the event to predict.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from chronorec.models.sequential.recommender import Batch, SequentialConfig, SequentialRecommender
from chronorec.models.sequential.windows import gather
from chronorec.nn.blocks import SequenceEncoder, TransformerBlock


class BERT4RecConfig(SequentialConfig):
    kind: Literal["bert4rec"] = Field("bert4rec", description="the model kind")
    layers: int = Field(2, ge=1, le=64, description="Transformer blocks")
    heads: int = Field(2, ge=1, le=256, description="attention heads per block")
    ffn_mult: int = Field(4, ge=1, le=64, description="feed-forward width as a multiple of dim")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout rate")
    mask_prob: float = Field(0.2, gt=0, le=1, description="probability that an item of a training window is masked")
    mask_last_prob: float = Field(
        0.1, ge=0, le=1, description="share of sequences trained with only their last item masked"
    )


class BERT4RecModule(SequenceEncoder):
    causal = False  # bidirectional

    def __init__(self, n_items: int, cfg: BERT4RecConfig, context_sizes: dict[str, int] | None = None):
        blocks = [TransformerBlock(cfg.dim, cfg.heads, cfg.dropout, cfg.ffn_mult) for _ in range(cfg.layers)]
        # item ids 0..n_items plus the mask token n_items + 1
        super().__init__(n_items + 2, cfg.dim, cfg.max_len, cfg.dropout, blocks, context_sizes)


class BERT4Rec(SequentialRecommender):
    kind = "bert4rec"
    Config = BERT4RecConfig
    window_extra = 0  # a window of max_len items, no shifted targets
    query_token = True

    @property
    def mask_id(self) -> int:
        return self.n_items + 1

    def _build_module(self) -> nn.Module:
        return BERT4RecModule(self.n_items, self.config, self.context_sizes)

    def _make_batch(self, spans: list[tuple[int, int]], rng: np.random.Generator) -> Batch:
        cfg = self.config
        width = self._batch_width(max(b - a for a, b in spans))
        items = gather(self.store.items, spans, width)
        real = (items > 0).numpy()
        masked = (rng.random(real.shape) < cfg.mask_prob) & real
        last_only = rng.random(len(spans)) < cfg.mask_last_prob
        masked[last_only] = False
        masked[~masked.any(1), -1] = True  # at least one per row; the last column is always a real item
        m = torch.from_numpy(masked)
        codes = self._flat_codes()
        feats = {f: gather(c, spans, width) for f, c in codes.items()}
        if not cfg.request_context:  # at serving time the mask token has no context of its own
            feats = {f: (v if f == "timestamp" else v.masked_fill(m, 0)) for f, v in feats.items()}
        return {
            "items": items.masked_fill(m, self.mask_id),
            "targets": items.masked_fill(~m, 0),
            "feats": feats or None,
        }
