"""Synthetic e-commerce logs with planted, measurable structure.

The generator plants five kinds of structure, each of which a test can measure and a
model can (or cannot) exploit:

* **taste clusters** — items are partitioned into ``n_clusters`` contiguous blocks, one
  product category per block; every user has a primary cluster and picks most items from it;
* **item-to-item transitions** — every item has 1-3 preferred successors (mostly in its own
  cluster); after a view of item ``i`` the next viewed item is one of ``i``'s successors with
  probability ``p_successor`` (0.65 by default) — the signal a sequence model should learn;
* **weekly and daily periodicity** — sessions start more often on weekends (x2) and Fridays
  (x1.3) and in the evening (18:00-22:59, x3), rarely at night;
* **view -> cart -> buy funnels** — after a view of ``i`` a ``cart`` of ``i`` follows with
  probability ``p_cart``, and after a cart a ``buy`` of ``i`` follows with probability ``p_buy``;
  a cart or buy therefore always repeats the item of the view just before it (same user);
* **per-user trends** — each user drifts from the primary towards a secondary cluster over
  their history, and their activity rises or falls linearly over the time span.

Everything is deterministic for a seed. The item catalogue (clusters, successors, prices,
names) depends only on ``n_items``, ``n_clusters`` and ``seed``, not on the number of users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from chronorec.data import columns as C

CATEGORIES = ("Shirt", "Shoes", "Book", "Lamp", "Phone", "Mug", "Bag", "Watch", "Chair", "Game", "Camera", "Pen")
SUCCESSOR_WEIGHTS = {1: np.array([1.0]), 2: np.array([0.7, 0.3]), 3: np.array([0.6, 0.25, 0.15])}
DEVICES = ("mobile", "desktop")
DAY = 86_400


def _id_width(n: int) -> int:
    return max(4, len(str(n)))


def item_ids(n_items: int) -> list[str]:
    """External item ids ``i0001 .. iNNNN`` (internal order of the catalogue)."""
    w = _id_width(n_items)
    return [f"i{j:0{w}d}" for j in range(1, n_items + 1)]


def user_ids(n_users: int) -> list[str]:
    w = _id_width(n_users)
    return [f"u{j:0{w}d}" for j in range(1, n_users + 1)]


@dataclass
class SyntheticCatalog:
    """The planted item structure (0-based item positions; external id = ``item_ids[pos]``)."""

    item_ids: list[str]
    cluster: np.ndarray  # (n_items,) cluster of each item
    category: list[str]  # per cluster
    names: list[str]  # per item, e.g. "Shirt 012 (cluster 3)"
    price: np.ndarray  # (n_items,)
    successors: list[np.ndarray]  # per item, 1-3 successor positions, most preferred first
    successor_weights: list[np.ndarray]
    cluster_items: list[np.ndarray]  # per cluster, item positions
    cluster_popularity: list[np.ndarray]  # per cluster, probabilities over cluster_items

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def to_frame(self) -> pd.DataFrame:
        """One row per item: item_id, name, category, cluster, price, successors (space-separated ids)."""
        return pd.DataFrame(
            {
                C.ITEM: self.item_ids,
                "name": self.names,
                "category": [self.category[c] for c in self.cluster],
                "cluster": self.cluster.astype(np.int64),
                "price": self.price,
                "successors": [" ".join(self.item_ids[s] for s in succ) for succ in self.successors],
            }
        )


def make_catalog(
    *, n_items: int = 200, n_clusters: int = 5, seed: int = 0, p_same_cluster: float = 0.9
) -> SyntheticCatalog:
    """Items, their clusters, prices, names and planted successors (deterministic for a seed)."""
    if n_clusters < 1 or n_items < 2 * n_clusters:
        raise ValueError(
            f"need n_clusters >= 1 and n_items >= 2 * n_clusters (got n_items={n_items}, n_clusters={n_clusters})"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    cluster = (np.arange(n_items) * n_clusters) // n_items  # contiguous blocks
    category = [
        CATEGORIES[c % len(CATEGORIES)] + ("" if c < len(CATEGORIES) else f" {c // len(CATEGORIES) + 1}")
        for c in range(n_clusters)
    ]
    ids = item_ids(n_items)
    names = [f"{category[cluster[j]]} {j + 1:03d} (cluster {cluster[j]})" for j in range(n_items)]
    base_price = rng.lognormal(mean=3.0, sigma=0.5, size=n_clusters)
    price = np.round(base_price[cluster] * rng.lognormal(0.0, 0.3, size=n_items), 2)
    cluster_items = [np.flatnonzero(cluster == c) for c in range(n_clusters)]
    cluster_pop = []
    for members in cluster_items:
        ranks = rng.permutation(len(members))
        w = 1.0 / (ranks + 1.0) ** 0.8
        cluster_pop.append(w / w.sum())
    successors, weights = [], []
    all_items = np.arange(n_items)
    for j in range(n_items):
        k = int(rng.integers(1, 4))
        own = cluster_items[cluster[j]]
        chosen: list[int] = []
        while len(chosen) < k:
            pool = own if rng.random() < p_same_cluster else all_items
            cand = int(pool[rng.integers(len(pool))])
            if cand != j and cand not in chosen:
                chosen.append(cand)
        successors.append(np.array(chosen, dtype=np.int64))
        weights.append(SUCCESSOR_WEIGHTS[k])
    return SyntheticCatalog(ids, cluster, category, names, price, successors, weights, cluster_items, cluster_pop)


def _weekly_weights() -> tuple[np.ndarray, np.ndarray]:
    day = np.ones(7)  # 0 = Monday
    day[4] = 1.3
    day[5:7] = 2.0
    hour = np.ones(24)
    hour[0:7] = 0.25
    hour[18:23] = 3.0
    return day / day.sum(), hour / hour.sum()


class _Walker:
    """Draws the item sequence of one user (views only; the funnel is added by the caller)."""

    def __init__(self, cat: SyntheticCatalog, rng: np.random.Generator, p_successor: float, p_cluster: float):
        self.cat, self.rng = cat, rng
        self.p_successor, self.p_cluster = p_successor, p_cluster
        self.n_clusters = len(cat.cluster_items)

    def _from_cluster(self, c: int, seen: set[int]) -> int:
        members, pop = self.cat.cluster_items[c], self.cat.cluster_popularity[c]
        for _ in range(8):  # prefer unseen items
            j = int(members[self.rng.choice(len(members), p=pop)])
            if j not in seen:
                return j
        return j

    def next_item(self, prev: int | None, seen: set[int], primary: int, secondary: int, drift: float) -> int:
        rng = self.rng
        if prev is not None and rng.random() < self.p_successor:
            succ, w = self.cat.successors[prev], self.cat.successor_weights[prev]
            j = int(succ[rng.choice(len(succ), p=w)])
            if j in seen and rng.random() < 0.85:  # users rarely re-view: next preferred unseen successor
                fresh = [int(s) for s in succ if int(s) not in seen]
                if fresh:
                    return fresh[0]
            else:
                return j
        if rng.random() < self.p_cluster:
            c = secondary if rng.random() < drift else primary
        else:
            c = int(rng.integers(self.n_clusters))
        return self._from_cluster(c, seen)


def _funnel_walk(
    walker: _Walker,
    rng: np.random.Generator,
    n_views: int,
    clusters: tuple[int, int, float],
    p_cart: float,
    p_buy: float,
) -> tuple[list[int], list[str]]:
    """One user's item walk (``n_views`` views drifting from the primary to the secondary cluster),
    each view followed by a cart with ``p_cart`` and a cart by a buy with ``p_buy``."""
    primary, secondary, max_drift = clusters
    items: list[int] = []
    behav: list[str] = []
    seen: set[int] = set()
    prev: int | None = None
    for v in range(n_views):
        drift = max_drift * v / max(n_views - 1, 1)
        j = walker.next_item(prev, seen, primary, secondary, drift)
        items.append(j)
        behav.append("view")
        seen.add(j)
        prev = j
        if rng.random() < p_cart:
            items.append(j)
            behav.append("cart")
            if rng.random() < p_buy:
                items.append(j)
                behav.append("buy")
    return items, behav


class _Clock:
    """Session times: sizes 1 + Poisson(4), starts by weekly / daily weights and the user's trend."""

    def __init__(self, t0: int, span_days: int, day_base: np.ndarray, hour_w: np.ndarray):
        self.t0, self.span_days, self.day_base, self.hour_w = t0, span_days, day_base, hour_w
        self.days = np.arange(span_days)

    def sessions(
        self, rng: np.random.Generator, n: int, slope: float, preferred_device: int
    ) -> tuple[list[int], list[str]]:
        """Timestamps and devices of ``n`` events of one user, in order."""
        sizes: list[int] = []
        while sum(sizes) < n:
            sizes.append(1 + int(rng.poisson(4)))
        sizes[-1] -= sum(sizes) - n
        trend = np.clip(1.0 + slope * (self.days / max(self.span_days - 1, 1) - 0.5) * 2, 0.05, None)
        p_day = self.day_base * trend
        p_day /= p_day.sum()
        s_days = np.sort(rng.choice(self.span_days, size=len(sizes), p=p_day))
        s_hours = rng.choice(24, size=len(sizes), p=self.hour_w)
        s_start = self.t0 + s_days * DAY + s_hours * 3600 + rng.integers(0, 3600, size=len(sizes))
        s_start = s_start[np.argsort(s_start, kind="stable")]
        ts: list[int] = []
        dev: list[str] = []
        last = -1
        for size, st in zip(sizes, s_start, strict=False):
            t = max(int(st), last + 60)
            d = preferred_device if rng.random() < 0.85 else 1 - preferred_device
            for _ in range(size):
                ts.append(t)
                dev.append(DEVICES[d])
                last = t
                t += int(rng.integers(15, 300))
        return ts, dev


def make_ecommerce_log(
    *,
    n_users: int = 500,
    n_items: int = 200,
    n_clusters: int = 5,
    mean_length: int = 40,
    seed: int = 0,
    start: str = "2024-01-01",
    span_days: int = 91,
    p_successor: float = 0.65,
    p_cluster: float = 0.9,
    p_cart: float = 0.15,
    p_buy: float = 0.5,
    return_frame: bool = False,
):
    """A synthetic e-commerce event log with planted structure (see the module docstring).

    Returns an ``EventLog`` (item names set, ``device`` as a context column), or with
    ``return_frame=True`` the raw pandas frame with external string ids (``u0001``,
    ``i0001``) and columns ``user_id, item_id, timestamp`` (epoch seconds, UTC),
    ``behavior`` (view/cart/buy), ``value`` (the item's price) and ``device``, in
    chronological order (ties broken by user).
    """
    if n_users < 1 or mean_length < 3:
        raise ValueError("need n_users >= 1 and mean_length >= 3")
    cat = make_catalog(n_items=n_items, n_clusters=n_clusters, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    t0 = int(pd.Timestamp(start, tz="UTC").timestamp())
    start_dow = pd.Timestamp(start).day_of_week
    day_w, hour_w = _weekly_weights()
    days = np.arange(span_days)
    day_base = day_w[(start_dow + days) % 7]
    walker = _Walker(cat, rng, p_successor, p_cluster)
    uids = user_ids(n_users)

    cols: dict[str, list] = {C.USER: [], C.ITEM: [], C.TIME: [], C.BEHAVIOR: [], "device": []}
    clock = _Clock(t0, span_days, day_base, hour_w)
    for u in range(n_users):
        primary = int(rng.integers(n_clusters))
        secondary = int((primary + 1 + rng.integers(max(n_clusters - 1, 1))) % n_clusters) if n_clusters > 1 else 0
        max_drift = float(rng.uniform(0.0, 0.6))  # share of cluster picks from the secondary cluster at the end
        slope = float(rng.uniform(-0.9, 0.9))  # activity trend over the time span
        preferred_device = 0 if rng.random() < 0.65 else 1
        n_views = max(3, int(rng.poisson(mean_length / (1 + p_cart + p_cart * p_buy))))
        items, behav = _funnel_walk(walker, rng, n_views, (primary, secondary, max_drift), p_cart, p_buy)
        ts, dev = clock.sessions(rng, len(items), slope, preferred_device)
        cols[C.USER].extend([uids[u]] * len(items))
        cols[C.ITEM].extend(items)
        cols[C.TIME].extend(ts)
        cols[C.BEHAVIOR].extend(behav)
        cols["device"].extend(dev)

    pos = np.asarray(cols[C.ITEM], dtype=np.int64)
    df = pd.DataFrame(
        {
            C.USER: cols[C.USER],
            C.ITEM: np.asarray(cat.item_ids, dtype=object)[pos],
            C.TIME: np.asarray(cols[C.TIME], dtype=np.int64),
            C.BEHAVIOR: cols[C.BEHAVIOR],
            C.VALUE: cat.price[pos],
            "device": cols["device"],
        }
    )
    df = df.sort_values([C.TIME, C.USER], kind="stable").reset_index(drop=True)
    if return_frame:
        return df
    from chronorec.data.eventlog import EventLog

    names = dict(zip(cat.item_ids, cat.names, strict=False))
    source = (
        f"synthetic:ecommerce(n_users={n_users}, n_items={n_items}, n_clusters={n_clusters}, "
        f"mean_length={mean_length}, seed={seed})"
    )
    return EventLog.from_frame(df, item_names=names, context_columns=("device",), source=source)


def make_sequences(
    *,
    n_users: int = 500,
    n_items: int = 200,
    seed: int = 0,
    n_clusters: int = 5,
    mean_length: int = 20,
    p_successor: float = 0.65,
    p_cluster: float = 0.9,
    return_dict: bool = False,
):
    """Order-only variant: per-user item sequences (views only, no time, behaviour or funnels).

    Same catalogue and transition structure as ``make_ecommerce_log``. Returns an ``EventLog``
    whose timestamps are positions 0, 1, 2, ... (or ``{user_id: [item_id, ...]}`` with
    ``return_dict=True``).
    """
    cat = make_catalog(n_items=n_items, n_clusters=n_clusters, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    walker = _Walker(cat, rng, p_successor, p_cluster)
    seqs: dict[str, list[str]] = {}
    for uid in user_ids(n_users):
        primary = int(rng.integers(n_clusters))
        n = max(3, int(rng.poisson(mean_length)))
        seen: set[int] = set()
        prev: int | None = None
        out = []
        for _ in range(n):
            j = walker.next_item(prev, seen, primary, primary, 0.0)
            out.append(cat.item_ids[j])
            seen.add(j)
            prev = j
        seqs[uid] = out
    if return_dict:
        return seqs
    from chronorec.data.eventlog import EventLog

    return EventLog.from_sequences(
        seqs,
        item_names=dict(zip(cat.item_ids, cat.names, strict=False)),
        source=f"synthetic:sequences(n_users={n_users}, n_items={n_items}, seed={seed})",
    )
