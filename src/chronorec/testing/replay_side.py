"""The pure parts of the RePlay side of the peer comparison (``benchmarks/peers_replay.py``, run in
RePlay's own virtual environment): its reading and leave-one-out split of a sequence file, and its
pessimistic ranks and figures, written independently of chronorec's (``tests/test_peers.py`` checks
that they agree). Imports numpy, torch and the standard library only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MIN_EVENTS = 3


def read_sequences(path: str | Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(user ids, item sequences)`` of a ``user item item ...`` file; a user on several lines
    continues its sequence (as chronorec's ``load_sequence_file`` reads it)."""
    seqs: dict[int, list[int]] = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if parts:
            seqs.setdefault(int(parts[0]), []).extend(int(x) for x in parts[1:])
    users = np.array(sorted(seqs), dtype=np.int64)
    return users, [np.array(seqs[u], dtype=np.int64) for u in users]


def leave_one_out(seqs: list[np.ndarray], min_events: int = MIN_EVENTS) -> dict[str, Any]:
    """Training sequences and the validation and test cases (inputs, single targets) of each
    user with at least ``min_events`` events; shorter users keep every event in training."""
    train, evaluated = [], []
    for i, s in enumerate(seqs):
        if len(s) >= min_events:
            train.append(s[:-2])
            evaluated.append(i)
        else:
            train.append(s)
    return {
        "train": train,
        "rows": np.array(evaluated, dtype=np.int64),
        "val_inputs": [seqs[i][:-2] for i in evaluated],
        "val_targets": np.array([seqs[i][-2] for i in evaluated], dtype=np.int64),
        "test_inputs": [seqs[i][:-1] for i in evaluated],
        "test_targets": np.array([seqs[i][-1] for i in evaluated], dtype=np.int64),
    }


def pessimistic_ranks(scores, targets, histories: list[np.ndarray] | None = None) -> np.ndarray:
    """1-based rank of each row's target among all columns of ``scores`` (a float tensor, one
    column per catalogue item): 1 + the other items scoring at least as high. With ``histories``
    (column indices per row) those items are excluded first, and an excluded target is a miss
    (rank inf). ``scores`` is changed in place."""
    import torch

    if histories is not None:
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        if len(rows):
            cols = np.concatenate(histories).astype(np.int64)
            scores[torch.from_numpy(rows), torch.from_numpy(cols)] = -torch.inf
    t = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    ts = scores.gather(1, t[:, None])
    r = ((scores >= ts).sum(1) - 1).numpy().astype(np.float64) + 1
    r[~np.isfinite(ts.squeeze(1).numpy())] = np.inf
    return r


def figures(ranks: np.ndarray, ks: tuple[int, ...] = (10,)) -> dict[str, float]:
    """HR@K and NDCG@K of single-target ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks <= k
        out[f"HR@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        out[f"NDCG@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0).mean()) if len(ranks) else 0.0
    return out


def left_pad(seqs: list[np.ndarray], width: int, pad: int) -> np.ndarray:
    """The last ``width`` items of each sequence, left-padded with ``pad`` (RePlay's layout)."""
    out = np.full((len(seqs), width), pad, dtype=np.int64)
    for i, s in enumerate(seqs):
        tail = s[-width:]
        if len(tail):
            out[i, width - len(tail) :] = tail
    return out
