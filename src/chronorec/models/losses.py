"""Next-item losses over an output embedding table (weight-tied with the input items)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def full_softmax_ce(hidden: torch.Tensor, targets: torch.Tensor, item_weight: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the whole catalogue. ``hidden`` (N, d), ``targets`` (N,), weight (n_items+1, d)."""
    logits = hidden @ item_weight.t()
    logits[:, 0] = -torch.inf  # padding is never a candidate
    return F.cross_entropy(logits.float(), targets)


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
