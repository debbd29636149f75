"""Taobao-scale synthetic logs, generated in chunks straight to Parquet.

The shape of the Taobao UserBehavior set (user, item, category, behaviour ``pv`` / ``cart`` /
``fav`` / ``buy``, timestamps over 9 days from 2017-11-25), at any size: ``--events 100M --users 1M
--items 4M`` writes 100,000,000 events in ~50 Parquet files (``OUT/events/``) while holding one chunk in memory.

Planted structure (as in :mod:`chronorec.datasets.synthetic`, so quality stays checkable):

* **category clusters** — items are contiguous blocks, one block per category; every user has a
  primary and a secondary category and draws fresh items from them with probability
  ``p_category`` (popularity inside a category is skewed towards the block's first items);
* **item-to-item transitions** — every item has 3 planted successors (90 % in its own category,
  preferred with weights 0.6 / 0.25 / 0.15); after a ``pv`` the next page view is a successor of
  it with probability ``p_successor`` — the signal a sequence model should learn;
* **funnels** — with probability ``p_funnel`` an event repeats the item of the user's previous
  event as ``cart`` / ``fav`` / ``buy`` (a ``buy`` follows a ``cart`` half the time); the default
  mix is Taobao's (about 89.5 % pv, 5.5 % cart, 2.9 % fav, 2 % buy);
* **sessions** — gaps of 5-300 s inside a session, hours between sessions, each user's history
  squeezed into the 9 days; a user's timestamps never decrease.

Users are generated in blocks of :data:`BLOCK_USERS`, each from its own seed, so the output depends
on the seed and the sizes only, not on the chunk size. Memory is bounded by the chunk (plus the
catalogue: 12 bytes per item for the successors, 8 per user for the lengths).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from chronorec.budget import check_memory
from chronorec.errors import ConfigError

BEHAVIORS = ("pv", "cart", "fav", "buy")
PV, CART, FAV, BUY = range(4)
BLOCK_USERS = 1024
START = 1_511_568_000  # 2017-11-25 00:00 UTC, the first day of Taobao UserBehavior
DAY = 86_400
MARKER = "synth.json"
SUCCESSOR_WEIGHTS = np.array([0.6, 0.25, 0.15])
_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9}


def parse_count(text: str | int) -> int:
    """``"100M"`` -> 100_000_000; also ``4M``, ``1.5K``, ``250_000``, plain integers."""
    if isinstance(text, (int, np.integer)):
        return int(text)
    m = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([kKmMgGbB]?)\s*", str(text))
    if not m:
        raise ConfigError(f"not a count: {text!r}; write e.g. 100M, 4M, 250K or 1000000")
    value = float(m.group(1).replace("_", "")) * _SUFFIX[m.group(2).upper()]
    if value != int(value):
        raise ConfigError(f"not a whole count: {text!r}")
    return int(value)


@dataclass(frozen=True)
class TaobaoShape:
    """The sizes and knobs of one generated log (everything the output depends on)."""

    n_events: int
    n_users: int
    n_items: int
    n_categories: int = 0  # 0: one category per 400 items (Taobao: ~9,400 categories for 4.2M items)
    seed: int = 0
    span_days: int = 9
    p_successor: float = 0.6
    p_category: float = 0.9
    p_funnel: float = 0.104
    item_skew: float = 2.5  # popularity inside a category: offset = size * u ** item_skew

    def __post_init__(self) -> None:
        if self.n_users < 1 or self.n_items < 2:
            raise ConfigError(f"need at least 1 user and 2 items (got {self.n_users} users, {self.n_items} items)")
        if self.n_events < self.n_users:
            raise ConfigError(f"--events ({self.n_events}) must be at least --users ({self.n_users}): "
                              "every user has one event or more")  # fmt: skip
        if not 1 <= self.categories <= self.n_items // 2:
            raise ConfigError(f"need 1 <= categories <= items / 2 (got {self.categories} for {self.n_items} items)")
        if not 0 <= self.p_successor + self.p_funnel <= 1:
            raise ConfigError("need p_successor + p_funnel <= 1")

    def peak_bytes(self, chunk_events: int) -> float:
        """Peak memory of :func:`write_taobao`, measured: about 64 bytes per item (catalogue tables),
        32 per user and 100 per event of a chunk, over 0.5 GB of imports."""
        return 0.5 * 1024**3 + 64.0 * self.n_items + 32.0 * self.n_users + 100.0 * chunk_events

    @property
    def categories(self) -> int:
        return self.n_categories or max(1, min(self.n_items // 400, 10_000) or 1)


class LargeCatalog:
    """Categories (contiguous item blocks), their popularity and the planted successors (0-based)."""

    def __init__(self, shape: TaobaoShape):
        n, k = shape.n_items, shape.categories
        self.n_items, self.n_categories, self.skew = n, k, shape.item_skew
        rng = np.random.default_rng(np.random.SeedSequence([shape.seed, 1]))
        self.cat_start = (
            np.arange(k + 1, dtype=np.int64) * n + k - 1
        ) // k  # item j in c iff start[c] <= j < start[c+1]
        size = np.diff(self.cat_start)
        w = 1.0 / (rng.permutation(k) + 1.0) ** 0.8
        self.cat_cdf = np.cumsum(w / w.sum())
        items = np.arange(n, dtype=np.int64)
        cats = self.category(items)
        succ = np.empty((n, 3), dtype=np.int32)
        for s in range(3):
            own = self.cat_start[cats] + (rng.random(n) * size[cats]).astype(np.int64)
            anywhere = rng.integers(0, n, size=n)
            pick = np.where(rng.random(n) < 0.9, own, anywhere)
            pick = np.where(pick == items, (pick + 1 - self.cat_start[cats]) % size[cats] + self.cat_start[cats], pick)
            succ[:, s] = pick
        self.successors = succ

    def category(self, items: np.ndarray) -> np.ndarray:
        """0-based category of 0-based items."""
        return (np.asarray(items, dtype=np.int64) * self.n_categories) // self.n_items

    def draw_categories(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self.cat_cdf, rng.random(n)), self.n_categories - 1)

    def draw_items(self, rng: np.random.Generator, cats: np.ndarray) -> np.ndarray:
        """A popular item of each category (skewed to the block's first items)."""
        size = self.cat_start[cats + 1] - self.cat_start[cats]
        off = np.floor(size * rng.random(len(cats)) ** self.skew).astype(np.int64)
        return self.cat_start[cats] + np.minimum(off, size - 1)


def user_lengths(shape: TaobaoShape) -> np.ndarray:
    """Events per user: 1 + a multinomial share of the rest, heavy-tailed (log-normal weights); sums to n_events."""
    rng = np.random.default_rng(np.random.SeedSequence([shape.seed, 3]))
    w = rng.lognormal(0.0, 1.0, shape.n_users)
    return 1 + rng.multinomial(shape.n_events - shape.n_users, w / w.sum()).astype(np.int64)


def _chain(kind: np.ndarray, items: np.ndarray, beh: np.ndarray, succ_choice: np.ndarray, cat: LargeCatalog, r):
    """Fill successor (kind 1) and funnel (kind 2) events from the event before them, run step by run step."""
    n = len(kind)
    idx = np.arange(n)
    last_fresh = np.maximum.accumulate(np.where(kind == 0, idx, 0))
    step = idx - last_fresh
    order = np.argsort(step, kind="stable")
    bounds = np.searchsorted(step[order], np.arange(1, int(step.max(initial=0)) + 2))
    for s in range(len(bounds) - 1):
        pos = order[bounds[s] : bounds[s + 1]]
        prev = items[pos - 1]
        is_succ = kind[pos] == 1
        items[pos] = np.where(is_succ, cat.successors[prev, succ_choice[pos]], prev)
        # a funnel event: buy after a cart half the time, else cart / fav / buy at Taobao's mix
        after_cart = (beh[pos - 1] == CART) & (r[pos] < 0.5)
        funnel = np.where(after_cart, BUY, np.searchsorted([0.53, 0.81], r[pos] % 0.5 * 2) + 1)
        beh[pos] = np.where(is_succ, PV, funnel)


def _block_times(rng: np.random.Generator, starts: np.ndarray, lens: np.ndarray, kind: np.ndarray, span_days: int):
    n = len(kind)
    new_session = rng.random(n) < 0.15
    gap = np.where(new_session, rng.exponential(6 * 3600, n), rng.integers(5, 300, n)).astype(np.float64)
    gap[kind == 2] = rng.integers(10, 120, int((kind == 2).sum()))
    gap[starts] = 0.0
    cs = np.cumsum(gap)
    cs -= np.repeat(cs[starts], lens)
    span = cs[starts + lens - 1]
    limit = 0.97 * span_days * DAY
    factor = np.where(span > limit, limit / np.maximum(span, 1.0), 1.0)
    t = np.floor(cs * np.repeat(factor, lens)).astype(np.int64)
    first = rng.random(len(lens)) * (span_days * DAY - np.minimum(span, limit))
    return START + np.repeat(first.astype(np.int64), lens) + t


def generate_block(shape: TaobaoShape, cat: LargeCatalog, lengths: np.ndarray, block: int) -> dict[str, np.ndarray]:
    """The events of users ``block * BLOCK_USERS ...`` (1-based external ids), sorted by user and time."""
    rng = np.random.default_rng(np.random.SeedSequence([shape.seed, 2, block]))
    u0 = block * BLOCK_USERS
    lens = lengths[u0 : u0 + BLOCK_USERS]
    nu, n = len(lens), int(lens.sum())
    starts = np.zeros(nu, dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    user = np.repeat(np.arange(u0, u0 + nu, dtype=np.int64), lens)
    primary = np.repeat(cat.draw_categories(rng, nu), lens)
    secondary = np.repeat(cat.draw_categories(rng, nu), lens)
    r = rng.random(n)
    kind = np.where(r < shape.p_funnel, 2, np.where(r < shape.p_funnel + shape.p_successor, 1, 0))
    kind[starts] = 0
    own = np.where(rng.random(n) < 0.7, primary, secondary)
    fresh_cat = np.where(rng.random(n) < shape.p_category, own, cat.draw_categories(rng, n))
    items = cat.draw_items(rng, fresh_cat)
    beh = np.zeros(n, dtype=np.int8)
    succ_choice = np.searchsorted(np.cumsum(SUCCESSOR_WEIGHTS)[:-1], rng.random(n), side="right")
    _chain(kind, items, beh, succ_choice, cat, rng.random(n))
    ts = _block_times(rng, starts, lens, kind, shape.span_days)
    return {
        "user_id": user + 1,
        "item_id": items + 1,
        "category_id": cat.category(items) + 1,
        "behavior": beh,
        "timestamp": ts,
    }


def _to_table(cols: dict[str, np.ndarray]):
    import pyarrow as pa

    behavior = pa.DictionaryArray.from_arrays(pa.array(cols["behavior"], pa.int8()), pa.array(BEHAVIORS))
    return pa.table(
        {
            "user_id": cols["user_id"],
            "item_id": cols["item_id"],
            "category_id": cols["category_id"],
            "behavior": behavior,
            "timestamp": cols["timestamp"],
        }
    )


def iter_chunks(shape: TaobaoShape, chunk_events: int = 2_000_000) -> Iterator[dict[str, np.ndarray]]:
    """The log as column chunks of about ``chunk_events`` events (whole blocks of users each)."""
    cat = LargeCatalog(shape)
    lengths = user_lengths(shape)
    n_blocks = math.ceil(shape.n_users / BLOCK_USERS)
    parts: list[dict[str, np.ndarray]] = []
    rows = 0
    for b in range(n_blocks):
        parts.append(generate_block(shape, cat, lengths, b))
        rows += len(parts[-1]["user_id"])
        if rows >= chunk_events or b == n_blocks - 1:
            yield {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            parts, rows = [], 0


def write_taobao(
    shape: TaobaoShape, out: str | Path, *, chunk_events: int = 2_000_000, items_file: bool = True
) -> dict:
    """Write the log to ``out/events/part-NNNNN.parquet`` (one file per chunk), ``items.parquet`` (item,
    category, planted successors) and ``synth.json`` (the shape, counts, files); atomic as a folder.
    Returns the ``synth.json`` content."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from chronorec.artifacts import atomic_dir

    check_memory(
        shape.peak_bytes(chunk_events),
        f"a synthetic log of {shape.n_items:,} items, {shape.n_users:,} users and {chunk_events:,}-event chunks",
        "lower --items, --users or --chunk-events",
    )
    counts = np.zeros(len(BEHAVIORS), dtype=np.int64)
    files, n = [], 0
    with atomic_dir(Path(out), marker=MARKER) as d:
        for i, chunk in enumerate(iter_chunks(shape, chunk_events)):
            name = f"events/part-{i:05d}.parquet"
            (d / "events").mkdir(exist_ok=True)
            pq.write_table(_to_table(chunk), d / name, row_group_size=1 << 20, compression="zstd")
            counts += np.bincount(chunk["behavior"], minlength=len(BEHAVIORS))
            n += len(chunk["user_id"])
            files.append(name)
            del chunk
        if items_file:
            cat = LargeCatalog(shape)
            ids = np.arange(1, shape.n_items + 1, dtype=np.int64)
            table = {"item_id": ids, "category_id": cat.category(ids - 1) + 1}
            table |= {f"successor_{s + 1}": cat.successors[:, s].astype(np.int64) + 1 for s in range(3)}
            pq.write_table(pa.table(table), d / "items.parquet", compression="zstd")
        meta = {
            "shape": asdict(shape) | {"n_categories": shape.categories},
            "n_events": n,
            "behaviors": dict(zip(BEHAVIORS, counts.tolist(), strict=True)),
            "start": START,
            "files": files,
            "items_file": "items.parquet" if items_file else None,
            "columns": ["user_id", "item_id", "category_id", "behavior", "timestamp"],
        }
        (d / MARKER).write_text(json.dumps(meta, indent=2))
    if n != shape.n_events:  # pragma: no cover - internal consistency guard
        raise AssertionError(f"generated {n} events, asked for {shape.n_events}")
    return meta


__all__ = ["BEHAVIORS", "LargeCatalog", "TaobaoShape", "iter_chunks", "parse_count", "user_lengths", "write_taobao"]
