"""Next-item losses over an output embedding table (weight-tied with the input items)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _ChunkedSoftmaxCE(torch.autograd.Function):
    """Mean softmax cross-entropy over the whole catalogue without materialising all logits.

    Logits are computed ``chunk`` rows at a time in ``dtype`` (bfloat16 halves the cost of the
    dominant matmul on CPUs that support it); forward keeps only the log-sum-exp per row and
    backward recomputes each chunk's softmax. Peak memory is ``chunk x n_items`` instead of
    ``N x n_items`` (several GB for ML-1M batches), and the result is the exact loss.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, dtype: torch.dtype):
        with torch.autocast("cpu", enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            n = h.shape[0]
            lse = torch.empty(n, dtype=torch.float32, device=h.device)
            tgt = torch.empty(n, dtype=torch.float32, device=h.device)
            for s in range(0, n, chunk):
                logits = (h[s : s + chunk] @ w.t()).float()
                logits[:, 0] = -torch.inf  # padding is never a candidate
                lse[s : s + chunk] = torch.logsumexp(logits, dim=1)
                tgt[s : s + chunk] = logits.gather(1, targets[s : s + chunk, None]).squeeze(1)
        ctx.save_for_backward(hidden, weight, targets, lse)
        ctx.chunk, ctx.dtype = chunk, dtype
        return (lse - tgt).mean()

    @staticmethod
    def backward(ctx, grad_out):
        hidden, weight, targets, lse = ctx.saved_tensors
        chunk, dtype = ctx.chunk, ctx.dtype
        n = hidden.shape[0]
        scale = grad_out.float() / n
        with torch.autocast("cpu", enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            grad_h = torch.empty(hidden.shape, dtype=torch.float32, device=hidden.device)
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
            for s in range(0, n, chunk):
                hc = h[s : s + chunk]
                logits = (hc @ w.t()).float()
                logits[:, 0] = -torch.inf
                p = torch.exp(logits - lse[s : s + chunk, None])
                p[torch.arange(len(hc)), targets[s : s + chunk]] -= 1.0
                p = (p * scale).to(dtype)
                grad_h[s : s + chunk] = (p @ w).float()
                grad_w += (p.t() @ hc).float()
        return grad_h.to(hidden.dtype), grad_w.to(weight.dtype), None, None, None


def full_softmax_ce(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_weight: torch.Tensor,
    *,
    chunk: int = 4096,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Cross-entropy over the whole catalogue. ``hidden`` (N, d), ``targets`` (N,), weight (n_items+1, d)."""
    return _ChunkedSoftmaxCE.apply(hidden, item_weight, targets, chunk, dtype)


def full_softmax_ce_reference(hidden: torch.Tensor, targets: torch.Tensor, item_weight: torch.Tensor) -> torch.Tensor:
    """Plain reference implementation (materialises every logit); the tests check the fast path against it."""
    logits = (hidden @ item_weight.t()).float()
    logits[:, 0] = -torch.inf
    return F.cross_entropy(logits, targets)


def sampled_softmax_ce(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_weight: torch.Tensor,
    *,
    n_negatives: int,
    generator: torch.Generator | None = None,
    popularity: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax over the target and ``n_negatives`` negatives shared by the batch.

    Negatives are uniform over items 1..n, or drawn by ``popularity`` (then every logit is
    corrected by -log Q(item), the log-Q correction, so the estimate stays unbiased).
    Negatives equal to a row's target are masked.
    """
    n_items = item_weight.shape[0] - 1
    if popularity is None:
        neg = torch.randint(1, n_items + 1, (n_negatives,), generator=generator, device=hidden.device)
        logq_pos = logq_neg = None
    else:
        q = popularity / popularity.sum()
        neg = torch.multinomial(q, n_negatives, replacement=True, generator=generator)
        logq_neg = torch.log(q[neg] * n_negatives)
        logq_pos = torch.log(q[targets] * n_negatives)
    pos_logit = (hidden * item_weight[targets]).sum(-1, keepdim=True)
    neg_logit = hidden @ item_weight[neg].t()
    if logq_neg is not None:
        pos_logit = pos_logit - logq_pos[:, None]
        neg_logit = neg_logit - logq_neg[None, :]
    neg_logit = neg_logit.masked_fill(neg[None, :] == targets[:, None], -torch.inf)
    logits = torch.cat([pos_logit, neg_logit], dim=1).float()
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=hidden.device))
