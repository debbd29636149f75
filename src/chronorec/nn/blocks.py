"""Transformer building blocks shared by the attention models."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_ATTENTION = "sdpa"
ATTENTION_KINDS = ("sdpa", "manual")  # scaled_dot_product_attention, or matmul + masked softmax written out


class FastDropout(nn.Module):
    """Inverted dropout whose mask comes from random bytes, eight per 64-bit draw.

    The keep test is ``byte >= round(256 p)``, so the rate is ``p`` rounded to a multiple of
    1/256 (0.1 becomes 0.1016) and the kept values are scaled by the exact inverse keep rate.
    On CPU this draws the mask about 4x faster than ``rand_like`` (whose per-element uniform
    draws were a sixth of a SASRec training step) and 7x faster than ``bernoulli_``.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.threshold = min(255, round(256 * self.p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        n = x.numel()
        words = torch.empty((n + 7) // 8, dtype=torch.int64, device=x.device).random_(-(2**63), 2**63 - 1)
        keep = words.view(torch.uint8)[:n].view(x.shape) >= self.threshold
        return x * keep * (256.0 / (256 - self.threshold))


def last_index(keep: torch.Tensor) -> torch.Tensor:
    """Column of each row's last real token (the last column when a row has none)."""
    return keep.shape[1] - 1 - keep.flip(1).int().argmax(1)


def causal_padding_mask(items: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask (B, 1, L, L): causal, padding keys hidden, the diagonal always open.

    The open diagonal keeps fully padded query rows finite; their outputs are never used.
    """
    L = items.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=items.device).tril()
    keys = (items > 0)[:, None, None, :]
    eye = torch.eye(L, dtype=torch.bool, device=items.device)
    return (causal & keys) | eye


def additive_mask(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A boolean attention mask (True = may attend) as the additive bias ``scaled_dot_product_attention``
    takes directly (0 or -inf), built once per forward instead of once per layer."""
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill_(~mask, -torch.inf)


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax attention written out (matmul, mask, softmax, matmul): the reference of the tests and
    of ``attention="manual"`` (:func:`set_attention`). ``mask`` is boolean (True = may attend),
    additive, or None for causal attention."""
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if mask is None:
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    scores = scores.masked_fill(~mask, -torch.inf) if mask.dtype == torch.bool else scores + mask
    return torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v


def _sdpa(q, k, v, mask: torch.Tensor | None, impl: str = DEFAULT_ATTENTION) -> torch.Tensor:
    """``scaled_dot_product_attention`` with ``mask`` (additive or boolean), or causal when it is None
    (``impl="manual"``: :func:`reference_attention`)."""
    if impl == "manual":
        return reference_attention(q, k, v, mask)
    if mask is not None and mask.is_floating_point():
        mask = mask.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)


class SelfAttention(nn.Module):
    """Multi-head self-attention. ``impl``: ``"sdpa"`` (``scaled_dot_product_attention``) or
    ``"manual"`` (:func:`reference_attention`); ``scoring_fp32``: run the CPU attention in float32
    under bfloat16 autocast when scoring too, as training does (see :func:`set_attention`)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.impl = DEFAULT_ATTENTION
        self.scoring_fp32 = False
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, query: torch.Tensor | None = None) -> torch.Tensor:
        """Attention over ``x`` (B, L, D). ``mask``: additive or boolean (B, 1, L, L), or None for plain
        causal attention (rows padded on the right need no mask). With ``query`` (B,) only that position
        of each row asks (B, 1, D), under ``mask`` (B, 1, 1, L)."""
        B, L, D = x.shape
        h, dh = self.heads, D // self.heads
        if query is not None:  # keys and values of every position, one query per row
            w, b = self.qkv.weight, self.qkv.bias
            k, v = F.linear(x, w[D:], b[D:]).view(B, L, 2, h, dh).permute(2, 0, 3, 1, 4)
            xq = x[torch.arange(B, device=x.device), query][:, None]
            q = F.linear(xq, w[:D], b[:D]).view(B, 1, h, dh).transpose(1, 2)
        else:
            q, k, v = self.qkv(x).view(B, L, 3, h, dh).permute(2, 0, 3, 1, 4)
        if (
            x.device.type == "cpu"
            and torch.is_autocast_enabled("cpu")
            and (torch.is_grad_enabled() or self.scoring_fp32)
        ):
            # the CPU attention kernels are slower in bfloat16 than in float32 when training (fwd + bwd,
            # L=200); scoring (no gradient) is faster in bfloat16: 0.68 against 0.85 ms a row at 32 x 200
            with torch.autocast("cpu", enabled=False):
                y = _sdpa(q.float(), k.float(), v.float(), mask, self.impl)
        else:
            y = _sdpa(q, k, v, mask, self.impl)
        return self.out(y.transpose(1, 2).reshape(B, q.shape[2], D))


def set_attention(module: nn.Module, impl: str = DEFAULT_ATTENTION, scoring_fp32: bool = False) -> None:
    """Set the attention implementation of every :class:`SelfAttention` inside ``module`` (the
    ``attention`` and ``scoring_attention_fp32`` fields of a sequence model's configuration)."""
    if impl not in ATTENTION_KINDS:
        raise ValueError(f"attention {impl!r}: one of {ATTENTION_KINDS}")
    for m in module.modules():
        if isinstance(m, SelfAttention):
            m.impl, m.scoring_fp32 = impl, bool(scoring_fp32)


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: x + Attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, dim: int, heads: int, dropout: float, ffn_mult: int = 4):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_mult * dim), nn.GELU(), FastDropout(dropout), nn.Linear(ffn_mult * dim, dim)
        )
        self.drop = FastDropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, query: torch.Tensor | None = None) -> torch.Tensor:
        """The block over ``x`` (B, L, D); with ``query`` (B,) its output at that position only (B, 1, D)."""
        a = self.drop(self.attn(self.ln1(x), mask, query))
        if query is not None:
            x = x[torch.arange(len(x), device=x.device), query][:, None]
        x = x + a
        return x + self.drop(self.ffn(self.ln2(x)))


def padding_mask(items: torch.Tensor) -> torch.Tensor:
    """Bidirectional boolean attention mask (B, 1, L, L): padding keys hidden, the diagonal open."""
    L = items.shape[1]
    keys = (items > 0)[:, None, None, :].expand(-1, 1, L, L)
    eye = torch.eye(L, dtype=torch.bool, device=items.device)
    return keys | eye


class ContextEmbedding(nn.Module):
    """Sum of one embedding per context feature (behaviour, time-gap bucket, hour, device...).

    ``sizes`` maps a feature name to its number of codes (0 = unknown, embedded as zeros), so a
    token without context gets nothing added and a model falls back to plain items.
    """

    def __init__(self, sizes: dict[str, int], dim: int, init_std: float = 0.02):
        super().__init__()
        self.names = list(sizes)
        self.tables = nn.ModuleDict({n: nn.Embedding(s, dim, padding_idx=0) for n, s in sizes.items()})
        for t in self.tables.values():
            nn.init.normal_(t.weight, std=init_std)
            with torch.no_grad():
                t.weight[0].zero_()

    def forward(self, feats: dict[str, torch.Tensor] | None, like: torch.Tensor) -> torch.Tensor:
        """Summed embeddings shaped like ``like`` (..., dim); features missing from ``feats`` add nothing."""
        out = torch.zeros_like(like)
        if feats:
            for n in self.names:
                codes = feats.get(n)
                if codes is not None:
                    out = out + self.tables[n](codes.clamp(0, self.tables[n].num_embeddings - 1))
        return out


# --------------------------------------------------------------------------- HSTU
def log_time_buckets(dt: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """Log-scale buckets of absolute time differences (seconds), as in HSTU: floor(ln(|dt| + 1) / 0.301)."""
    b = torch.floor(torch.log(dt.abs().float() + 1.0) / 0.301).long()
    return b.clamp(0, n_buckets - 1)


class RelativeBias(nn.Module):
    """Learned attention bias from relative position (i - j, clipped) and log-bucketed time gap (t_i - t_j)."""

    def __init__(self, max_len: int, n_time_buckets: int = 64, use_time: bool = True):
        super().__init__()
        self.max_len = max_len
        self.pos = nn.Parameter(torch.zeros(2 * max_len - 1))
        self.n_time_buckets = n_time_buckets
        self.time = nn.Parameter(torch.zeros(n_time_buckets)) if use_time else None

    def forward(self, L: int, timestamps: torch.Tensor | None) -> torch.Tensor:
        """Bias (B or 1, L, L)."""
        idx = torch.arange(L, device=self.pos.device)
        rel = (idx[:, None] - idx[None, :]).clamp(-(self.max_len - 1), self.max_len - 1) + self.max_len - 1
        bias = self.pos[rel][None]
        if self.time is not None and timestamps is not None:
            dt = timestamps[:, :, None] - timestamps[:, None, :]
            bias = bias + self.time[log_time_buckets(dt, self.n_time_buckets)]
        return bias


class HSTUBlock(nn.Module):
    """One HSTU layer ("Actions Speak Louder than Words", Zhai et al. 2024), plain PyTorch reference.

    U, V, Q, K = split(SiLU(f1(LN(x))));  A = SiLU(Q K^T / sqrt(d) + rab^{p,t}) / n  (pointwise, no
    softmax, masked, normalised by the sequence length n);  y = x + f2(dropout(LN(A V) * U)).
    """

    def __init__(self, dim: int, heads: int, dropout: float, max_len: int, n_time_buckets: int = 64):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.dim, self.max_len = heads, dim, max_len
        self.ln_in = nn.LayerNorm(dim)
        self.f1 = nn.Linear(dim, 4 * dim)
        self.bias = RelativeBias(max_len, n_time_buckets)
        self.ln_attn = nn.LayerNorm(dim)
        self.f2 = nn.Linear(dim, dim)
        self.drop = FastDropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, timestamps: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` (B, 1, L, L) boolean, True = may attend."""
        B, L, D = x.shape
        h, dh = self.heads, D // self.heads
        u, v, q, k = F.silu(self.f1(self.ln_in(x))).split(D, dim=-1)
        q, k, v = (t.view(B, L, h, dh).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / dh**0.5 + self.bias(L, timestamps)[:, None]
        attn = F.silu(scores) * mask / self.max_len
        y = (attn @ v).transpose(1, 2).reshape(B, L, D)
        return x + self.f2(self.drop(self.ln_attn(y) * u))


class SequenceEncoder(nn.Module):
    """The trunk of the attention models: item + position (+ context) embeddings, dropout, a
    stack of blocks and a final layer norm. Padding positions stay zero after every block.

    Positions are counted from the end of the sequence, so training windows and served
    histories of any width agree. ``causal`` picks the attention mask (causal for SASRec and
    HSTU, bidirectional for BERT4Rec); subclasses change how a block is called through
    :meth:`run_block` (HSTU passes the timestamps).
    """

    causal: bool = True

    def __init__(
        self,
        n_tokens: int,
        dim: int,
        max_len: int,
        dropout: float,
        blocks: list[nn.Module],
        context_sizes: dict[str, int] | None = None,
    ):
        super().__init__()
        self.item_emb = nn.Embedding(n_tokens, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.context = ContextEmbedding(context_sizes, dim, init_std=1.0) if context_sizes else None
        self.drop = FastDropout(dropout)
        self.blocks = nn.ModuleList(blocks)
        self.ln = nn.LayerNorm(dim)
        self.scale = math.sqrt(dim)
        nn.init.normal_(self.item_emb.weight, std=dim**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=0.02)

    supports_last_only = True  # forward(..., last_only=True) computes the last position's output only
    causal_kernel = True  # causal softmax attention: rows padded on the right need no mask

    def run_block(self, block: nn.Module, x: torch.Tensor, mask, feats, query: torch.Tensor | None = None):
        return block(x, mask) if query is None else block(x, mask, query)

    def block_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The mask the blocks take: the additive bias of softmax attention (HSTU keeps the boolean)."""
        return additive_mask(mask)

    def masks(self, keep: torch.Tensor) -> torch.Tensor | None:
        """The blocks' mask for real tokens ``keep`` (B, L): None (causal, no mask) when the model is
        causal and every row's padding is on its right, else causal / bidirectional with padding."""
        if self.causal and self.causal_kernel and not bool((keep[:, 1:] > keep[:, :-1]).any()):
            return None
        return self.block_mask(causal_padding_mask(keep) if self.causal else padding_mask(keep))

    def forward(
        self, items: torch.Tensor, feats: dict[str, torch.Tensor] | None = None, last_only: bool = False
    ) -> torch.Tensor:
        """Hidden states (B, L, D), or with ``last_only`` those of each row's last real token (B, 1, D):
        the last block then computes one query per row (what scoring needs). Rows may be padded on
        either side; positions are counted back from each row's last real token."""
        keep = items > 0
        # positions from the end: real tokens at or after each position, minus one
        pos = keep.flip(1).cumsum(1).flip(1).sub_(1).clamp_(min=0)
        x = self.item_emb(items) * self.scale + self.pos_emb(pos)
        if self.context is not None:
            x = x + self.context(feats, x)
        keep3 = keep.unsqueeze(-1)
        x = self.drop(x) * keep3
        mask = self.masks(keep)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            if last_only and i == last and self.supports_last_only:
                return self.ln(self.run_block(block, x, self.query_mask(keep, mask), feats, last_index(keep)))
            x = self.run_block(block, x, mask, feats) * keep3
        return self.ln(x[torch.arange(len(x), device=x.device), last_index(keep)][:, None] if last_only else x)

    def query_mask(self, keep: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The mask row (B, 1, 1, L) of each row's last real token."""
        if mask is not None:
            return mask[torch.arange(len(keep), device=keep.device), :, last_index(keep)][:, :, None]
        return additive_mask(keep[:, None, None, :])  # causal, right-padded: the last token sees every real one
