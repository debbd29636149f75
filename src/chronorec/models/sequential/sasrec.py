"""SASRec: a causal Transformer over the item sequence (Kang & McAuley, 2018),
trained with full-catalogue softmax cross-entropy by default (a sampled softmax is an option).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from chronorec.models.sequential.recommender import SequentialConfig, SequentialRecommender
from chronorec.nn.blocks import SequenceEncoder, TransformerBlock


class SASRecConfig(SequentialConfig):
    kind: Literal["sasrec"] = Field("sasrec", description="the model kind")
    layers: int = Field(2, ge=1, le=64, description="Transformer blocks")
    heads: int = Field(1, ge=1, le=256, description="attention heads per block")
    ffn_mult: int = Field(4, ge=1, le=64, description="feed-forward width as a multiple of dim")


class SASRecModule(SequenceEncoder):
    causal = True

    def __init__(self, n_items: int, cfg: SASRecConfig, context_sizes: dict[str, int] | None = None):
        blocks = [TransformerBlock(cfg.dim, cfg.heads, cfg.dropout, cfg.ffn_mult) for _ in range(cfg.layers)]
        super().__init__(n_items + 1, cfg.dim, cfg.max_len, cfg.dropout, blocks, context_sizes)


class SASRec(SequentialRecommender):
    kind = "sasrec"
    Config = SASRecConfig
    right_padding = True  # causal attention without a mask

    def _build_module(self) -> nn.Module:
        return SASRecModule(self.n_items, self.config, self.context_sizes)
