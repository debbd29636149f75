"""Cases of behaviour prediction: cut-offs, labels, the temporal and funnel features, the trivial baselines.

Cut-offs (see :func:`make_cutoffs`): the test cut-off ``t_test``, the validation cut-off
``t_test - H`` and training cut-offs ``t_test - 2H, t_test - 2H - step, ...``. Every label window
ends at or before the next later cut-off, so no training label uses an event at or after the
validation cut-off and no validation label one at or after the test cut-off; features at ``t``
use only events before ``t`` (:func:`chronorec.temporal.features.feature_table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.datasets.temporal import event_frame
from chronorec.errors import ConfigError, DataError
from chronorec.temporal.features import feature_table

__all__ = ["RECENT_HOURS", "BehaviorData", "funnel_features", "make_behavior_data", "make_cutoffs"]


def make_cutoffs(
    timestamps: np.ndarray,
    *,
    horizon_s: int,
    step_s: int | None = None,
    n_train: int | None = 6,
    test_cutoff: int | None = None,
    min_history_s: int = 86400,
    align_s: int = 86400,
    utc_offset_hours: float = 0.0,
) -> dict[str, list[int]]:
    """Train / validation / test cut-offs (UTC seconds).

    The default test cut-off is the last ``align_s``-aligned boundary (local time) with a full
    horizon of data after it. Training cut-offs go back from ``validation - horizon_s`` by ``step_s``
    (default ``horizon_s``; a shorter step gives overlapping training label windows, all of which still
    end by the validation cut-off) while at least ``min_history_s`` lie between the start of the first
    ``align_s`` period and the cut-off, at most ``n_train`` of them (``None``: no limit).
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    off = int(round(utc_offset_hours * 3600))
    lo, hi = int(ts.min()), int(ts.max()) + 1
    lo = (lo + off) // align_s * align_s - off  # history counts from the start of the first (local) period
    if test_cutoff is None:
        last = hi - horizon_s
        test_cutoff = (last + off) // align_s * align_s - off
    val = test_cutoff - horizon_s
    step = step_s or horizon_s
    train = []
    t = val - horizon_s
    while t - lo >= min_history_s and (n_train is None or len(train) < n_train):
        train.append(int(t))
        t -= step
    if not train:
        raise DataError("not enough history for a training cut-off: shorten --horizon or --min-history")
    return {"train": sorted(train), "validation": [int(val)], "test": [int(test_cutoff)]}


RECENT_HOURS = (1, 6, 24, 72)


def funnel_features(
    events: pd.DataFrame,
    users: np.ndarray,
    cutoff: int,
    *,
    classes: Sequence[str],
    target: str = "buy",
    hours: Sequence[int] = RECENT_HOURS,
    utc_offset_hours: float = 0.0,
) -> pd.DataFrame:
    """Recency and purchase-funnel features of ``users`` at ``cutoff``, from events strictly before it.

    Columns: ``recent{h}h_<b>`` (events of each type in the last ``h`` hours), ``recent{h}h_items``
    (distinct items), ``max_item_views_24h`` (most events on one item in the last 24 h),
    ``open_<b>_items[_24h|_72h]`` for ``b`` in cart / fav (distinct items carted or faved, with no
    ``target`` event on the same item since, all time and within the last 24 / 72 h),
    ``open_items_viewed_24h`` (events in the last 24 h on those open items), ``target_days``
    (distinct local days with a target event), ``hours_since_last_{b}_item_target`` (the most recent
    ``b`` event that is still open) and the cut-off's local hour as sin / cos.
    """
    ev = events[events[C.TIME] < cutoff]
    ev = ev[ev[C.USER].isin(users)]
    ui = pd.Index(users)
    u = ui.get_indexer(ev[C.USER])
    ts = ev[C.TIME].to_numpy()
    item = ev[C.ITEM].to_numpy()
    bc = pd.Categorical(ev[C.BEHAVIOR], categories=list(classes)).codes
    n, k = len(ui), len(classes)
    out: dict[str, np.ndarray] = {}
    age_h = (cutoff - ts) / 3600.0
    for h in hours:
        w = age_h <= h
        cnt = np.bincount(u[w] * k + bc[w], minlength=n * k).reshape(n, k)
        for i, b in enumerate(classes):
            out[f"recent{h}h_{b}"] = cnt[:, i].astype(np.float64)
        pairs = pd.DataFrame({"u": u[w], "i": item[w]}).drop_duplicates()
        out[f"recent{h}h_items"] = np.bincount(pairs["u"].to_numpy(), minlength=n).astype(np.float64)
    w24 = age_h <= 24
    per_item = pd.DataFrame({"u": u[w24], "i": item[w24]}).groupby(["u", "i"]).size()
    mx = per_item.groupby(level=0).max() if len(per_item) else pd.Series(dtype=np.float64)
    out["max_item_views_24h"] = mx.reindex(np.arange(n)).fillna(0).to_numpy(np.float64)
    ti = list(classes).index(target)
    frame = pd.DataFrame({"u": u, "i": item, "t": ts, "b": bc})
    last_target = frame[frame["b"] == ti].groupby(["u", "i"])["t"].max().rename("t_target")
    open_keys = []
    for b in ("cart", "fav"):
        if b not in classes or b == target:
            continue
        bi = list(classes).index(b)
        e = frame[frame["b"] == bi].groupby(["u", "i"])["t"].max().rename("t_b").to_frame().join(last_target)
        e = e[~(e["t_target"] >= e["t_b"])]  # no target event on the item since its last cart / fav
        uu = e.index.get_level_values(0).to_numpy()
        age = (cutoff - e["t_b"].to_numpy()) / 3600.0
        out[f"open_{b}_items"] = np.bincount(uu, minlength=n).astype(np.float64)
        out[f"open_{b}_items_24h"] = np.bincount(uu[age <= 24], minlength=n).astype(np.float64)
        out[f"open_{b}_items_72h"] = np.bincount(uu[age <= 72], minlength=n).astype(np.float64)
        rec = pd.Series(age).groupby(uu).min()
        out[f"hours_since_open_{b}"] = rec.reindex(np.arange(n)).to_numpy(np.float64)
        open_keys.append(e.index)
    if open_keys:
        keys = open_keys[0].append(open_keys[1:]).unique() if len(open_keys) > 1 else open_keys[0]
        recent = frame[w24]
        hit = pd.MultiIndex.from_arrays([recent["u"], recent["i"]]).isin(keys)
        out["open_items_viewed_24h"] = np.bincount(recent["u"].to_numpy()[hit], minlength=n).astype(np.float64)
    off = int(round(utc_offset_hours * 3600))
    days = pd.DataFrame({"u": u[bc == ti], "d": (ts[bc == ti] + off) // 86400}).drop_duplicates()
    out["target_days"] = np.bincount(days["u"].to_numpy(), minlength=n).astype(np.float64)
    hour = ((cutoff + off) % 86400) / 3600.0
    out["cutoff_hour_sin"] = np.full(n, np.sin(2 * np.pi * hour / 24))
    out["cutoff_hour_cos"] = np.full(n, np.cos(2 * np.pi * hour / 24))
    return pd.DataFrame(out)


@dataclass
class BehaviorData:
    """Cases (user, cut-off) with labels and the feature matrix, in one frame per part."""

    cases: pd.DataFrame  # user_id, cutoff, part, y_target, next_type (-1 = no event in the window)
    features: pd.DataFrame  # aligned with cases (same row order), numeric feature columns only
    classes: list[str]
    target: str
    horizon_s: int
    cutoffs: dict[str, list[int]]
    events: pd.DataFrame = field(repr=False)
    past_rate: np.ndarray = field(repr=False)  # the trivial baseline, aligned with cases
    past_shares: np.ndarray = field(repr=False)  # (n, K) past behaviour counts, aligned with cases

    def part(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.cases["part"].to_numpy() == name)

    def model_input(self) -> np.ndarray:
        """The feature models' input: every feature, plus the trivial baseline's (past-only) statistic."""
        return np.column_stack([self.features.to_numpy(np.float64), self.past_rate])


def make_behavior_data(
    events: pd.DataFrame,
    *,
    target: str = "buy",
    horizon_s: int = 86400,
    cutoffs: dict[str, list[int]] | None = None,
    n_train_cutoffs: int | None = None,
    step_s: int | None = None,
    freq: str = "day",
    windows: Sequence[int] = (1, 7, 28),
    utc_offset_hours: float = 0.0,
) -> BehaviorData:
    """Cases, labels, temporal features (:func:`chronorec.temporal.features.feature_table` plus
    :func:`funnel_features`) and the trivial baselines for every cut-off.

    Default cut-offs: :func:`make_cutoffs` with training cut-offs every ``step_s`` (default
    ``horizon_s / 4``: on Taobao the feature models score the same on validation with a 3, 6, 12 or
    24 h step, and the sequence classifiers get four times the training cases), as many as the
    history allows unless ``n_train_cutoffs`` caps them."""
    df = event_frame(events)
    if C.BEHAVIOR not in df.columns:
        raise DataError(
            "behaviour prediction needs a 'behavior' column: --behavior-col, or for a log of one kind of "
            "event (a shop's purchases) an ingest recipe with 'default_behavior: buy' (docs/guide/ingest.md)"
        )
    classes = sorted(pd.unique(df[C.BEHAVIOR]).tolist())
    if target not in classes:
        raise ConfigError(f"target behaviour {target!r} not in the data (types: {classes})")
    cuts = cutoffs or make_cutoffs(
        df[C.TIME].to_numpy(),
        horizon_s=horizon_s,
        step_s=step_s or max(horizon_s // 4, 1),
        n_train=n_train_cutoffs,
        utc_offset_hours=utc_offset_hours,
    )
    all_cuts = sorted({t for v in cuts.values() for t in v})
    part_of = {t: p for p, v in cuts.items() for t in v}
    feats = feature_table(
        df, entity=C.USER, cutoffs=all_cuts, freq=freq, windows=windows, utc_offset_hours=utc_offset_hours
    )
    bcode = pd.Categorical(df[C.BEHAVIOR], categories=classes).codes.astype(np.int64)
    y_t, nxt, rate, funnel = [], [], [], []
    for t in all_cuts:
        u = feats.loc[feats["cutoff"].to_numpy() == t, "entity_id"]
        funnel.append(
            funnel_features(df, u.to_numpy(), t, classes=classes, target=target, utc_offset_hours=utc_offset_hours)
        )
        labels = _labels_at(df, bcode, u, t, horizon_s, classes.index(target))
        y_t.append(labels[0])
        nxt.append(labels[1])
        rate.append(labels[2])
    cases = pd.DataFrame(
        {
            C.USER: feats["entity_id"].to_numpy(),
            "cutoff": feats["cutoff"].to_numpy(),
            "part": feats["cutoff"].map(part_of).to_numpy(),
            "y_target": np.concatenate(y_t),
            "next_type": np.concatenate(nxt),
        }
    )
    shares = feats[[f"n_{b}" for b in classes]].to_numpy(np.float64)
    x = pd.concat(
        [feats.drop(columns=["entity_id", "cutoff", "cutoff_time"]), pd.concat(funnel, ignore_index=True)], axis=1
    )
    return BehaviorData(
        cases=cases,
        features=x,
        classes=classes,
        target=target,
        horizon_s=horizon_s,
        cutoffs=cuts,
        events=df,
        past_rate=np.concatenate(rate),
        past_shares=shares,
    )


def _labels_at(
    df: pd.DataFrame, bcode: np.ndarray, u: pd.Series, t: int, horizon_s: int, ti: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the users ``u`` at cut-off ``t``: the target label (a target event in ``[t, t + H)``), the
    next event type (``-1``: none in the window) and the past rate (the share of the user's past
    H-windows, back from ``t``, holding a target event)."""
    ts = df[C.TIME].to_numpy()
    users = df[C.USER].to_numpy()
    win = (ts >= t) & (ts < t + horizon_s)
    wdf = pd.DataFrame({"u": users[win], "b": bcode[win], "t": ts[win]}).sort_values(["u", "t"], kind="stable")
    has_t = set(wdf.loc[wdf["b"] == ti, "u"])
    first = wdf.groupby("u", sort=False)["b"].first()
    y = u.isin(has_t).to_numpy().astype(np.int64)
    nxt = u.map(first).fillna(-1).to_numpy().astype(np.int64)
    past = ts < t
    pdf = pd.DataFrame({"u": users[past], "t": ts[past], "b": bcode[past]})
    first_t = pdf.groupby("u")["t"].min()
    n_win = np.ceil((t - u.map(first_t).to_numpy()) / horizon_s)
    tgt = pdf[pdf["b"] == ti]
    j = np.ceil((t - tgt["t"].to_numpy()) / horizon_s)
    hits = pd.DataFrame({"u": tgt["u"].to_numpy(), "j": j}).drop_duplicates().groupby("u").size()
    return y, nxt, u.map(hits).fillna(0).to_numpy() / np.maximum(n_win, 1)
