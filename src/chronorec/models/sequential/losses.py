"""Next-item losses over an output embedding table (weight-tied with the input items).

* ``full_softmax_ce``: cross-entropy over the whole catalogue;
* ``sampled_softmax_ce``: softmax over the target and negatives shared by the batch, uniform or
  popularity-sampled with the log-Q correction (the sampled sum estimates the full partition
  function, so the loss tends to the full cross-entropy as the number of negatives grows);
* ``gbce``: generalised binary cross-entropy of gSASRec (Petrov & Macdonald, 2023), whose
  calibration parameter ``t`` undoes the overconfidence that negative sampling causes.

Every function takes ``hidden`` (N, d), ``targets`` (N,) and ``item_weight`` (n_items + 1, d),
row 0 being padding (never a candidate).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DEFAULT_CHUNK_ROWS = 512  # rows of logits per chunk of the full softmax (``chunk`` of ``full_softmax_ce``)
CE_KERNELS = ("fused", "fresh")  # full_softmax_ce's implementations (see its docstring)
# the full softmax keeps the batch's probabilities (in the matmul dtype) for backward up to this size
PROBS_BUDGET_BYTES = 512 * 2**20


class _ChunkedSoftmaxCE(torch.autograd.Function):
    """Mean softmax cross-entropy over the whole catalogue, fused with the output layer and chunked.

    Logits are computed ``chunk`` rows at a time in ``dtype`` (bfloat16 halves the cost of the
    dominant matmul on CPUs that support it) into a buffer allocated once per call, so the batch's
    logits are never held in float32. When the batch's probabilities fit
    :data:`PROBS_BUDGET_BYTES` in ``dtype``, forward keeps them (one softmax kernel per chunk) and
    backward is two matmuls over the whole batch, with no second exponential; the loss is then read
    from the target's probability. Otherwise forward keeps only each row's log-sum-exp (computed in
    float32 in place) and backward recomputes each chunk's softmax. Either way the loss is exact up
    to the rounding of the logits (and, on the first path, of the probabilities) to ``dtype``.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, dtype: torch.dtype):
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.detach().to(dtype).contiguous(), weight.detach().to(dtype)
            n, n_cols = h.shape[0], w.shape[0]
            ctx.chunk, ctx.dtype, ctx.dtypes = chunk, dtype, (hidden.dtype, weight.dtype)
            if n * n_cols * h.element_size() <= PROBS_BUDGET_BYTES:
                probs = torch.empty(n, n_cols, dtype=dtype, device=h.device)
                for s, low, _ in _chunks(n, n_cols, chunk, dtype, h.device, high=False):
                    torch.mm(h[s : s + len(low)], w.t(), out=low)
                    low[:, 0] = -torch.inf  # padding is never a candidate
                    probs[s : s + len(low)] = torch.softmax(low, dim=1)
                ctx.save_for_backward(h, w, targets)
                ctx.probs = probs
                p_target = probs.gather(1, targets[:, None]).squeeze(1).float()
                return -p_target.clamp_min(torch.finfo(torch.float32).tiny).log().mean()
            lse = torch.empty(n, dtype=torch.float32, device=h.device)
            tgt = torch.empty(n, dtype=torch.float32, device=h.device)
            for s, low, logits in _chunks(n, n_cols, chunk, dtype, h.device):
                e = s + len(logits)
                torch.mm(h[s:e], w.t(), out=low)
                if logits is not low:
                    logits.copy_(low)
                logits[:, 0] = -torch.inf
                tgt[s:e] = logits.gather(1, targets[s:e, None]).squeeze(1)
                top = logits.amax(dim=1, keepdim=True)
                lse[s:e] = logits.sub_(top).exp_().sum(dim=1).log_().add_(top.squeeze(1))
        ctx.save_for_backward(h, w, targets, lse)
        ctx.probs = None
        return (lse - tgt).mean()

    @staticmethod
    def backward(ctx, grad_out):
        h, w, targets, *lse = ctx.saved_tensors
        n = h.shape[0]
        scale = float(grad_out) / max(n, 1)
        with torch.autocast(h.device.type, enabled=False):
            if ctx.probs is not None:  # softmax - one-hot, then two matmuls over the whole batch
                p, rows = ctx.probs, torch.arange(n, device=h.device)
                p[rows, targets] -= 1.0
                grad_h, grad_w = (p @ w).float(), (p.t() @ h).float()
                p[rows, targets] += 1.0  # as it was, should backward run again
            else:
                grad_h, grad_w = _recomputed_grads(h, w, targets, lse[0], ctx.chunk, ctx.dtype)
        return grad_h.mul_(scale).to(ctx.dtypes[0]), grad_w.mul_(scale).to(ctx.dtypes[1]), None, None, None


def _recomputed_grads(h, w, targets, lse, chunk: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Unscaled gradients of the summed cross-entropy, each chunk's softmax recomputed from ``lse``."""
    n = h.shape[0]
    grad_h = torch.empty(h.shape, dtype=torch.float32, device=h.device)
    grad_w = torch.zeros(w.shape, dtype=torch.float32, device=w.device)
    rows = torch.arange(min(chunk, n), device=h.device)
    for s, low, p in _chunks(n, w.shape[0], chunk, dtype, h.device):
        e = s + len(p)
        torch.mm(h[s:e], w.t(), out=low)
        if p is not low:
            p.copy_(low)
        p.sub_(lse[s:e, None]).exp_()  # the softmax, in place
        p[:, 0] = 0.0
        p[rows[: e - s], targets[s:e]] -= 1.0
        if p is not low:
            low.copy_(p)
        grad_h[s:e] = low @ w
        grad_w += low.t() @ h[s:e]
    return grad_h, grad_w


def _chunks(n: int, n_cols: int, chunk: int, dtype: torch.dtype, device, high: bool = True):
    """(start, ``dtype`` buffer, float32 buffer or None) per chunk of ``n`` rows; the buffers are
    views of tensors allocated once (a single one when ``dtype`` is float32)."""
    rows = max(1, min(chunk, n))
    low = torch.empty(rows, n_cols, dtype=dtype, device=device)
    top = None
    if high:
        top = low if dtype == torch.float32 else torch.empty(rows, n_cols, dtype=torch.float32, device=device)
    for s in range(0, n, rows):
        k = min(rows, n - s)
        yield s, low[:k], (top[:k] if top is not None else None)


class _FreshChunkSoftmaxCE(torch.autograd.Function):
    """The full softmax cross-entropy as it was before the buffer reuse: a fresh float32 chunk of
    logits per chunk and ``logsumexp`` (``kernel="fresh"``, kept to measure what the fused one buys)."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, dtype: torch.dtype):
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            n = h.shape[0]
            lse = torch.empty(n, dtype=torch.float32, device=h.device)
            tgt = torch.empty(n, dtype=torch.float32, device=h.device)
            for s in range(0, n, chunk):
                logits = (h[s : s + chunk] @ w.t()).float()
                logits[:, 0] = -torch.inf
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
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            grad_h = torch.empty(hidden.shape, dtype=torch.float32, device=hidden.device)
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
            for s in range(0, n, chunk):
                hc = h[s : s + chunk]
                p = (hc @ w.t()).float().sub_(lse[s : s + chunk, None]).exp_()
                p[:, 0] = 0.0
                p[torch.arange(len(hc), device=p.device), targets[s : s + chunk]] -= 1.0
                p = p.to(dtype)
                grad_h[s : s + chunk] = (p @ w).float().mul_(scale)
                grad_w.add_((p.t() @ hc).float(), alpha=float(scale))
        return grad_h.to(hidden.dtype), grad_w.to(weight.dtype), None, None, None


def full_softmax_ce(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_weight: torch.Tensor,
    *,
    chunk: int | None = None,
    dtype: torch.dtype = torch.float32,
    kernel: str = "fused",
) -> torch.Tensor:
    """Cross-entropy over the whole catalogue. ``hidden`` (N, d), ``targets`` (N,), weight (n_items+1, d).

    ``chunk``: rows of logits at a time (default ``DEFAULT_CHUNK_ROWS``); ``kernel``: ``"fused"``
    (buffers allocated once, probabilities kept for backward within ``PROBS_BUDGET_BYTES``) or
    ``"fresh"`` (the earlier kernel: a fresh float32 chunk per chunk, logits recomputed in backward)."""
    if kernel not in CE_KERNELS:
        raise ValueError(f"kernel {kernel!r}: one of {CE_KERNELS}")
    fn = _ChunkedSoftmaxCE if kernel == "fused" else _FreshChunkSoftmaxCE
    return fn.apply(hidden, item_weight, targets, chunk or DEFAULT_CHUNK_ROWS, dtype)


def full_softmax_ce_reference(hidden: torch.Tensor, targets: torch.Tensor, item_weight: torch.Tensor) -> torch.Tensor:
    """Plain reference implementation (materialises every logit); the tests check the fast path against it."""
    logits = (hidden @ item_weight.t()).float()
    logits[:, 0] = -torch.inf
    return F.cross_entropy(logits, targets)


def sample_negatives(
    n_items: int,
    n_negatives: int,
    *,
    generator: torch.Generator | None = None,
    popularity: torch.Tensor | None = None,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Negatives shared by a batch and log(expected count) of each: uniform over 1..n or by popularity.

    They are drawn where ``generator`` lives (the CPU by default, so a seed gives the same
    negatives on any device) and returned on ``device``.
    """
    gen_device = generator.device if generator is not None else None
    if popularity is None:
        neg = torch.randint(1, n_items + 1, (n_negatives,), generator=generator, device=gen_device)
        logq = torch.full((n_negatives,), math.log(n_negatives / n_items))
    else:
        q = popularity.double() / popularity.sum()
        neg = torch.multinomial(q.float(), n_negatives, replacement=True, generator=generator)
        logq = torch.log(q[neg.to(q.device)] * n_negatives).float()
    return neg.to(device), logq.to(device)


def sampled_softmax_ce(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_weight: torch.Tensor,
    *,
    n_negatives: int,
    generator: torch.Generator | None = None,
    popularity: torch.Tensor | None = None,
    negatives: torch.Tensor | None = None,
    logq_correction: bool | None = None,
) -> torch.Tensor:
    """Softmax over the target and ``n_negatives`` negatives shared by the batch.

    Negatives are uniform over items 1..n, or drawn by ``popularity``; ``negatives`` gives them
    explicitly (e.g. every item once: then the loss equals the full cross-entropy exactly).
    With the log-Q correction (default for popularity sampling, optional for uniform) every
    *negative* logit is lowered by log(n_negatives * Q(item)), so that the sampled sum is an
    importance-sampling estimate of the full partition function; the target keeps its own
    logit, once, with weight 1 (correcting it too would not tend to the full softmax).
    Negatives equal to a row's target are masked (accidental hits).
    """
    n_items = item_weight.shape[0] - 1
    if negatives is not None:
        neg, logq = negatives.to(hidden.device), None
    else:
        neg, logq = sample_negatives(
            n_items, n_negatives, generator=generator, popularity=popularity, device=hidden.device
        )
    if logq_correction is None:
        logq_correction = popularity is not None and negatives is None
    pos_logit = (hidden * item_weight[targets]).sum(-1, keepdim=True)
    neg_logit = hidden @ item_weight[neg].t()
    if logq_correction and logq is not None:
        neg_logit = neg_logit - logq[None, :].to(neg_logit.dtype)
    neg_logit = neg_logit.masked_fill(neg[None, :] == targets[:, None], -torch.inf)
    logits = torch.cat([pos_logit, neg_logit], dim=1).float()
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=hidden.device))


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    """gSASRec's beta = alpha * (t * (1 - 1/alpha) + 1/alpha), alpha = negatives / (items - 1).

    t = 0 gives beta = 1 (plain BCE); t = 1 gives beta = alpha (fully calibrated).
    """
    alpha = min(1.0, n_negatives / max(n_items - 1, 1))
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def gbce_from_logits(pos_logit: torch.Tensor, neg_logit: torch.Tensor, beta: float) -> torch.Tensor:
    """-[beta * log sigmoid(s+) + sum_j log(1 - sigmoid(s_j))], mean over rows.

    ``pos_logit`` (N,), ``neg_logit`` (N, k); a negative logit of -inf (masked) adds nothing.
    """
    pos = beta * F.softplus(-pos_logit.float())
    neg = F.softplus(neg_logit.float())
    return (pos + neg.sum(1)).mean()


def gbce(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_weight: torch.Tensor,
    *,
    n_negatives: int,
    t: float = 0.75,
    generator: torch.Generator | None = None,
    negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """gBCE with uniform negatives shared by the batch (accidental hits masked)."""
    n_items = item_weight.shape[0] - 1
    if negatives is None:
        negatives, _ = sample_negatives(n_items, n_negatives, generator=generator, device=hidden.device)
    neg = negatives.to(hidden.device)
    beta = gbce_beta(len(neg), n_items, t)
    pos_logit = (hidden * item_weight[targets]).sum(-1)
    neg_logit = (hidden @ item_weight[neg].t()).masked_fill(neg[None, :] == targets[:, None], -torch.inf)
    return gbce_from_logits(pos_logit, neg_logit, beta)
