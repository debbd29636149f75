"""Training batches of the sequence models: windows of the users' sequences, grouped into batches.

A user's training sequence is a span ``[a, b)`` of the flat event store. Each epoch cuts one
window of at most ``max_len + window_extra`` events per span (its last, or with
``train_windows="random"`` a random one of a longer span) and groups the windows into batches:
``batching="random"`` shuffles them into batches of ``batch_size``, ``"tokens"`` groups windows of
similar length up to ``batch_size`` x the mean window length in tokens (:func:`token_batches`).
A model turns each batch of windows into tensors with :func:`gather` (its ``_make_batch``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from chronorec.data.sequences import SequenceStore

Span = tuple[int, int]


def token_batches(lengths: np.ndarray, budget: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of ``lengths`` grouped into batches of similar length whose padded size (rows x
    longest) stays within ``budget`` tokens (a longer sequence gets a batch of its own), in random
    order; ties in length are broken at random, so equal-length sequences meet different partners."""
    order = np.lexsort((rng.random(len(lengths)), lengths))
    out, start = [], 0
    for pos in range(1, len(order) + 1):
        # sorted ascending: the batch [start, pos] is padded to the length of its last member
        if pos == len(order) or (pos - start + 1) * lengths[order[pos]] > budget:
            out.append(order[start:pos])
            start = pos
    return [out[i] for i in rng.permutation(len(out))]


def gather(flat: np.ndarray, spans: list[Span], width: int, tail: int = 0, *, right: bool = False) -> torch.Tensor:
    """Left-padded (len(spans), width + tail) rows of ``flat[a:b]``, each ending at column ``width``;
    with ``right`` padded on the right instead, each starting at column 0."""
    out = np.zeros((len(spans), width + tail), dtype=np.int64)
    for r, (a, b) in enumerate(spans):
        if b > a:
            start = 0 if right else width - (b - a)
            out[r, start : start + b - a] = flat[a:b]
    return torch.from_numpy(out)


def next_time_groups(store: SequenceStore) -> tuple[np.ndarray, np.ndarray]:
    """For every event of the flat store, the span ``[start, end)`` of its user's events at the next
    later timestamp (the next basket), or ``(-1, -1)`` where the user has none."""
    ts, off = store.timestamps, store.offsets
    n = len(ts)
    user = np.repeat(np.arange(len(off) - 1), np.diff(off))
    first = np.r_[True, (ts[1:] != ts[:-1]) | (user[1:] != user[:-1])] if n else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], n]
    nxt = np.minimum(np.cumsum(first), len(starts) - 1)  # the group after each event's own
    has = (np.cumsum(first) < len(starts)) & (user[starts[nxt]] == user) if n else np.zeros(0, bool)
    return np.where(has, starts[nxt], -1), np.where(has, ends[nxt], -1)


def next_time_targets(
    spans: list[Span], groups: tuple[np.ndarray, np.ndarray], width: int, rng: np.random.Generator
) -> np.ndarray:
    """Right-padded (len(spans), width) flat indices of a random event of each input event's next
    timestamp (-1: none, or padding)."""
    start, end = groups
    out = np.full((len(spans), width), -1, dtype=np.int64)
    for r, (a, b) in enumerate(spans):
        s, e = start[a:b], end[a:b]
        pick = s + (rng.random(b - a) * (e - s)).astype(np.int64)
        out[r, : b - a] = np.where(s >= 0, pick, -1)
    return out


def pad_right(rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Left-padded rows (B, W) whose last ``lengths`` columns are real, moved to the left edge."""
    width = rows.shape[1]
    idx = (np.arange(width)[None, :] + (width - lengths)[:, None]) % width
    return np.take_along_axis(rows, idx, axis=1)


def pad_left(rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Right-padded rows (B, W) whose first ``lengths`` columns are real, moved to the right edge."""
    width = rows.shape[1]
    idx = (np.arange(width)[None, :] - (width - lengths)[:, None]) % width
    return np.take_along_axis(rows, idx, axis=1)


def training_spans(store: SequenceStore) -> list[Span]:
    """The event span of every user with at least two events (one input and one target)."""
    off, lens = store.offsets, store.lengths
    users = np.flatnonzero(lens >= 2)
    return [(int(off[u]), int(off[u + 1])) for u in users if u > 0]


class WindowBatcher:
    """The windows of one epoch, batch by batch, drawn with the trainer's generator."""

    def __init__(self, spans: list[Span], window: int, *, batch_size: int, windows: str, batching: str):
        self.spans, self.span_len = spans, window
        self.batch_size, self.windows, self.batching = batch_size, windows, batching
        self.lengths = np.array([b - a for a, b in spans])
        self.widths = np.minimum(self.lengths, window)
        self.budget = batch_size * max(float(self.widths.mean()), 1.0) if len(self.widths) else 1.0
        # the same every epoch: the lengths fix the packing
        self.n_batches = len(self.groups(np.random.default_rng(0)))

    def window(self, a: int, b: int, rng: np.random.Generator) -> Span:
        """The training window of span ``[a, b)``: its last events, or a random stretch of a long one."""
        if self.windows == "random" and b - a > self.span_len:
            end = int(rng.integers(a + self.span_len, b + 1))
            return end - self.span_len, end
        return max(a, b - self.span_len), b

    def groups(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Indices of the spans of each batch of an epoch."""
        if self.batching == "tokens":
            return token_batches(self.widths, self.budget, rng)
        order = rng.permutation(len(self.spans))
        return [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]

    def epoch(self, rng: np.random.Generator) -> Iterator[list[Span]]:
        """The windows of each batch of one epoch (lazily: a batch's windows are cut when it is asked for)."""
        for idx in self.groups(rng):
            yield [self.window(*self.spans[i], rng) for i in idx]


__all__ = [
    "WindowBatcher",
    "gather",
    "next_time_groups",
    "next_time_targets",
    "pad_left",
    "pad_right",
    "token_batches",
    "training_spans",
]
