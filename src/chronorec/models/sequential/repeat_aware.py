"""RepeatNet-style SASRec: a repeat / explore mixture learnt end to end (after Ren et al., AAAI 2019).

The causal Transformer of SASRec reads the history; at each position ``t`` its output ``h_t`` gives

- a gate ``g_t = sigmoid(w . h_t + b)``, the probability that the next item is a repeat;
- the explore distribution: a softmax over the items outside the history (tied item embeddings), as
  in RepeatNet, or with ``explore="all"`` over the whole catalogue;
- the repeat distribution: a pointer over the input positions ``j <= t``,
  ``a_tj = softmax_j(q(h_t) . k(h_j) / sqrt(d) + count[log2 n_t(x_j)] + recency[t - j])``, where
  ``n_t(x_j)`` is how often item ``x_j`` occurs up to ``t`` and ``t - j`` how many events ago it
  occurred; an item's repeat probability is the sum of its positions' weights.

The model scores ``log(g p_repeat(i) + (1 - g) p_explore(i))`` and trains on the negative log of that
mixture at every position, so the gate and the pointer learn from the data when users come back to
their own items. The repeat probability of a target is summed over the positions holding it (no
batch x length x catalogue tensor). Evaluate it with the history included: with the history excluded
the repeat part can never be hit.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.checkpoint import checkpoint

from chronorec.models.sequential.recommender import Batch
from chronorec.models.sequential.sasrec import SASRec, SASRecConfig, SASRecModule
from chronorec.models.sequential.windows import pad_right

COUNT_BUCKETS = 16  # log2 buckets of an item's count in the history: 1, 2-3, 4-7, ... 2**15 and more
MATCH_FLOOR = -1e4  # log-weight of positions that do not hold the target: finite, so no NaN gradients
LSE_ROWS = 1024  # rows of explore logits computed (and recomputed in backward) at once


class RepeatNetConfig(SASRecConfig):
    kind: Literal["repeatnet"] = Field("repeatnet", description="the model kind")
    loss: Literal["ce"] = Field(
        "ce", description="'ce' only: the mixture needs each target's explore probability over the full catalogue"
    )
    explore: Literal["new", "all"] = Field(
        "new",
        description="what the explore part ranks: 'new': the items outside the history, as in RepeatNet (the gate "
        "alone decides how likely a repeat is); 'all': the whole catalogue",
    )
    gate_bias: float = Field(
        0.0, ge=-10, le=10, description="initial bias of the repeat gate (logit of P(repeat) before training)"
    )


class RepeatNetModule(SASRecModule):
    """SASRec's trunk plus the gate and the pointer's query, key, count and recency parameters."""

    def __init__(self, n_items: int, cfg: RepeatNetConfig, context_sizes: dict[str, int] | None = None):
        super().__init__(n_items, cfg, context_sizes)
        self.gate = nn.Linear(cfg.dim, 1)
        nn.init.constant_(self.gate.bias, cfg.gate_bias)
        self.query = nn.Linear(cfg.dim, cfg.dim)
        self.key = nn.Linear(cfg.dim, cfg.dim)
        self.count_bias = nn.Embedding(COUNT_BUCKETS, 1)
        self.recency_bias = nn.Embedding(cfg.max_len, 1)
        nn.init.zeros_(self.count_bias.weight)
        nn.init.zeros_(self.recency_bias.weight)

    def pointer(self, items: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Log pointer weights (B, L, L) of right-padded ``items``: row t over the positions j <= t."""
        B, L = items.shape
        idx = torch.arange(L, device=items.device)
        keep = items > 0
        valid = (idx[None, :, None] >= idx[None, None, :]) & keep[:, None, :]  # [b, t, j]: j <= t, real
        valid = valid | torch.eye(L, dtype=torch.bool, device=items.device)  # no row left empty
        same = (items[:, :, None] == items[:, None, :]) & keep[:, None, :]  # [b, j, k]: x_j == x_k
        counts = same.cumsum(2).transpose(1, 2)  # [b, t, j]: occurrences of x_j among positions <= t
        bucket = torch.log2(counts.clamp(min=1).float()).long().clamp(max=COUNT_BUCKETS - 1)
        distance = (idx[:, None] - idx[None, :]).clamp(0, self.recency_bias.num_embeddings - 1)
        q, k = self.query(hidden), self.key(hidden)
        logits = (q @ k.transpose(1, 2)) / math.sqrt(q.shape[-1])
        logits = logits + self.count_bias(bucket).squeeze(-1) + self.recency_bias(distance).squeeze(-1)
        return torch.log_softmax(logits.float().masked_fill(~valid, -torch.inf), dim=-1)


def _lse_rows(hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """log-sum-exp over the candidates 1..n of each row's logits (padding column left out)."""
    return torch.logsumexp((hidden @ weight[1:].t()).float(), dim=1)


def catalogue_lse(hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """log-sum-exp of the logits of hidden (N, d) over the catalogue; the (rows, catalogue) logits
    are computed a block of rows at a time and recomputed in backward, never all kept."""
    blocks = [
        checkpoint(_lse_rows, hidden[s : s + LSE_ROWS], weight, use_reentrant=False)
        for s in range(0, len(hidden), LSE_ROWS)
    ]
    return torch.cat(blocks) if blocks else hidden.new_zeros(0, dtype=torch.float32)


def history_mass(items: torch.Tensor, q: torch.Tensor, w: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
    """The catalogue softmax's mass (B, L) on the distinct items of each prefix, from the logits of
    the window's own items (B, L, L) and each position's log-sum-exp ``lse`` (B, L)."""
    L = items.shape[1]
    idx = torch.arange(L, device=items.device)
    earlier = (items[:, :, None] == items[:, None, :]) & (idx[None, None, :] < idx[None, :, None])
    first = (items > 0) & ~earlier.any(-1)  # [b, j]: the first occurrence of x_j in the window
    own = (idx[None, :, None] >= idx[None, None, :]) & first[:, None, :]  # [b, t, j]: j <= t, counted once
    logits = (q @ w[items].transpose(1, 2)).float()  # [b, t, j]: logit of x_j at position t
    return (logits - lse[..., None]).exp().masked_fill(~own, 0.0).sum(-1)


def mixture_log_prob(log_gate: torch.Tensor, log_repeat: torch.Tensor, log_explore: torch.Tensor) -> torch.Tensor:
    """log(g p_repeat + (1 - g) p_explore) from the gate's logit and the two log-probabilities."""
    return torch.logaddexp(F.logsigmoid(log_gate) + log_repeat, F.logsigmoid(-log_gate) + log_explore)


class RepeatNet(SASRec):
    kind = "repeatnet"
    ranks_own_items = True
    Config = RepeatNetConfig

    def _build_module(self) -> nn.Module:
        return RepeatNetModule(self.n_items, self.config, self.context_sizes)

    def _parts(self, module, items: torch.Tensor, feats, nxt=None):
        """(hidden (B, L, d), gate logits (B, L), log pointer weights (B, L, L)) of right-padded items."""
        h = self._hidden(module, items, feats, nxt)
        return h, module.gate(h).squeeze(-1).float(), module.pointer(items, h)

    def _loss(self, module, batch: Batch) -> torch.Tensor:
        """Mean negative log of the mixture at every target position."""
        items, y = batch["items"], batch["targets"]
        h, gate, log_ptr = self._parts(module, items, batch.get("feats"), batch.get("next"))
        # p_repeat(target): the pointer weights of the positions j <= t that hold the target
        match = (items[:, None, :] == y[:, :, None]) & torch.isfinite(log_ptr)
        log_repeat = torch.logsumexp(log_ptr.masked_fill(~match, MATCH_FLOOR), dim=-1)
        mask = y > 0
        q, w = self._logit_space(h, self._output_weight(module))
        lse = catalogue_lse(q[mask], w)
        log_explore = (q[mask] * w[y[mask]]).sum(-1).float() - lse
        if self.config.explore == "new":  # renormalised over the items outside the prefix; none for a repeat
            full = torch.zeros(y.shape, dtype=lse.dtype, device=lse.device).masked_scatter(mask, lse)
            seen = history_mass(items, q, w, full)[mask].clamp(max=1 - 1e-6)
            log_explore = (log_explore - torch.log1p(-seen)).masked_fill(match.any(-1)[mask], MATCH_FLOOR)
        return -mixture_log_prob(gate[mask], log_repeat[mask], log_explore).mean()

    def _last(self, users: np.ndarray, histories: list[np.ndarray], context):
        """(items (B, W) right-padded, last real column (B,), hidden, gate logits, log pointer weights)."""
        x, feats_np, nxt_np = self._score_inputs(users, histories, context)
        lengths = np.minimum([len(h) for h in histories], x.shape[1])
        x = pad_right(x, lengths)
        dev = self.device
        feats = {f: torch.from_numpy(pad_right(v, lengths)).to(dev) for f, v in feats_np.items()} or None
        nxt = None
        if self.config.request_context and nxt_np:
            nxt = {f: torch.from_numpy(v)[:, None].expand(-1, x.shape[1]).to(dev) for f, v in nxt_np.items()}
        if self.module.training:
            self.module.eval()
        items = torch.from_numpy(x).to(dev)
        last = torch.from_numpy(np.maximum(lengths - 1, 0)).to(dev)
        return (items, last, *self._parts(self.module, items, feats, nxt))

    def _score(self, users: np.ndarray, histories: list[np.ndarray], context=None) -> torch.Tensor:
        """log(g p_repeat + (1 - g) p_explore) of every item after each history; column 0 is -inf."""
        with torch.inference_mode():
            items, last, h, gate, log_ptr = self._last(users, histories, context)
            rows = torch.arange(len(items), device=items.device)
            q, w = self._logit_space(h[rows, last].float(), self._output_weight(self.module).float())
            logits = q @ w.t()
            logits[:, 0] = -torch.inf
            if self.config.explore == "new":
                logits.scatter_(1, items, -torch.inf)
            log_explore = torch.log_softmax(logits, dim=1).nan_to_num(nan=-torch.inf)  # nan: nothing left
            p_repeat = torch.zeros_like(log_explore).scatter_add_(1, items, log_ptr[rows, last].exp())
            p_repeat[:, 0] = 0.0  # weights on padding columns (only an empty history has any)
            g = gate[rows, last, None]
            scores = mixture_log_prob(g, p_repeat.log(), log_explore)
            scores[:, 0] = -torch.inf
            return scores.float().cpu()

    def repeat_gate(self, users: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        """P(repeat) after each (non-empty) history: the gate of its last position."""
        with torch.inference_mode():
            histories = [np.asarray(h, dtype=np.int64) for h in histories]
            items, last, _, gate, _ = self._last(np.asarray(users, np.int64), histories, None)
            rows = torch.arange(len(items), device=items.device)
            return torch.sigmoid(gate[rows, last]).cpu().numpy()

    def enable_query_cache(self, size: int) -> bool:
        """No query cache: a score needs the pointer over the whole history, not one query vector."""
        self.query_cache = None
        return False
