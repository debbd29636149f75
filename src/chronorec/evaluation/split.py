"""Splits without leakage: leave-one-out, next item within the session and a global temporal cut-off.

Every split returns a training EventLog (same id maps as the input) and EvalSets whose
inputs are histories the model may see and whose targets it must predict (the two types live in
:mod:`chronorec.scoring.cases`, below the models, which score validation cases while they train).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.data.eventlog import EventLog
from chronorec.errors import ConfigError
from chronorec.scoring.cases import EvalSet, Split

__all__ = ["EvalSet", "Split", "leave_one_out", "session_split", "temporal_split", "tied_targets"]

logger = logging.getLogger(__name__)


def leave_one_out(log: EventLog, *, min_events: int = 3) -> Split:
    """Last event of each user = test target, second-to-last = validation target, rest = train.

    Validation input = the training prefix; test input = training prefix + validation item.
    Users with fewer than ``min_events`` events keep all their events in training and are not
    evaluated. Relies on the log's stable (user, time, original order) sort.
    """
    store = log.sequences()
    return _tail_split(log, store, store.lengths >= min_events, "leave-one-out", {"min_events": int(min_events)})


def session_split(log: EventLog, *, min_session_events: int = 3) -> Split:
    """Next item within the session: for each user, the last event of their last session is the test
    target and the one before it (same session) the validation target; inputs are everything the
    user did before (earlier sessions, then the session so far).

    Only users whose last session has at least ``min_session_events`` events (3: one in-session
    input event for validation) are evaluated; the others keep every event in training. Needs a
    ``session`` column (``--session-col``). ``settings`` counts the users left out because their last
    session is shorter, sessions of one event among them, reported apart as the protocol asks.
    """
    if min_session_events < 3:
        raise ConfigError(f"min_session_events must be at least 3, not {min_session_events}")
    if C.SESSION not in log.events.columns:
        raise ConfigError(
            f"{log.source}: the session split needs a session column: ingest with --session-col NAME "
            "(e.g. user_session for REES46, session_id for Diginetica)"
        )
    store = log.sequences()
    ev = log.events
    users = ev[C.USER_IDX].to_numpy()
    session = pd.factorize(ev[C.SESSION].astype(str))[0]
    last_session = np.full(log.n_users + 1, -1)
    ends = store.offsets[users + 1] - 1
    last_session[users] = session[ends]  # every event of a user writes the session of its last event
    in_last = session == last_session[users]
    last_len = np.bincount(users[in_last], minlength=log.n_users + 1)
    evaluated = last_len >= min_session_events
    short = (last_len > 0) & ~evaluated
    settings = {
        "min_session_events": int(min_session_events),
        "users_with_short_last_session": int(short[1:].sum()),
        "users_with_one_event_last_session": int((last_len[1:] == 1).sum()),
    }
    return _tail_split(log, store, evaluated, "session", settings)


def _tail_split(log: EventLog, store: Any, evaluated_u: np.ndarray, protocol: str, settings: dict) -> Split:
    """The last event of each ``evaluated_u`` user = test target, the one before = validation target."""
    ev = log.events
    users = ev[C.USER_IDX].to_numpy()
    ends = store.offsets[users + 1]
    from_end = ends - 1 - np.arange(len(ev))  # position of each event from the end of its user: 0 = last
    evaluated = evaluated_u[users]
    train_mask = ~evaluated | (from_end >= 2)
    full_mask = ~evaluated | (from_end >= 1)
    eval_users = np.flatnonzero(evaluated_u)
    eval_users = eval_users[eval_users > 0]
    items = store.items
    off = store.offsets
    val_inputs = [items[off[u] : off[u + 1] - 2] for u in eval_users]
    val_targets = [items[off[u + 1] - 2 : off[u + 1] - 1] for u in eval_users]
    test_inputs = [items[off[u] : off[u + 1] - 1] for u in eval_users]
    test_targets = [items[off[u + 1] - 1 : off[u + 1]] for u in eval_users]
    _warn_tied_targets(store, eval_users, log.source)
    return Split(
        train=log.with_events(ev[train_mask]),
        validation=EvalSet.build(eval_users, val_inputs, val_targets, "validation"),
        test=EvalSet.build(eval_users, test_inputs, test_targets, "test"),
        protocol=protocol,
        full=log.with_events(ev[full_mask]),
        settings=settings,
    )


def tied_targets(store: Any, users: np.ndarray) -> tuple[int, int]:
    """How many of ``users``' leave-one-out test and validation targets share their timestamp with an
    input event (the previous event: events are sorted by time). Such a target is one item of a
    basket or a same-second burst whose other items stay in the input: a leak within the basket."""
    if store.timestamps is None or len(users) == 0:
        return 0, 0
    users = np.asarray(users)
    ends, lens = store.offsets[users + 1], np.diff(store.offsets)[users]
    ts = store.timestamps
    test = int(((lens >= 2) & (ts[np.maximum(ends - 1, 0)] == ts[np.maximum(ends - 2, 0)])).sum())
    val = int(((lens >= 3) & (ts[np.maximum(ends - 2, 0)] == ts[np.maximum(ends - 3, 0)])).sum())
    return test, val


def _warn_tied_targets(store: Any, users: np.ndarray, source: str) -> None:
    test, val = tied_targets(store, users)
    if test or val:
        logger.warning(
            "%s: leave-one-out: %d of %d test targets (and %d validation targets) share their timestamp with "
            "input events (items of one basket or session): the rest of the basket stays in the input. "
            "Hold out whole baskets with --split next-basket (chronorec.evaluation.basket.next_basket_split)",
            source, test, len(users), val,
        )  # fmt: skip


def temporal_split(
    log: EventLog,
    *,
    test_cutoff: int,
    validation_cutoff: int | None = None,
    first_only: bool = False,
) -> Split:
    """One global time cut-off for everyone.

    Training = events with timestamp < ``validation_cutoff`` (or < ``test_cutoff`` if no
    validation cut-off). Validation targets = events in [validation_cutoff, test_cutoff);
    test targets = events at or after ``test_cutoff``. Inputs are each user's events before
    the respective cut-off; only users with at least one input event are evaluated. With
    ``first_only`` only the first later event is a target; otherwise all distinct later items are.
    """
    if validation_cutoff is None:
        validation_cutoff = test_cutoff
    if validation_cutoff > test_cutoff:
        raise ConfigError("validation_cutoff must not be after test_cutoff")
    ev = log.events
    ts = ev[C.TIME].to_numpy()
    train = log.with_events(ev[ts < validation_cutoff])
    full = log.with_events(ev[ts < test_cutoff])

    def cases(before: np.ndarray, window: np.ndarray, name: str):
        users_in = ev[C.USER_IDX].to_numpy()
        items = ev[C.ITEM_IDX].to_numpy()
        u_win = np.unique(users_in[window])
        has_input = np.zeros(log.n_users + 1, bool)
        has_input[users_in[before]] = True
        u_eval = u_win[has_input[u_win]]
        inputs, targets = [], []
        by_user_before = _group(users_in[before], items[before])
        by_user_win = _group(users_in[window], items[window])
        for u in u_eval:
            inputs.append(by_user_before[u])
            tgt = by_user_win[u]
            targets.append(tgt[:1] if first_only else pd_unique(tgt))
        return EvalSet.build(u_eval, inputs, targets, name)

    validation = cases(ts < validation_cutoff, (ts >= validation_cutoff) & (ts < test_cutoff), "validation")
    test = cases(ts < test_cutoff, ts >= test_cutoff, "test")
    settings = {"test_cutoff": int(test_cutoff), "validation_cutoff": int(validation_cutoff), "first_only": first_only}
    return Split(
        train=train, validation=validation, test=test, protocol="global-temporal", full=full, settings=settings
    )


def _group(users: np.ndarray, items: np.ndarray) -> dict[int, np.ndarray]:
    if len(users) == 0:
        return {}
    bounds = np.flatnonzero(np.diff(users)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(users)]])
    return {int(users[s]): items[s:e] for s, e in zip(starts, ends, strict=True)}


def pd_unique(a: np.ndarray) -> np.ndarray:
    """Distinct values in order of first appearance."""
    _, first = np.unique(a, return_index=True)
    return a[np.sort(first)]
