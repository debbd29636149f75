"""GRU4Rec: a recurrent next-item model (Hidasi et al.), trained with full-catalogue
cross-entropy on every position. ``cell="lstm"`` swaps the GRU for an LSTM.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from chronorec.models.sequential.recommender import SequentialConfig, SequentialRecommender
from chronorec.nn.blocks import ContextEmbedding, FastDropout


class GRU4RecConfig(SequentialConfig):
    kind: Literal["gru4rec"] = Field("gru4rec", description="the model kind")
    cell: Literal["gru", "lstm"] = Field("gru", description="the recurrent cell")
    layers: int = Field(1, ge=1, le=64, description="recurrent layers")
    hidden: int = Field(128, ge=1, le=16_384, description="width of the recurrent state")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout rate")


class GRU4RecModule(nn.Module):
    def __init__(self, n_items: int, cfg: GRU4RecConfig, context_sizes: dict[str, int] | None = None):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.context = ContextEmbedding(context_sizes, cfg.dim, init_std=cfg.dim**-0.5) if context_sizes else None
        nn.init.normal_(self.item_emb.weight, std=cfg.dim**-0.5)
        rnn = nn.GRU if cfg.cell == "gru" else nn.LSTM
        self.rnn = rnn(
            cfg.dim, cfg.hidden, num_layers=cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
        self.drop = FastDropout(cfg.dropout)
        self.proj = nn.Linear(cfg.hidden, cfg.dim)

    def forward(self, items: torch.Tensor, feats: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        # left padding: the recurrent state passes over zero vectors before the first real item
        x = self.item_emb(items)
        if self.context is not None:
            x = x + self.context(feats, x)
        x = self.drop(x)
        out, _ = self.rnn(x)
        return self.proj(self.drop(out))


class GRU4Rec(SequentialRecommender):
    kind = "gru4rec"
    Config = GRU4RecConfig

    def _build_module(self) -> nn.Module:
        return GRU4RecModule(self.n_items, self.config, self.context_sizes)
