"""Cases of the time-to-event task: cut-offs, censored times to each behaviour's next event, features, sequences.

At a cut-off ``t``, every user with an event before ``t`` is a case. For each behaviour ``b`` (``buy``,
``cart``, ``pv``...) the case's time is the time from ``t`` to the user's first ``b`` event at or after
``t``, *right-censored* at the end of the case's follow-up window when there is none by then:

* training cut-offs (every ``step_s`` back from the validation cut-off) are followed up to the
  validation cut-off, so no training time uses an event at or after it;
* the validation cut-off is followed up to the test cut-off (epoch choice, the baselines' settings);
* the test cut-off is followed up to the end of the data (or ``test_window_s`` after it): every test
  case has the same follow-up, so its censoring is administrative.

Features at ``t`` use only events strictly before ``t``: the temporal features
(:func:`chronorec.temporal.features.feature_table`) plus the funnel features of behaviour prediction
(:func:`chronorec.temporal.behavior.funnel_features`), and the sequence of the user's last
``max_len`` *steps* before ``t`` (a step: the events of one behaviour at one second, e.g. the lines
of one invoice), each step as its behaviour and five numbers: log gap to the step before, log age at
the cut-off, log event count and the local hour of day (sine, cosine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.datasets.temporal import CATEGORY, event_frame
from chronorec.errors import ConfigError, DataError

__all__ = [
    "N_STEP_FEATURES",
    "ItemHistory",
    "StepSequences",
    "WhenData",
    "make_when_cutoffs",
    "make_when_data",
    "times_to_next",
    "when_features",
]

HOUR = 3600.0
N_STEP_FEATURES = 5  # log1p gap h, log1p age h, log1p count, hour sin, hour cos
MIN_SECONDS = 1.0  # an event at the cut-off itself is one second away (the head takes log time)


def make_when_cutoffs(
    timestamps: np.ndarray,
    *,
    validation_s: int,
    step_s: int,
    test_cutoff: int | None = None,
    test_window_s: int | None = None,
    n_train: int | None = None,
    min_history_s: int = 86400,
    align_s: int = 86400,
    utc_offset_hours: float = 0.0,
) -> dict[str, list[int]]:
    """Train / validation / test cut-offs (UTC seconds) and the end of the test follow-up.

    The test cut-off is ``test_cutoff``, or the last ``align_s``-aligned boundary (local time) with
    ``test_window_s`` (default ``validation_s``) of data after it; the validation cut-off lies
    ``validation_s`` before it; training cut-offs go back from the validation cut-off by ``step_s``
    while ``min_history_s`` of data lie before them (at most ``n_train``). ``"end"`` holds the end of
    the test follow-up: the end of the data, or ``test_window_s`` after the test cut-off if sooner.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    if ts.size == 0:
        raise DataError("no events to place cut-offs in")
    off = int(round(utc_offset_hours * 3600))
    lo, data_end = int(ts.min()), int(ts.max()) + 1
    window = int(test_window_s or validation_s)
    if test_cutoff is None:
        test_cutoff = (data_end - window + off) // align_s * align_s - off
    test_cutoff = int(test_cutoff)
    if test_cutoff >= data_end:
        raise DataError(f"the test cut-off {pd.Timestamp(test_cutoff, unit='s')} is after the data: an earlier one")
    val = test_cutoff - int(validation_s)
    train: list[int] = []
    t = val - int(step_s)
    while t - lo >= min_history_s and (n_train is None or len(train) < n_train):
        train.append(int(t))
        t -= int(step_s)
    if not train:
        raise DataError(
            "not enough history for a training cut-off before the validation cut-off "
            f"{pd.Timestamp(val, unit='s')} UTC: a later test cut-off, a shorter validation window or less --min-history"
        )
    end = min(data_end, test_cutoff + int(test_window_s)) if test_window_s else data_end
    return {"train": sorted(train), "validation": [int(val)], "test": [test_cutoff], "end": [int(end)]}


def _steps(df: pd.DataFrame, behaviors: Sequence[str]) -> pd.DataFrame:
    """Events collapsed into steps: one row per (user, second, behaviour) with its event count,
    sorted by user then time (ties by behaviour order)."""
    b = pd.Categorical(df[C.BEHAVIOR], categories=list(behaviors)).codes.astype(np.int64)
    frame = pd.DataFrame({"u": df[C.USER].to_numpy(), "t": df[C.TIME].to_numpy(), "b": b})
    frame = frame[frame["b"] >= 0]
    steps = frame.groupby(["u", "t", "b"], sort=True).size().rename("n").reset_index()
    return steps


def times_to_next(
    steps: pd.DataFrame, users: np.ndarray, cutoffs: np.ndarray, ends: np.ndarray, n_behaviors: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hours from each case's cut-off to the user's first step of each behaviour in ``[cutoff, end)``
    (observed), else to ``end`` (censored): ``(time (n, B), observed (n, B))``."""
    n = len(users)
    time = np.empty((n, n_behaviors))
    observed = np.zeros((n, n_behaviors), dtype=bool)
    uindex = pd.Index(pd.unique(steps["u"]))
    qu = uindex.get_indexer(users).astype(np.int64)
    for b in range(n_behaviors):
        s = steps[steps["b"] == b]
        su = uindex.get_indexer(s["u"]).astype(np.int64)
        key = np.sort(su * (1 << 33) + s["t"].to_numpy(np.int64))  # users x seconds, one sorted key
        q = qu * (1 << 33) + cutoffs
        pos = np.searchsorted(key, q, side="left")
        nxt = np.where(pos < len(key), key[np.minimum(pos, len(key) - 1)], -1)
        same = (qu >= 0) & (pos < len(key)) & (nxt >> 33 == qu)
        t_next = np.where(same, nxt - qu * (1 << 33), np.iinfo(np.int64).max)
        hit = t_next < ends
        observed[:, b] = hit
        time[:, b] = np.where(hit, np.maximum(t_next - cutoffs, MIN_SECONDS), ends - cutoffs) / HOUR
    return time, observed


@dataclass
class StepSequences:
    """The steps of every user, for encoding the last ``max_len`` before any cut-off."""

    users: np.ndarray  # per step, sorted by (user, time)
    times: np.ndarray
    behavior: np.ndarray  # 0-based behaviour code
    count: np.ndarray
    utc_offset_s: int
    starts: pd.Series  # user -> first step row

    @classmethod
    def build(cls, steps: pd.DataFrame, utc_offset_hours: float) -> StepSequences:
        u = steps["u"].to_numpy()
        first = np.r_[True, u[1:] != u[:-1]] if len(u) else np.zeros(0, bool)
        starts = np.flatnonzero(first)
        return cls(
            users=u,
            times=steps["t"].to_numpy(np.int64),
            behavior=steps["b"].to_numpy(np.int64),
            count=steps["n"].to_numpy(np.int64),
            utc_offset_s=int(round(utc_offset_hours * 3600)),
            starts=pd.Series(starts, index=u[first]),
        )

    def encode(self, users: np.ndarray, cutoffs: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """``(behaviour tokens (n, L) int64, 1-based, 0 = padding; step numbers (n, L, 5) float32)`` of
        the last ``max_len`` steps strictly before each cut-off, left-padded."""
        code = self.starts.index.get_indexer(users).astype(np.int64)
        known = code >= 0
        a = np.where(known, self.starts.to_numpy()[np.maximum(code, 0)], 0)
        # the step rows before each cut-off: one sorted key (user's block, time) answers every case
        block = np.cumsum(np.r_[True, self.users[1:] != self.users[:-1]]) - 1 if len(self.users) else np.zeros(0, int)
        key = block.astype(np.int64) * (1 << 33) + self.times
        hi = np.searchsorted(key, code * (1 << 33) + np.asarray(cutoffs, np.int64), side="left")
        hi = np.where(known, hi, 0)
        idx = hi[:, None] - max_len + np.arange(max_len)[None, :]
        valid = idx >= a[:, None]
        idx = np.where(valid, idx, 0)
        tok = np.where(valid, self.behavior[idx] + 1, 0)
        t = self.times[idx]
        prev = np.where(idx - 1 >= a[:, None], self.times[np.maximum(idx - 1, 0)], t)
        gap = np.log1p(np.maximum(t - prev, 0) / HOUR)
        age = np.log1p(np.maximum(cutoffs[:, None] - t, 0) / HOUR)
        hour = ((t + self.utc_offset_s) % 86400) / HOUR * (2 * np.pi / 24)
        num = np.stack([gap, age, np.log1p(self.count[idx]), np.sin(hour), np.cos(hour)], -1)
        num = np.where(valid[..., None], num, 0.0).astype(np.float32)
        return tok.astype(np.int64), num


@dataclass
class ItemHistory:
    """Every event's item (or category) sorted by (user, time): the bag of a user's last items before a cut-off."""

    users: np.ndarray
    times: np.ndarray
    items: np.ndarray  # the raw item / category values
    user_index: pd.Index
    block: np.ndarray  # each event's position of its user in user_index

    @classmethod
    def build(cls, df: pd.DataFrame, column: str) -> ItemHistory:
        ev = df.sort_values([C.USER, C.TIME], kind="stable")
        users = ev[C.USER].to_numpy()
        codes, uniq = pd.factorize(ev[C.USER], sort=False)
        return cls(users, ev[C.TIME].to_numpy(np.int64), ev[column].astype(str).to_numpy(), pd.Index(uniq), codes)

    def vocabulary(self, before: int, min_count: int) -> list[str]:
        """The items seen at least ``min_count`` times before ``before`` (the training window), most frequent first."""
        counts = pd.Series(self.items[self.times < before]).value_counts(sort=True)
        return [str(i) for i in counts.index[counts >= min_count]]

    def bags(self, users: np.ndarray, cutoffs: np.ndarray, vocab: Sequence[str], size: int) -> np.ndarray:
        """(n, size) int64: the codes of each case's last ``size`` items strictly before its cut-off
        (1 = outside ``vocab``, 2.. = its position, 0 = padding)."""
        code = self.user_index.get_indexer(users).astype(np.int64)
        key = self.block.astype(np.int64) * (1 << 33) + self.times
        start = np.searchsorted(key, np.maximum(code, 0) * (1 << 33), side="left")
        hi = np.searchsorted(key, code * (1 << 33) + np.asarray(cutoffs, np.int64), side="left")
        hi = np.where(code >= 0, hi, 0)
        start = np.where(code >= 0, start, 0)
        idx = hi[:, None] - size + np.arange(size)[None, :]
        valid = idx >= start[:, None]
        item_code = pd.Index(list(vocab)).get_indexer(self.items).astype(np.int64) + 2
        item_code = np.where(item_code >= 2, item_code, 1)
        return np.where(valid, item_code[np.maximum(idx, 0)], 0).astype(np.int64)


def when_features(
    df: pd.DataFrame,
    cutoffs: Sequence[int],
    *,
    behaviors: Sequence[str],
    target: str,
    freq: str,
    windows: Sequence[int],
    utc_offset_hours: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(keys: user_id, cutoff; numeric features)`` for every user with an event before each cut-off:
    the temporal feature table and the funnel features, both from events strictly before the cut-off."""
    from chronorec.temporal.behavior import funnel_features
    from chronorec.temporal.features import feature_table

    feats = feature_table(df, entity=C.USER, cutoffs=list(cutoffs), freq=freq, windows=windows,
                          utc_offset_hours=utc_offset_hours)  # fmt: skip
    if feats.empty:
        raise DataError("no user has an event before the cut-offs: later cut-offs")
    funnel = []
    for t in sorted(set(int(c) for c in cutoffs)):
        u = feats.loc[feats["cutoff"].to_numpy() == t, "entity_id"].to_numpy()
        if len(u):
            funnel.append(
                funnel_features(df, u, t, classes=list(behaviors), target=target, utc_offset_hours=utc_offset_hours)
            )
    keys = pd.DataFrame({C.USER: feats["entity_id"].to_numpy(), "cutoff": feats["cutoff"].to_numpy(np.int64)})
    x = pd.concat(
        [feats.drop(columns=["entity_id", "cutoff", "cutoff_time"]).reset_index(drop=True),
         pd.concat(funnel, ignore_index=True)], axis=1,
    )  # fmt: skip
    return keys, x.astype(np.float64)


@dataclass
class WhenData:
    """Cases (user, cut-off) with censored times per behaviour, features and step sequences."""

    cases: pd.DataFrame  # user_id, cutoff, part, end (follow-up end, UTC seconds)
    time: np.ndarray  # (n, B) hours to the next event of each behaviour, or to the follow-up end
    observed: np.ndarray  # (n, B) the event happened within the follow-up
    features: pd.DataFrame  # (n, F) numeric, aligned with cases
    behaviors: list[str]
    target: str
    cutoffs: dict[str, list[int]]
    sequences: StepSequences = field(repr=False)
    events: pd.DataFrame = field(repr=False)
    items: ItemHistory | None = field(default=None, repr=False)  # the category (else item) of every event

    @property
    def target_index(self) -> int:
        return self.behaviors.index(self.target)

    def part(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.cases["part"].to_numpy() == name)

    def follow_up_hours(self, part: str) -> float:
        """The longest follow-up of the part's cases, in hours."""
        rows = self.part(part)
        c = self.cases.iloc[rows]
        return float((c["end"] - c["cutoff"]).max() / HOUR) if len(rows) else 0.0


def event_behaviors(df: pd.DataFrame, behaviors: Sequence[str] | None, target: str) -> list[str]:
    """The behaviours modelled: those asked for (each must occur in the log), else every type in the log;
    the target must be among them."""
    present = sorted(pd.unique(df[C.BEHAVIOR].astype(str)).tolist())
    chosen = list(behaviors) if behaviors else present
    missing = [b for b in chosen if b not in present]
    if missing:
        raise ConfigError(f"behaviour(s) {missing} not in the data (types: {present})")
    if target not in chosen:
        raise ConfigError(f"target behaviour {target!r} not among the modelled behaviours {chosen} (types: {present})")
    return chosen


def make_when_data(
    events: pd.DataFrame,
    *,
    cutoffs: dict[str, list[int]],
    target: str = "buy",
    behaviors: Sequence[str] | None = None,
    freq: str = "day",
    windows: Sequence[int] = (1, 7, 28),
    utc_offset_hours: float = 0.0,
) -> WhenData:
    """The cases of every cut-off in ``cutoffs`` (:func:`make_when_cutoffs`; a dict with only ``"test"``,
    and optionally ``"end"``, is the prediction case: followed up to the end of the data)."""
    df = event_frame(events)
    if C.BEHAVIOR not in df.columns:
        raise DataError(
            "time to event needs a 'behavior' column: --behavior-col, or for a log of one kind of event "
            "(a shop's purchases) an ingest recipe with 'default_behavior: buy' (docs/guide/ingest.md)"
        )
    behs = event_behaviors(df, behaviors, target)
    data_end = int(df[C.TIME].max()) + 1
    test_end = int(cutoffs.get("end", [data_end])[0])
    follow = {"train": cutoffs.get("validation", [data_end])[0], "validation": cutoffs.get("test", [data_end])[0]}
    parts = {t: p for p in ("train", "validation", "test") for t in cutoffs.get(p, [])}
    all_cuts = sorted(parts)
    keys, x = when_features(df, all_cuts, behaviors=behs, target=target, freq=freq, windows=windows,
                            utc_offset_hours=utc_offset_hours)  # fmt: skip
    part = keys["cutoff"].map(parts).to_numpy()
    end = np.where(part == "test", test_end, pd.Series(part).map(follow).to_numpy(dtype=np.float64))
    end = end.astype(np.int64)
    steps = _steps(df, behs)
    cut = keys["cutoff"].to_numpy(np.int64)
    time, observed = times_to_next(steps, keys[C.USER].to_numpy(), cut, end, len(behs))
    cases = keys.assign(part=part, end=end)
    return WhenData(
        cases=cases,
        time=time,
        observed=observed,
        features=x,
        behaviors=behs,
        target=target,
        cutoffs={k: list(v) for k, v in cutoffs.items()},
        sequences=StepSequences.build(steps, utc_offset_hours),
        events=df,
        items=ItemHistory.build(df, CATEGORY if CATEGORY in df.columns else C.ITEM) if C.ITEM in df.columns else None,
    )
