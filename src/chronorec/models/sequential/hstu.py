"""HSTU-style generative recommender ("Actions Speak Louder than Words", Zhai et al., 2024).

A causal stack of HSTU layers (``blocks.HSTUBlock``): pointwise aggregated attention
SiLU(QK^T + relative position bias + relative time bias), normalised by the sequence length
instead of a softmax, gated by U, with layer norm on the attention output. A plain PyTorch
reference implementation; sizes from small to large are configuration only (``layers``,
``dim``, ``heads``). Timestamps feed the relative time bias where the log has them (plain item
sequences fall back to position only).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from chronorec.models.sequential.recommender import SequentialConfig, SequentialRecommender
from chronorec.nn.blocks import HSTUBlock, SequenceEncoder


class HSTUConfig(SequentialConfig):
    kind: Literal["hstu"] = Field("hstu", description="the model kind")
    layers: int = Field(2, ge=1, le=64, description="HSTU layers")
    heads: int = Field(1, ge=1, le=256, description="attention heads per layer")
    time_bias: bool = Field(True, description="relative time bias from the events' timestamps")
    time_buckets: int = Field(64, ge=1, le=100_000, description="log-scale buckets of the relative time bias")


class HSTUModule(SequenceEncoder):
    causal = True

    def __init__(self, n_items: int, cfg: HSTUConfig, context_sizes: dict[str, int] | None = None):
        blocks = [HSTUBlock(cfg.dim, cfg.heads, cfg.dropout, cfg.max_len, cfg.time_buckets) for _ in range(cfg.layers)]
        if not cfg.time_bias:
            for b in blocks:
                b.bias.time = None
        super().__init__(n_items + 1, cfg.dim, cfg.max_len, cfg.dropout, blocks, context_sizes)

    supports_last_only = False
    causal_kernel = False  # pointwise attention: the mask is always built

    def block_mask(self, mask: torch.Tensor) -> torch.Tensor:
        return mask  # HSTU's pointwise attention multiplies by the boolean mask

    def run_block(self, block: nn.Module, x: torch.Tensor, mask: torch.Tensor, feats, query=None):
        return block(x, mask, feats.get("timestamp") if feats else None)


class HSTU(SequentialRecommender):
    kind = "hstu"
    Config = HSTUConfig

    @property
    def needs_timestamps(self) -> bool:  # type: ignore[override]
        return self.config.time_bias

    def _build_module(self) -> nn.Module:
        return HSTUModule(self.n_items, self.config, self.context_sizes)
