"""Model scores as the pipeline's distributions and ranking keys.

Two ways through the same arithmetic:

* :func:`model_probabilities` -- every row's probabilities over the whole catalogue (float64), for
  rows that are blended or re-ranked, which need the full distribution;
* :func:`lean_top` -- the ranking and the probabilities of the ``k`` items kept only, for rows
  ranked by the model alone (the usual case). It takes the same steps as the evaluation pass:
  mask, one ``logsumexp`` per row, top-k, so a batch of plain lists costs what evaluating it does.

Both give the probability ``softmax(score / T)`` over the items not excluded (banned items count in
the denominator: bans filter the list, they do not re-normalise it) and rank by the raw score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from chronorec.models.topk import top_k
from chronorec.scoring.ranking_metrics import exclude_items


def softmax_masked(x: np.ndarray, ok: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(x / T)`` over the entries where ``ok`` (0 elsewhere)."""
    z = np.where(ok, x.astype(np.float64) / temperature, -np.inf)
    m = z[ok].max() if ok.any() else 0.0
    e = np.where(ok, np.exp(z - m), 0.0)
    s = e.sum()
    return e / s if s > 0 else e


def normalise(p: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``p`` restricted to ``ok`` and summing to 1 (uniform over ``ok`` when ``p`` is 0 there)."""
    q = np.where(ok, p, 0.0)
    s = q.sum()
    if s > 0:
        return q / s
    n = ok.sum()
    return ok / n if n else q


def allowed(n_rows: int, n_cols: int, exclude: Sequence[np.ndarray]) -> np.ndarray:
    """(n_rows, n_cols) mask: False for the padding column and each row's excluded items."""
    ok = np.ones((n_rows, n_cols), bool)
    ok[:, 0] = False
    lens = [len(e) for e in exclude]
    if sum(lens):
        ok[np.repeat(np.arange(n_rows), lens), np.concatenate([np.asarray(e, np.int64) for e in exclude])] = False
    return ok


def model_probabilities(raw: np.ndarray, ok: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Every row at once: ranking keys (raw scores, -inf where not ``ok``) and ``softmax(raw / T)`` over ``ok``."""
    keys = raw.astype(np.float64)
    keys[~ok] = -np.inf
    probs = keys / temperature  # the same steps as exp(keys / T - max) in place: no full-size temporaries
    top = probs.max(1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    probs -= top
    np.exp(probs, out=probs)
    total = probs.sum(1, keepdims=True)
    probs /= np.where(total > 0, total, 1.0)
    return probs, keys


def lean_top(
    scores: torch.Tensor,
    exclude: Sequence[np.ndarray],
    banned: np.ndarray,
    k: int,
    temperature: float,
    probabilities: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The ``k`` best items of each row by raw score and their probabilities, without full-size float64 work.

    ``scores`` (B, n_items + 1, float32) is changed in place. Returns ``(items, keys, probs)``,
    each (B, k): internal ids (higher score first, ties by the smaller id, as :func:`top_k`),
    raw scores (-inf past a row's last allowed item) and ``softmax(score / T)`` over the items
    not excluded, as :func:`model_probabilities` gives them (None with ``probabilities=False``:
    no pass over the row beyond the top-k).
    """
    with torch.inference_mode():  # the model's scores are inference tensors
        exclude_items(scores, list(exclude))
        lse = torch.logsumexp(scores.double() / temperature, dim=1, keepdim=True).numpy() if probabilities else None
        cols = np.flatnonzero(banned[1:]) + 1  # padding is already out
        if len(cols):
            scores[:, torch.from_numpy(cols)] = -torch.inf
        items, keys = top_k(scores, k)
    keys = keys.astype(np.float64)
    if lse is None:
        return items, keys, None
    with np.errstate(invalid="ignore"):  # rows with no allowed item: -inf - -inf
        probs = np.exp(keys / temperature - lse)
    probs[~np.isfinite(keys)] = 0.0
    return items, keys, probs


__all__ = ["allowed", "lean_top", "model_probabilities", "normalise", "softmax_masked"]
