"""Cases of behaviour prediction: cut-offs, labels, the temporal and funnel features, the trivial baselines.

Cut-offs (see :func:`make_cutoffs`): the test cut-off ``t_test``, the validation cut-off
``t_test - H`` and training cut-offs ``t_test - 2H, t_test - 2H - step, ...``. Every label window
ends at or before the next later cut-off, so no training label uses an event at or after the
validation cut-off and no validation label one at or after the test cut-off; features at ``t``
use only events before ``t`` (:func:`chronorec.temporal.features.feature_table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.datasets.temporal import event_frame
from chronorec.errors import ConfigError, DataError
from chronorec.temporal.behavior.timescale import TargetTimes, TimeScale, check_cost, derive_time_scale, make_cutoffs
from chronorec.temporal.durations import format_duration
from chronorec.temporal.features import feature_table

__all__ = ["RECENT_HOURS", "BehaviorData", "funnel_features", "make_behavior_data", "make_cutoffs", "resolve_scale"]


RECENT_HOURS = (1, 6, 24, 72)


def funnel_features(
    events: pd.DataFrame,
    users: np.ndarray,
    cutoff: int,
    *,
    classes: Sequence[str],
    target: str = "buy",
    recent_s: Sequence[int] = tuple(h * 3600 for h in RECENT_HOURS),
    utc_offset_hours: float = 0.0,
) -> pd.DataFrame:
    """Recency and purchase-funnel features of ``users`` at ``cutoff``, from events strictly before it.

    ``recent_s`` holds four windows ``r1 < r2 < r3 < r4`` (seconds; on the daily scale 1, 6, 24 and
    72 hours), named in hours when whole (``24h``) else with their unit (``15m``). Columns:
    ``recent{r}_<b>`` (events of each type in the last ``r``), ``recent{r}_items``
    (distinct items), ``max_item_views_{r3}`` (most events on one item in the last ``r3``),
    ``open_<b>_items[_{r3}|_{r4}]`` for ``b`` in cart / fav (distinct items carted or faved, with no
    ``target`` event on the same item since, all time and within the last ``r3`` / ``r4``),
    ``open_items_viewed_{r3}`` (events in the last ``r3`` on those open items), ``target_days``
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
    age = cutoff - ts
    for r in recent_s:
        w = age <= r
        cnt = np.bincount(u[w] * k + bc[w], minlength=n * k).reshape(n, k)
        for i, b in enumerate(classes):
            out[f"recent{_name(r)}_{b}"] = cnt[:, i].astype(np.float64)
        pairs = pd.DataFrame({"u": u[w], "i": item[w]}).drop_duplicates()
        out[f"recent{_name(r)}_items"] = np.bincount(pairs["u"].to_numpy(), minlength=n).astype(np.float64)
    r3, r4 = recent_s[2], recent_s[3]
    w3 = age <= r3
    per_item = pd.DataFrame({"u": u[w3], "i": item[w3]}).groupby(["u", "i"]).size()
    mx = per_item.groupby(level=0).max() if len(per_item) else pd.Series(dtype=np.float64)
    out[f"max_item_views_{_name(r3)}"] = mx.reindex(np.arange(n)).fillna(0).to_numpy(np.float64)
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
        age_b = cutoff - e["t_b"].to_numpy()
        out[f"open_{b}_items"] = np.bincount(uu, minlength=n).astype(np.float64)
        out[f"open_{b}_items_{_name(r3)}"] = np.bincount(uu[age_b <= r3], minlength=n).astype(np.float64)
        out[f"open_{b}_items_{_name(r4)}"] = np.bincount(uu[age_b <= r4], minlength=n).astype(np.float64)
        rec = pd.Series(age_b / 3600.0).groupby(uu).min()
        out[f"hours_since_open_{b}"] = rec.reindex(np.arange(n)).to_numpy(np.float64)
        open_keys.append(e.index)
    if open_keys:
        keys = open_keys[0].append(open_keys[1:]).unique() if len(open_keys) > 1 else open_keys[0]
        recent = frame[w3]
        hit = pd.MultiIndex.from_arrays([recent["u"], recent["i"]]).isin(keys)
        out[f"open_items_viewed_{_name(r3)}"] = np.bincount(recent["u"].to_numpy()[hit], minlength=n).astype(np.float64)
    off = int(round(utc_offset_hours * 3600))
    days = pd.DataFrame({"u": u[bc == ti], "d": (ts[bc == ti] + off) // 86400}).drop_duplicates()
    out["target_days"] = np.bincount(days["u"].to_numpy(), minlength=n).astype(np.float64)
    hour = ((cutoff + off) % 86400) / 3600.0
    out["cutoff_hour_sin"] = np.full(n, np.sin(2 * np.pi * hour / 24))
    out["cutoff_hour_cos"] = np.full(n, np.cos(2 * np.pi * hour / 24))
    return pd.DataFrame(out)


def _name(seconds: int) -> str:
    """A window's name in feature columns: whole hours as ``24h`` (the daily scale's names), else ``15m``."""
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else format_duration(seconds)


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
    scale: TimeScale | None = None  # the lengths the cases were built with

    def part(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.cases["part"].to_numpy() == name)

    def model_input(self) -> np.ndarray:
        """The feature models' input: every feature, plus the trivial baseline's (past-only) statistic."""
        return np.column_stack([self.features.to_numpy(np.float64), self.past_rate])


def resolve_scale(  # noqa: PLR0913 - one keyword per length
    timestamps: np.ndarray,
    *,
    horizon_s: int | None = None,
    step_s: int | None = None,
    min_history_s: int | None = None,
    freq: str | None = None,
    windows: Sequence[int | str] | None = None,
    recent_s: Sequence[int] | None = None,
    events: pd.DataFrame | None = None,
    target: str | None = None,
    utc_offset_hours: float = 0.0,
) -> TimeScale:
    """:func:`~chronorec.temporal.behavior.timescale.derive_time_scale` from lengths in seconds (None:
    derived from the span of ``timestamps`` and where the ``target`` events of ``events`` fall);
    ``recent_s`` overrides the recency windows."""
    targets = None
    if events is not None and target is not None and horizon_s is None:
        first = events.groupby(C.USER)[C.TIME].transform("min").to_numpy()
        hit = (events[C.BEHAVIOR] == target).to_numpy()
        targets = TargetTimes(events[C.TIME].to_numpy()[hit], first[hit])

    def sec(v: int | None) -> str | None:
        return None if v is None else f"{int(v)}s"

    scale = derive_time_scale(
        timestamps,
        horizon=sec(horizon_s),
        step=sec(step_s),
        min_history=sec(min_history_s),
        freq=freq,
        windows=windows,
        targets=targets,
        utc_offset_hours=utc_offset_hours,
    )
    return replace(scale, recent_s=tuple(int(r) for r in recent_s)) if recent_s is not None else scale


def make_behavior_data(  # noqa: PLR0913 - one keyword per protocol choice
    events: pd.DataFrame,
    *,
    target: str = "buy",
    horizon_s: int | None = None,
    cutoffs: dict[str, list[int]] | None = None,
    n_train_cutoffs: int | None = None,
    step_s: int | None = None,
    freq: str | None = None,
    windows: Sequence[int | str] | None = None,
    utc_offset_hours: float = 0.0,
    min_history_s: int | None = None,
    recent_s: Sequence[int] | None = None,
) -> BehaviorData:
    """Cases, labels, temporal features (:func:`chronorec.temporal.features.feature_table` plus
    :func:`funnel_features`) and the trivial baselines for every cut-off.

    Lengths left None come from the data's span (:mod:`~chronorec.temporal.behavior.timescale`: on
    four days or more, a 1-day horizon, daily periods with 1, 7, 28-day windows). Default cut-offs:
    :func:`make_cutoffs` with training cut-offs every ``step_s`` (default ``horizon_s / 4``: on
    Taobao the feature models score the same on validation with a 3, 6, 12 or 24 h step, and the
    sequence classifiers get four times the training cases), as many as the history allows unless
    ``n_train_cutoffs`` caps them."""
    df = event_frame(events)
    if C.BEHAVIOR not in df.columns:
        raise DataError(
            "behaviour prediction needs a 'behavior' column: --behavior-col, or for a log of one kind of "
            "event (a shop's purchases) an ingest recipe with 'default_behavior: buy' (docs/guide/ingest.md)"
        )
    classes = sorted(pd.unique(df[C.BEHAVIOR]).tolist())
    if target not in classes:
        raise ConfigError(f"target behaviour {target!r} not in the data (types: {classes}): name one with --target")
    scale = resolve_scale(
        df[C.TIME].to_numpy(),
        horizon_s=horizon_s,
        step_s=step_s,
        min_history_s=min_history_s,
        freq=freq,
        windows=windows,
        recent_s=recent_s,
        events=df,
        target=target,
        utc_offset_hours=utc_offset_hours,
    )
    horizon_s = scale.horizon_s
    cuts = cutoffs or make_cutoffs(
        df[C.TIME].to_numpy(),
        horizon_s=horizon_s,
        step_s=scale.step_s,
        n_train=n_train_cutoffs,
        min_history_s=scale.min_history_s,
        align_s=scale.align_s,
        utc_offset_hours=utc_offset_hours,
    )
    all_cuts = sorted({t for v in cuts.values() for t in v})
    part_of = {t: p for p, v in cuts.items() for t in v}
    check_cost(len(all_cuts), int(df[C.USER].nunique()))
    feats = feature_table(
        df, entity=C.USER, cutoffs=all_cuts, freq=scale.freq, windows=scale.windows, utc_offset_hours=utc_offset_hours
    )
    y_t, nxt, rate, funnel = _per_cutoff(df, feats, all_cuts, classes, target, scale, utc_offset_hours)
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
        scale=scale,
    )


def _per_cutoff(
    df: pd.DataFrame,
    feats: pd.DataFrame,
    cutoffs: list[int],
    classes: list[str],
    target: str,
    scale: TimeScale,
    utc_offset_hours: float,
) -> tuple[list, list, list, list]:
    """Per cut-off: the target labels, next types, past rates and funnel features of its users."""
    bcode = pd.Categorical(df[C.BEHAVIOR], categories=classes).codes.astype(np.int64)
    y_t, nxt, rate, funnel = [], [], [], []
    for t in cutoffs:
        u = feats.loc[feats["cutoff"].to_numpy() == t, "entity_id"]
        funnel.append(
            funnel_features(
                df,
                u.to_numpy(),
                t,
                classes=classes,
                target=target,
                recent_s=scale.recent_s,
                utc_offset_hours=utc_offset_hours,
            )
        )
        labels = _labels_at(df, bcode, u, t, scale.horizon_s, classes.index(target))
        y_t.append(labels[0])
        nxt.append(labels[1])
        rate.append(labels[2])
    return y_t, nxt, rate, funnel


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
