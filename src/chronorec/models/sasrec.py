"""SASRec: a causal Transformer over the item sequence (Kang & McAuley, 2018),
trained with full-catalogue softmax cross-entropy by default (a sampled softmax is an option).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from chronorec.models.blocks import ContextEmbedding, FastDropout, TransformerBlock, causal_padding_mask
from chronorec.models.sequential import SequentialConfig, SequentialRecommender


class SASRecConfig(SequentialConfig):
    kind: Literal["sasrec"] = "sasrec"
    layers: int = 2
    heads: int = 1
    ffn_mult: int = 4


class SASRecModule(nn.Module):
    def __init__(self, n_items: int, cfg: SASRecConfig, context_sizes: dict[str, int] | None = None):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.context = ContextEmbedding(context_sizes, cfg.dim, init_std=1.0) if context_sizes else None
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.dim)
        self.drop = FastDropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.heads, cfg.dropout, cfg.ffn_mult) for _ in range(cfg.layers)
        )
        self.ln = nn.LayerNorm(cfg.dim)
        self.scale = math.sqrt(cfg.dim)
        nn.init.normal_(self.item_emb.weight, std=cfg.dim**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=0.02)

    def forward(self, items: torch.Tensor, feats: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        B, L = items.shape
        # positions counted from the end of the sequence, so train and serve agree for any width
        pos = torch.arange(L - 1, -1, -1, device=items.device)
        x = self.item_emb(items) * self.scale + self.pos_emb(pos)[None]
        if self.context is not None:
            x = x + self.context(feats, x)
        keep = (items > 0).unsqueeze(-1)
        x = self.drop(x) * keep
        mask = causal_padding_mask(items)
        for block in self.blocks:
            x = block(x, mask) * keep
        return self.ln(x)


class SASRec(SequentialRecommender):
    kind = "sasrec"
    Config = SASRecConfig

    def _build_module(self) -> nn.Module:
        return SASRecModule(self.n_items, self.config, self.context_sizes)
