"""HSTU-style generative recommender ("Actions Speak Louder than Words", Zhai et al., 2024).

A causal stack of HSTU layers (``blocks.HSTUBlock``): pointwise aggregated attention
SiLU(QK^T + relative position bias + relative time bias), normalised by the sequence length
instead of a softmax, gated by U, with layer norm on the attention output. A plain PyTorch
reference implementation; sizes from small to large are configuration only (``layers``,
``dim``, ``heads``). Timestamps feed the relative time bias where the log has them (plain item
sequences fall back to position only).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from chronorec.models.blocks import ContextEmbedding, FastDropout, HSTUBlock, causal_padding_mask
from chronorec.models.sequential import SequentialConfig, SequentialRecommender


class HSTUConfig(SequentialConfig):
    kind: Literal["hstu"] = "hstu"
    layers: int = 2
    heads: int = 1
    time_bias: bool = True
    time_buckets: int = 64


class HSTUModule(nn.Module):
    def __init__(self, n_items: int, cfg: HSTUConfig, context_sizes: dict[str, int] | None = None):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.dim)
        self.context = ContextEmbedding(context_sizes, cfg.dim, init_std=1.0) if context_sizes else None
        self.drop = FastDropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            HSTUBlock(cfg.dim, cfg.heads, cfg.dropout, cfg.max_len, cfg.time_buckets) for _ in range(cfg.layers)
        )
        if not cfg.time_bias:
            for b in self.blocks:
                b.bias.time = None
        self.ln = nn.LayerNorm(cfg.dim)
        self.scale = math.sqrt(cfg.dim)
        nn.init.normal_(self.item_emb.weight, std=cfg.dim**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=0.02)

    def forward(self, items: torch.Tensor, feats: dict[str, Any] | None = None) -> torch.Tensor:
        B, L = items.shape
        pos = torch.arange(L - 1, -1, -1, device=items.device)
        x = self.item_emb(items) * self.scale + self.pos_emb(pos)[None]
        if self.context is not None:
            x = x + self.context(feats, x)
        keep = (items > 0).unsqueeze(-1)
        x = self.drop(x) * keep
        mask = causal_padding_mask(items)
        ts = feats.get("timestamp") if feats else None
        for block in self.blocks:
            x = block(x, mask, ts) * keep
        return self.ln(x)


class HSTU(SequentialRecommender):
    kind = "hstu"
    Config = HSTUConfig

    @property
    def needs_timestamps(self) -> bool:  # type: ignore[override]
        return self.config.time_bias

    def _build_module(self) -> nn.Module:
        return HSTUModule(self.n_items, self.config, self.context_sizes)
