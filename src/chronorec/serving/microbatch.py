"""Dynamic micro-batching of ``/recommend``: concurrent requests scored together in one forward pass.

As Triton's and TorchServe's dynamic batchers do, requests wait in a bounded queue and one worker
thread takes them in batches: a batch starts when it holds ``max_batch`` requests or when its
oldest request has waited ``max_wait_s``, whichever comes first (requests that queued while the
previous batch was scored have usually waited that long already, so under load batches form
without any added wait). The rest of a request (ids, live events, the response) stays on the event
loop, which awaits the batch (:meth:`BatchedRanker.rank`): no thread per request waits on it.

Nothing here knows of HTTP: a request refused for load raises :class:`Overloaded` (with the seconds
to wait in ``retry_after_s``), which the service's entrance answers (503 with ``Retry-After``).

* :class:`MicroBatcher` -- the generic queue and worker: ``batcher(item)`` blocks until the
  batch holding ``item`` is done and returns its result. A batch function that fails is run
  again one item at a time, so the error of one request reaches that request only. A full queue
  raises :class:`Overloaded`.
* :class:`BatchedRanker` -- the service's one way to rank a request: :meth:`~BatchedRanker.admitted`
  bounds the requests in flight (the one admission decision: :class:`Overloaded` beyond
  ``max_queue``, instead of letting latency grow without limit), and :meth:`~BatchedRanker.rank`
  ranks a request with those queued beside it. A batch is grouped by the requests' options and by
  history width where the model pads a forward pass to its longest history (the model's
  ``max_history_width``; :func:`width_groups`), so every list is the one the unbatched pipeline gives.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from chronorec.errors import ChronorecError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

OVERLOADED = "overloaded: the service has more requests in flight than its queue holds; retry shortly"


class Overloaded(ChronorecError):
    """More requests in flight or queued than the bound; ``retry_after_s``: seconds to wait before retrying."""

    def __init__(self, message: str = OVERLOADED, retry_after_s: int = 1):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class BatchStats:
    """What the worker did: batches by size and by what started them (tests and /health read it)."""

    batches: int = 0
    items: int = 0
    sizes: Counter = field(default_factory=Counter)
    started_by: Counter = field(default_factory=Counter)  # "full", "wait" (the bound) or "none coming"
    rejected: int = 0
    retried_alone: int = 0  # batches whose function failed and were run again item by item

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "items": self.items,
            "mean_batch": round(self.items / self.batches, 3) if self.batches else 0.0,
            "max_batch_seen": max(self.sizes, default=0),
            "started_by": dict(self.started_by),
            "rejected": self.rejected,
            "retried_alone": self.retried_alone,
        }


@dataclass
class _Job(Generic[T]):
    item: T
    future: Future
    queued: float


class MicroBatcher(Generic[T, R]):
    """A bounded queue served in batches by one worker thread (see the module docstring).

    Args:
        fn: scores a batch: ``fn(items) -> results`` (one per item, in order); a result that is an
            exception is raised in that item's caller only.
        max_batch: most items per call of ``fn``.
        max_wait_s: longest time the oldest queued item waits for the batch to fill.
        max_queue: most items waiting; one more raises :class:`Overloaded`.
        coming: how many items are known to be on their way (e.g. requests admitted but not yet
            queued); when given, a batch waits only while some are, so a lone request is not held
            for ``max_wait_s`` (without it, every batch waits up to the bound, as Triton's does).
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.002,
        max_queue: int = 256,
        name: str = "chronorec-batcher",
        coming: Callable[[], int] | None = None,
    ):
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_s >= 0")
        self.fn, self.max_batch, self.max_wait_s, self.max_queue = fn, max_batch, max_wait_s, max_queue
        self.coming = coming
        self.stats = BatchStats()
        self._queue: deque[_Job[T]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False  # the worker is ranking a batch
        self._seconds_per_batch = 0.0  # running mean, for Retry-After
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self._queue)

    def idle(self) -> bool:
        """Nothing queued and no batch being ranked."""
        return not self._queue and not self._busy

    def submit(self, item: T) -> Future:
        """Queue ``item``; the future holds its result. Raises :class:`Overloaded` when the queue is full."""
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if len(self._queue) >= self.max_queue:
                self.stats.rejected += 1
                raise Overloaded(OVERLOADED, self.retry_after_s())
            self._queue.append(_Job(item, fut, time.monotonic()))
            self._cond.notify()
        return fut

    def __call__(self, item: T) -> R:
        """The result of ``item``, once the batch holding it is done."""
        return self.submit(item).result()

    def retry_after_s(self) -> int:
        """Seconds a rejected client should wait: the time to work off the queue, at least 1."""
        batches = math.ceil(max(len(self._queue), 1) / self.max_batch)
        return max(1, math.ceil(batches * self._seconds_per_batch))

    def close(self, timeout: float | None = 5.0) -> None:
        """Finish the queued items, then stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # ---------------------------------------------------------------- worker
    def _take(self) -> tuple[list[_Job[T]], str] | None:
        """The next batch (None once closed and drained): waits for the first item, then until the
        batch is full, its oldest item has waited ``max_wait_s`` or (with ``coming``) no more are coming."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = self._queue[0].queued + self.max_wait_s
            reason = "full"
            while len(self._queue) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    reason = "wait"
                    break
                if self.coming is not None:
                    if self.coming() <= 0:
                        reason = "none coming"
                        break
                    left = min(left, 0.0002)  # arrivals notify; the count of those coming does not
                self._cond.wait(left)
            n = min(self.max_batch, len(self._queue))
            taken = [self._queue.popleft() for _ in range(n)]
            # futures cancelled while queued (their client went away) are dropped; the rest are marked running,
            # so that they can no longer be cancelled
            jobs = [j for j in taken if j.future.set_running_or_notify_cancel()]
            self._busy = bool(jobs)
        return jobs, "full" if n == self.max_batch else reason

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            jobs, reason = taken
            if not jobs:
                continue
            t0 = time.perf_counter()
            results = self._results([j.item for j in jobs])
            self._seconds_per_batch = 0.9 * self._seconds_per_batch + 0.1 * (time.perf_counter() - t0)
            s = self.stats
            s.batches, s.items = s.batches + 1, s.items + len(jobs)
            s.sizes[len(jobs)] += 1
            s.started_by[reason] += 1
            self._busy = False
            for job, res in zip(jobs, results, strict=True):
                if isinstance(res, BaseException):
                    job.future.set_exception(res)
                else:
                    job.future.set_result(res)

    def _results(self, items: list[T]) -> list[Any]:
        """``fn`` over the batch; if it fails (or answers the wrong number of results), item by item."""
        try:
            out = list(self.fn(items))
            if len(out) == len(items):
                return out
            raise RuntimeError(f"the batch function gave {len(out)} results for {len(items)} items")
        except Exception as err:  # noqa: BLE001 - isolated below: each item gets its own answer
            if len(items) == 1:
                return [err]
            logger.debug("batch of %d failed (%s); scoring its items one by one", len(items), err)
        self.stats.retried_alone += 1
        out = []
        for item in items:
            try:
                out.append(self.fn([item])[0])
            except Exception as err:  # noqa: BLE001 - this item's error, raised in its caller
                out.append(err)
        return out


# ============================================================================ ranking
@dataclass
class RankRow:
    """One request's row of :meth:`RecommendPipeline.rank`."""

    user: int
    history: Any  # HistoryEvents or an array of internal items
    options: Any  # RecommendOptions (or a request that extends it)
    context: Mapping[str, Any] | None
    group: str  # requests with the same options are ranked in one call


def _options_key(options: Any) -> str:
    """Requests whose list options are equal share one pipeline call."""
    if options is None:
        return ""
    from chronorec.recommend.options import RecommendOptions

    return options.model_dump_json(include=set(RecommendOptions.model_fields))


CALL_COST = 100
"""Fixed cost of one more forward pass, in padded history positions (about 0.5 ms of 0.0075 ms each for an
ML-1M SASRec on one CPU core): :func:`width_groups` splits a batch only where padding costs more."""


def width_groups(widths: Sequence[int], call_cost: int = CALL_COST) -> list[list[int]]:
    """Rows (indices into ``widths``) split into forward passes of similar widths, by least total cost.

    A pass costs ``call_cost`` plus its rows times its widest row (every row is padded to it); rows are
    taken in order of width and cut where that total is least (exact, O(n^2) for n rows).
    """
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    w = [widths[i] for i in order]
    n = len(w)
    best = [0.0] + [float("inf")] * n  # best[j]: least cost of the j narrowest rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):  # rows i..j-1 in one pass, padded to w[j - 1]
            c = best[i] + call_cost + (j - i) * w[j - 1]
            if c < best[j]:
                best[j], cut[j] = c, i
    groups = []
    j = n
    while j > 0:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


class BatchedRanker:
    """The ranking of single requests through a :class:`MicroBatcher` (``max_batch`` 1: one at a time).

    Args:
        pipeline: the :class:`~chronorec.recommend.pipeline.RecommendPipeline` that ranks.
        max_batch, max_wait_s, max_queue: see :class:`MicroBatcher`; ``max_queue`` also bounds the
            requests :meth:`admitted` lets in at once.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.002,
        max_queue: int = 256,
        call_cost: int = CALL_COST,
    ):
        self.pipeline, self.call_cost = pipeline, call_cost
        self.max_batch, self.max_queue = max_batch, max_queue
        self.in_flight = 0  # admitted and not answered yet
        self.submitted = 0  # of those, in the batcher (queued, being ranked, or just ranked)
        self._count_lock = threading.Lock()
        self.rejected = 0
        self.alone = 0  # requests ranked where they were (the only one in flight, the batcher idle)
        # sequence models pad a forward pass to its longest history: group the batch by width
        self._width_cap: int | None = pipeline.model.max_history_width
        self.batcher: MicroBatcher = MicroBatcher(
            self._rank_rows,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            max_queue=max_queue,
            coming=lambda: self.in_flight - self.submitted,  # admitted requests still being prepared
        )

    @classmethod
    def from_settings(cls, pipeline: Any, settings: Any) -> BatchedRanker:
        """From a :class:`~chronorec.settings.ServeSettings` (its batching fields)."""
        return cls(
            pipeline,
            max_batch=settings.max_batch,
            max_wait_s=settings.max_wait_ms / 1000,
            max_queue=settings.max_queue,
        )

    # ---------------------------------------------------------------- admission
    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Count a request in flight while the block runs, or raise :class:`Overloaded` when ``max_queue``
        are already in flight. Call from the event loop, around all of a request's work: the batch worker
        waits for admitted requests still being prepared (``coming``)."""
        if self.in_flight >= self.max_queue:
            self.rejected += 1
            raise Overloaded(OVERLOADED, self.batcher.retry_after_s())
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    # ---------------------------------------------------------------- ranking
    async def rank(self, user: int, history: Any, options: Any, context: Mapping[str, Any] | None = None) -> Any:
        """One admitted request's list, from the event loop: through the batcher, whose worker ranks it
        with the requests queued beside it, or right here when it is the only request admitted and the
        batcher is idle (sparing a lone request the hand-over to the worker and back)."""
        import asyncio

        if self._alone():
            await asyncio.sleep(0)  # requests already received run up to here first: are there any?
        if self._alone():
            self.alone += 1
            return self.pipeline.rank(np.array([user], np.int64), [history], options, contexts=[context])[0]
        row = self._row(user, history, options, context)  # before it counts as submitted: see ``coming``
        with self._count_lock:
            self.submitted += 1
        try:
            return await asyncio.wrap_future(self.batcher.submit(row))
        except Overloaded:
            self.rejected += 1
            raise
        finally:
            with self._count_lock:
                self.submitted -= 1

    def submit(self, user: int, history: Any, options: Any, context: Mapping[str, Any] | None = None) -> Future:
        """Queue one request on the batch worker; the future holds its list (:class:`Overloaded` when the
        batcher's queue is full)."""
        return self.batcher.submit(self._row(user, history, options, context))

    @staticmethod
    def _row(user: int, history: Any, options: Any, context: Mapping[str, Any] | None) -> RankRow:
        return RankRow(int(user), history, options, context, _options_key(options))

    def _alone(self) -> bool:
        """The only request admitted, and the batcher idle (and able to take it): rank it where it is."""
        return self.in_flight == 1 and self.batcher.idle() and self.batcher.max_queue > 0

    def _rank_rows(self, rows: list[RankRow]) -> list[Any]:
        """Rank a batch: pipeline calls by options and, for sequence models, by history width; results in order."""
        by_options: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            by_options.setdefault(r.group, []).append(i)
        calls = []
        for idx in by_options.values():
            if not self._width_cap:
                calls.append(idx)
                continue
            widths = [max(1, min(len(rows[i].history), self._width_cap)) for i in idx]
            calls += [[idx[j] for j in g] for g in width_groups(widths, self.call_cost)]
        out: list[Any] = [None] * len(rows)
        for idx in calls:
            part = [rows[i] for i in idx]
            ranked = self.pipeline.rank(
                np.array([r.user for r in part], np.int64),
                [r.history for r in part],
                part[0].options,
                contexts=[r.context for r in part],
            )
            for i, res in zip(idx, ranked, strict=True):
                out[i] = res
        return out

    def stats(self) -> dict[str, Any]:
        """Batches, their sizes, what started them, and the requests refused as :class:`Overloaded`."""
        base = self.batcher.stats.as_dict()
        return {
            **base,
            "max_batch": self.max_batch,
            "in_flight": self.in_flight,
            "rejected": self.rejected,
            "ranked_alone": self.alone,
        }

    def close(self) -> None:
        self.batcher.close()


__all__ = ["OVERLOADED", "BatchStats", "BatchedRanker", "MicroBatcher", "Overloaded", "RankRow", "width_groups"]
