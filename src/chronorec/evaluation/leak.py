"""Leak-proof evaluation: what a model was trained on, and a refusal to score data it has seen.

Every fitted model records :func:`~chronorec.data.fingerprint.training_record` of its training log (a fingerprint of the
events, the time of the last training event, a hash of the catalogue) and the split that made it
(``split``: the protocol and its cut-offs or ``min_events``). :func:`check_evaluation` compares that
record with an evaluation about to be scored and refuses, in one line, when

* the evaluation's split protocol differs from the one the model was trained on (a model trained
  leave-one-out has seen every user's events up to the second-to-last, whatever the date);
* the targets of a temporal evaluation lie at or before the model's last training event;
* a leave-one-out (next-basket) evaluation includes users the training split kept whole (smaller
  ``min_events``, ``min_baskets``);
* none of the target items is in the model's catalogue (a model of another shop scores 0.0 and
  says nothing about itself).

The leak refusals can be overridden (``allow_leak``; ``--allow-leak`` on the command line): the
evaluation is then scored and the result records the leak. Models saved before these records
existed still load; their evaluation warns that leakage cannot be checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from chronorec.data.fingerprint import catalogue_hash, iso
from chronorec.errors import ConfigError


class EvaluationRefused(ConfigError):
    """An evaluation that would score data the model was trained on, or items it has never seen."""


class Trained(Protocol):
    """What the leak checks read of a model (:class:`chronorec.models.base.Recommender` declares it)."""

    training_data: dict[str, Any]

    @property
    def members(self) -> Sequence[Trained]: ...


def model_records(model: Trained) -> list[dict[str, Any]]:
    """The training records of a model, or of each member of an ensemble (empty dicts where absent)."""
    return [m.training_data or {} for m in (model.members or [model])]


def _catalogue_check(label: str, model: Any, log: Any, cases: Any, part: str) -> list[str]:
    targets = np.unique(cases.target_items)
    if len(targets) == 0:
        return []
    known = model.items.to_internal(log.items.to_external(targets)) > 0
    same = all(r.get("catalogue_hash") in (None, catalogue_hash(log.items)) for r in model_records(model))
    if not known.any():
        raise EvaluationRefused(
            f"{label}: none of the {len(targets)} {part} target items is in the model's catalogue of "
            f"{model.n_items} items (trained on another catalogue); it would score 0 on everything"
        )
    if not same or not known.all():
        return [
            f"{label}: {100 * (1 - known.mean()):.1f}% of the {part} target items are unknown to the model (misses)"
        ]
    return []


def _split_problems(trained: dict[str, Any], split: Any, part: str) -> list[str]:
    now = split.describe()
    problems = []
    if trained.get("protocol") != now["protocol"]:
        problems.append(f"it was trained on a {trained.get('protocol')!r} split, evaluated on {now['protocol']!r}")
    elif now["protocol"] == "leave-one-out" and now.get("min_events", 0) < trained.get("min_events", 0):
        problems.append(
            f"min_events {now.get('min_events')} < {trained.get('min_events')} of its training split: "
            "users it trained on whole are evaluated"
        )
    elif now["protocol"] == "session" and now.get("min_session_events", 0) < trained.get("min_session_events", 0):
        problems.append(
            f"min_session_events {now.get('min_session_events')} < {trained.get('min_session_events')} of its "
            "training split: users it trained on whole are evaluated"
        )
    elif now["protocol"] == "next-basket" and now.get("min_baskets", 0) < trained.get("min_baskets", 0):
        problems.append(
            f"min_baskets {now.get('min_baskets')} < {trained.get('min_baskets')} of its training split: "
            "users it trained on whole are evaluated"
        )
    return problems


def _time_problems(record: dict[str, Any], split: Any, part: str) -> list[str]:
    last = record.get("last_event_time")
    settings = split.describe()
    cut = settings.get("test_cutoff" if part == "test" else "validation_cutoff")
    if last is None or cut is None or last < cut:
        return []
    return [
        f"its last training event ({iso(last)}) is at or after the {part} cut-off ({iso(cut)}), "
        f"so {part} targets up to {iso(last)} were training data"
    ]


def split_options(split: dict[str, Any] | None) -> str:
    """The command-line options that make the split a model recorded (``""`` when there are none:
    no record, or a model trained on all events)."""
    protocol = (split or {}).get("protocol")
    if protocol == "leave-one-out":
        return f"--split loo --min-events {split.get('min_events', 3)}"
    if protocol == "session":
        return "--split session"
    if protocol == "global-temporal" and split.get("test_cutoff") is not None:

        def arg(seconds: int) -> str:
            return pd.Timestamp(int(seconds), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")

        out = f"--split temporal --cutoff {arg(split['test_cutoff'])}"
        if split.get("validation_cutoff") not in (None, split["test_cutoff"]):
            out += f" --validation-cutoff {arg(split['validation_cutoff'])}"
        return out
    return ""


def check_evaluation(
    label: str,
    model: Any,
    log: Any,
    split: Any,
    cases: Any,
    *,
    part: str = "test",
    allow_leak: bool = False,
    fix: str = "override with --allow-leak",
    action: str = "evaluation",
) -> dict[str, Any]:
    """Check that scoring ``model`` on ``cases`` (of ``split`` of ``log``) is not a leaked evaluation.

    Raises :class:`EvaluationRefused` (one line, ending with ``fix``; ``action`` names what is
    refused, e.g. ``"calibration"``) on a leak unless ``allow_leak``, and always when no target item
    is in the model's catalogue. Returns ``{"checked": bool, "leaks": [...], "warnings": [...]}`` for
    the result file.
    """
    warnings = _catalogue_check(label, model, log, cases, part)
    records = model_records(model)
    if not all(records):
        warnings.append(
            f"{label}: the model records no training data (saved by an older chronorec): leakage cannot be checked"
        )
        return {"checked": False, "leaks": [], "warnings": warnings}
    problems: list[str] = []
    for r in records:
        if r.get("split") is None:
            warnings.append(f"{label}: the model does not record its split; only the time of its data is checked")
        else:
            problems += _split_problems(r["split"], split, part)
        problems += _time_problems(r, split, part)
    problems = list(dict.fromkeys(problems))
    if problems and not allow_leak:
        raise EvaluationRefused(f"{label}: refusing a leaked {action}: {'; '.join(problems)} ({fix})")
    if problems:
        warnings.append(f"{label}: LEAKED evaluation scored on request (--allow-leak): {'; '.join(problems)}")
    return {"checked": True, "leaks": problems, "warnings": warnings}


__all__ = [
    "EvaluationRefused",
    "check_evaluation",
    "model_records",
    "split_options",
]
