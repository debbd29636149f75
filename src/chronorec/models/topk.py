"""The one top-k path of chronorec: the best ``k`` items of score rows, in a fixed tie order.

Order: higher score first, then the lower internal item index. ``torch.topk`` leaves the order
of equal scores unspecified, so rows with ties at or inside the cut are re-ranked exactly;
the rest keep the fast ``torch.topk`` answer, which has no ties to order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from chronorec.scoring.ranking_metrics import SCORE_BATCH, exclude_items

ScoreFn = Callable[..., torch.Tensor]


def top_k(scores: torch.Tensor | np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` best columns of each row of ``scores`` (1-D: one row).

    Higher score first, ties by lower column index; NaN ranks as ``-inf``. ``-inf`` entries
    (excluded items) come last, so a row with fewer than ``k`` finite scores ends in ``-inf``
    values that callers drop. ``k`` is capped at the number of columns.
    """
    s = torch.as_tensor(scores).detach().cpu()
    one_row = s.dim() == 1
    if one_row:
        s = s[None]
    if s.dtype not in (torch.float32, torch.float64):
        s = s.float()
    n_rows, n_cols = s.shape
    k = min(int(k), n_cols)
    if k <= 0 or n_rows == 0:
        idx, val = np.zeros((n_rows, max(k, 0)), np.int64), s.new_zeros((n_rows, max(k, 0))).numpy()
        return (idx[0], val[0]) if one_row else (idx, val)
    # one more than asked: the (k+1)-th value tells whether a tie crosses the cut, without a pass over the row
    val, idx = torch.topk(s, min(k + 1, n_cols), dim=1)
    if bool(val.isnan().any()):  # topk ranks NaN above everything, so a row with NaN shows one here
        s = torch.nan_to_num(s, nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
        val, idx = torch.topk(s, min(k + 1, n_cols), dim=1)
    val, idx = val.numpy(), idx.numpy().astype(np.int64)
    tied = (val[:, 1:k] == val[:, : k - 1]).any(1)
    if val.shape[1] > k:
        tied |= val[:, k] == val[:, k - 1]
    idx, val = idx[:, :k].copy(), val[:, :k].copy()
    s_np = s.numpy()
    for r in np.flatnonzero(tied):
        cols = np.flatnonzero(s_np[r] >= val[r, -1])
        order = np.lexsort((cols, -s_np[r, cols]))[:k]
        idx[r] = cols[order]
        val[r] = s_np[r, idx[r]]
    return (idx[0], val[0]) if one_row else (idx, val)


def recommend_top_k(
    score: ScoreFn,
    users: np.ndarray,
    histories: Sequence[np.ndarray],
    k: int,
    *,
    n_items: int,
    exclude_seen: bool = True,
    batch_size: int = SCORE_BATCH,
    context: Sequence[dict[str, Any] | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` internal item ids and scores per user, scored in batches by ``score``.

    ``score(users, histories, context)`` gives (B, n_items + 1) scores; padding (column 0) is never
    recommended and with ``exclude_seen`` neither are the history's items (their value is
    ``-inf``: fewer than ``k`` candidates left). ``k`` is capped at ``n_items``.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    k = min(k, n_items)
    all_idx, all_val = [], []
    with torch.inference_mode():
        for s in range(0, len(users), batch_size):
            hist = list(histories[s : s + batch_size])
            ctx = context[s : s + batch_size] if context is not None else None
            scores = score(users[s : s + batch_size], hist, ctx)
            if exclude_seen:
                exclude_items(scores, hist)
            else:
                scores[:, 0] = -torch.inf
            idx, val = top_k(scores, k)
            all_idx.append(idx)
            all_val.append(val)
    if not all_idx:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return np.concatenate(all_idx), np.concatenate(all_val)
