"""The cases a model is scored on (:class:`EvalSet`) and the split that produces them (:class:`Split`).

The types live below the models because a model chooses its epochs on validation cases; the splits
themselves (leave-one-out, session, temporal, next-basket) are made in :mod:`chronorec.evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chronorec.data.eventlog import EventLog
from chronorec.data.sequences import pack_histories

__all__ = ["EvalSet", "Split"]


@dataclass
class EvalSet:
    """Evaluation cases: for each row, a user, an input history and one or more targets."""

    users: np.ndarray  # internal user ids
    input_offsets: np.ndarray
    input_items: np.ndarray
    target_offsets: np.ndarray
    target_items: np.ndarray
    name: str = "eval"
    protocol: str = "next-item"
    """How the cases are scored: ``"next-item"`` (:func:`~chronorec.scoring.ranking_metrics.evaluate_ranking`) or
    ``"next-basket"`` (the whole next basket, :func:`~chronorec.scoring.basket_metrics.evaluate_baskets`)."""

    def __len__(self) -> int:
        return len(self.users)

    def inputs(self, rows: np.ndarray | slice) -> list[np.ndarray]:
        idx = np.arange(len(self))[rows]
        return [self.input_items[self.input_offsets[r] : self.input_offsets[r + 1]] for r in idx]

    def targets(self, rows: np.ndarray | slice) -> list[np.ndarray]:
        idx = np.arange(len(self))[rows]
        return [self.target_items[self.target_offsets[r] : self.target_offsets[r + 1]] for r in idx]

    @property
    def single_target(self) -> bool:
        return bool(np.all(np.diff(self.target_offsets) == 1))

    def subset(self, rows: np.ndarray, *, users: np.ndarray | None = None, name: str | None = None) -> "EvalSet":
        """The cases ``rows`` (same protocol), optionally with other user ids (e.g. row numbers)."""
        return EvalSet.build(
            self.users[rows] if users is None else users,
            self.inputs(rows),
            self.targets(rows),
            name or self.name,
            protocol=self.protocol,
        )

    @classmethod
    def build(
        cls,
        users: np.ndarray,
        inputs: list[np.ndarray],
        targets: list[np.ndarray],
        name: str,
        *,
        protocol: str = "next-item",
    ) -> "EvalSet":
        io, ii = pack_histories(inputs)
        to, ti = pack_histories(targets)
        return cls(np.asarray(users, dtype=np.int64), io, ii, to, ti, name, protocol)


@dataclass
class Split:
    train: EventLog
    validation: EvalSet
    test: EvalSet
    protocol: str
    full: EventLog | None = None  # train + validation events (the input for test)
    settings: dict[str, Any] = field(default_factory=dict)  # min_events, or the cut-offs (epoch seconds)

    def describe(self) -> dict[str, Any]:
        """The protocol and its settings, as saved with a model trained on ``train`` (leak checks)."""
        return {"protocol": self.protocol, **self.settings}
