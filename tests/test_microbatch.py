"""Dynamic micro-batching of /recommend: batched lists equal the unbatched pipeline's, one failing
request does not fail its batch, a full queue is Overloaded (a 503 with Retry-After from the service),
and a batch starts when it is full or when its oldest request has waited the bound (asserted on
counts, not on timings)."""

from __future__ import annotations

import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from chronorec.datasets.synthetic import make_sequences
from chronorec.models.sequential.sasrec import SASRec
from chronorec.recommend import HistoryEvents, RecommendOptions, RecommendPipeline
from chronorec.serving.microbatch import BatchedRanker, MicroBatcher, Overloaded, width_groups

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def model():
    log = make_sequences(n_users=40, n_items=30, seed=0, mean_length=12)
    return SASRec(max_len=16, dim=16, layers=1, epochs=1, batch_size=32, progress=False, seed=0).fit(log)


class Gated:
    """A pipeline whose first ``rank`` waits for the gate: requests pile up in the queue meanwhile."""

    def __init__(self, pipe, fail_user: int | None = None):
        self.pipe, self.model = pipe, pipe.model
        self.gate = threading.Event()
        self.fail_user = fail_user
        self.calls: list[int] = []
        self.entered = threading.Event()

    def rank(self, users, histories, options=None, *, contexts=None):
        self.entered.set()
        self.gate.wait(10)
        self.calls.append(len(histories))
        if self.fail_user is not None and self.fail_user in np.asarray(users).tolist():
            raise ValueError("this request cannot be scored")
        return self.pipe.rank(users, histories, options, contexts=contexts)


def wait_for(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for the queue"
        time.sleep(0.002)


def requests(model, n: int):
    """``n`` requests: known users, explicit histories of several widths, an empty history; two option sets."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        user = i % model.users.size + 1 if i % 3 else 0
        hist = model.store.user_items(user) if user else rng.integers(1, model.n_items + 1, size=i % 20)
        opts = RecommendOptions(k=5, explain=True) if i % 2 else RecommendOptions(k=3)
        out.append((user, np.asarray(hist, np.int64), opts))
    return out


def fire(ranker, reqs, gated=None):
    """All requests from their own threads; their futures in order (an exception where one failed). With
    ``gated``, the first request goes alone and is held at the gate while the others queue behind it."""

    def one(r):
        user, hist, opts = r
        try:
            return ranker.submit(user, HistoryEvents(hist), opts, None).result(timeout=10)
        except Exception as err:  # noqa: BLE001 - returned for the test to inspect
            return err

    pool = ThreadPoolExecutor(len(reqs))
    futures = [pool.submit(one, reqs[0])]
    if gated is not None:
        wait_for(gated.entered.is_set)
    futures += [pool.submit(one, r) for r in reqs[1:]]
    if gated is not None:
        wait_for(lambda: len(ranker.batcher) == len(reqs) - 1)
        gated.gate.set()
    return pool, futures


def same_list(a, b) -> None:
    assert a.items.tolist() == b.items.tolist()
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-9)
    assert a.strategy == b.strategy
    assert a.explanations == b.explanations
    assert a.warnings == b.warnings


def test_concurrent_batched_lists_equal_sequential_unbatched_calls(model):
    pipe = RecommendPipeline(model)
    reqs = requests(model, 24)
    expected = [pipe.rank(np.array([u]), [HistoryEvents(h)], o, contexts=[None])[0] for u, h, o in reqs]
    gated = Gated(pipe)
    ranker = BatchedRanker(gated, max_batch=8, max_wait_s=0.05, max_queue=64)
    pool, futures = fire(ranker, reqs, gated)
    got = [f.result(timeout=10) for f in futures]
    pool.shutdown()
    for g, e in zip(got, expected, strict=True):
        same_list(g, e)
    stats = ranker.batcher.stats
    assert stats.items == 24 and stats.batches == 4  # the first alone, then 23 queued: 8 + 8 + 7
    assert sorted(stats.sizes.elements()) == [1, 7, 8, 8]
    assert stats.started_by["full"] == 2
    # each batch is split by options and history width: more pipeline calls than batches, none above 8
    assert len(gated.calls) > stats.batches and max(gated.calls) <= 8 and sum(gated.calls) == 24
    ranker.close()


def test_a_failing_request_does_not_fail_its_batch(model):
    pipe = RecommendPipeline(model)
    reqs = [(u, model.store.user_items(u), RecommendOptions(k=4)) for u in (1, 2, 3, 4, 5)]
    gated = Gated(pipe, fail_user=3)
    ranker = BatchedRanker(gated, max_batch=8, max_wait_s=0.05)
    reqs = [reqs[1], *reqs]  # the first goes alone: the next five share a batch
    pool, futures = fire(ranker, reqs, gated)
    got = [f.result(timeout=10) for f in futures]
    pool.shutdown()
    for (u, h, o), g in zip(reqs, got, strict=True):
        if u == 3:
            assert isinstance(g, ValueError)
        else:
            same_list(g, pipe.rank(np.array([u]), [HistoryEvents(h)], o, contexts=[None])[0])
    assert ranker.batcher.stats.retried_alone >= 1
    ranker.close()


def test_full_queue_is_refused():
    gate = threading.Event()
    b = MicroBatcher(lambda items: (gate.wait(10), items)[1], max_batch=2, max_wait_s=0.0, max_queue=2)
    first = b.submit("a")
    wait_for(lambda: len(b) == 0)  # taken by the worker, waiting at the gate
    queued = [b.submit("b"), b.submit("c")]
    with pytest.raises(Overloaded):
        b.submit("d")
    assert b.stats.rejected == 1 and b.retry_after_s() >= 1
    gate.set()
    assert [f.result(timeout=10) for f in [first, *queued]] == ["a", "b", "c"]
    b.close()


def test_a_batch_starts_when_full_or_when_its_oldest_request_has_waited_the_bound():
    gate = threading.Event()
    seen: list[list[int]] = []

    def fn(items):
        gate.wait(10)
        seen.append(list(items))
        return [x * 10 for x in items]

    b = MicroBatcher(fn, max_batch=2, max_wait_s=0.01, max_queue=16)
    futures = [b.submit(0)]
    wait_for(lambda: len(b) == 0)  # taken alone after its bounded wait: the worker is at the gate
    futures += [b.submit(i) for i in (1, 2, 3, 4, 5)]
    gate.set()
    assert [f.result(timeout=10) for f in futures] == [0, 10, 20, 30, 40, 50]
    assert seen == [[0], [1, 2], [3, 4], [5]]  # in arrival order, never above max_batch
    assert b.stats.started_by == {"wait": 2, "full": 2}  # [0] and [5] did not wait for a full batch
    # a lone request far below max_batch is answered: its wait is bounded, not "until 64 arrive"
    b2 = MicroBatcher(lambda items: items, max_batch=64, max_wait_s=0.01)
    assert b2("x") == "x"
    assert b2.stats.sizes == {1: 1} and b2.stats.started_by == {"wait": 1}
    # told that nothing else is on its way, a batch does not wait at all (a minute's bound is not reached)
    b3 = MicroBatcher(lambda items: items, max_batch=64, max_wait_s=60.0, coming=lambda: 0)
    assert b3.submit("y").result(timeout=10) == "y"
    assert b3.stats.started_by == {"none coming": 1}
    b3.close()
    b.close()
    b2.close()


def test_max_batch_one_ranks_one_at_a_time_and_widths_are_grouped(model):
    pipe = RecommendPipeline(model)
    ranker = BatchedRanker(pipe, max_batch=1)
    h = model.store.user_items(1)
    same_list(ranker.submit(1, HistoryEvents(h), None).result(timeout=10), pipe.rank(np.array([1]), [h])[0])
    assert ranker.batcher.stats.sizes == {1: 1}
    ranker.close()
    # one pass pads every row to its widest: split where the padding costs more than another pass
    assert width_groups([200, 10, 190, 12], call_cost=100) == [[1, 3], [2, 0]]
    assert width_groups([200, 10, 190, 12], call_cost=10_000) == [[1, 3, 2, 0]]
    assert sorted(sum(width_groups([7, 3, 200, 50, 60, 3]), [])) == [0, 1, 2, 3, 4, 5]  # every row once


def test_the_service_answers_503_with_retry_after_when_overloaded(model, tmp_path):
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from chronorec.serving.app import create_app

    d = tmp_path / "m"
    model.save(d)
    with TestClient(create_app(d, state_dir=tmp_path / "state", max_batch=4, max_queue=3)) as c:
        ranker = c.app.state.service.ranker
        body = {"user_id": str(model.users.external_ids[0]), "k": 3}
        ok = c.post("/recommend", json=body)
        assert ok.status_code == 200 and len(ok.json()["items"]) == 3
        ranker.in_flight = 3  # as if three requests were being scored
        r = c.post("/recommend", json=body)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and "overloaded" in r.json()["error"]
        ranker.in_flight = 0
        ranker.batcher.max_queue = 0  # the batcher's own queue bound answers the same way
        assert c.post("/recommend", json=body).status_code == 503
        ranker.batcher.max_queue = 3
        assert c.post("/recommend", json=body).json()["items"] == ok.json()["items"]
        assert ranker.stats()["rejected"] == 2


def test_the_batch_path_scores_by_history_length_and_answers_in_the_given_order(model):
    from chronorec.cli.recommend import by_history_length

    pipe = RecommendPipeline(model)
    ids = list(model.users.external_ids[::-1]) + ["nobody"]  # longest and shortest histories interleaved
    opts = RecommendOptions(k=4)
    labels, lists = by_history_length(pipe, ids, options=opts)
    ref_labels, ref_lists = pipe.recommend_lists(ids, options=opts)
    assert labels == ref_labels == ids
    for a, b in zip(lists, ref_lists, strict=True):
        same_list(a, b)


def test_a_lone_admitted_request_is_ranked_where_it_is(model, tmp_path):
    """With nothing else in flight and the batcher idle, a request skips the hand-over to the batch
    worker (and back); its list is the batched one's. Past ``max_queue`` in flight: Overloaded."""
    import asyncio

    ranker = BatchedRanker(RecommendPipeline(model), max_batch=8, max_wait_s=0.001, max_queue=2)
    user = 1
    hist = HistoryEvents(model.store.user_items(user))
    opts = RecommendOptions(k=5)

    async def one():
        with ranker.admitted():
            return await ranker.rank(user, hist, opts)

    batched = ranker.submit(user, hist, opts).result(timeout=10)  # not admitted: through the batcher
    assert ranker.stats()["ranked_alone"] == 0 and ranker.batcher.stats.batches == 1
    alone = asyncio.run(one())  # the only request admitted: ranked where it is
    assert ranker.stats()["ranked_alone"] == 1 and ranker.batcher.stats.batches == 1
    same_list(alone, batched)
    ranker.in_flight = 2  # as if two requests were being scored
    with pytest.raises(Overloaded) as refused:
        asyncio.run(one())
    assert refused.value.retry_after_s >= 1 and ranker.stats()["rejected"] == 1
    ranker.in_flight = 0
    ranker.close()


def test_concurrent_requests_through_the_app_are_ranked_together_and_a_lone_one_alone(model, tmp_path):
    """The event loop prepares each request and awaits the batch worker: requests that arrive together
    are ranked in shared batches (not one by one on the loop), a request alone is ranked where it is,
    and every answer is the unbatched pipeline's list in the documented response schema."""
    import asyncio

    pytest.importorskip("fastapi")
    import httpx

    from chronorec.serving.app import create_app
    from chronorec.serving.schemas import RecommendResponse

    d = tmp_path / "m"
    model.save(d)
    app = create_app(d, state_dir=tmp_path / "state", max_batch=16, max_wait_ms=50)
    ranker = app.state.service.ranker
    users = [str(u) for u in model.users.external_ids[:24]]
    pipe = RecommendPipeline(model)
    want = {u: pipe.recommend([u], options=RecommendOptions(k=4))["item_id"].tolist() for u in users}

    async def post_all(ids):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            return await asyncio.gather(*(c.post("/recommend", json={"user_id": u, "k": 4}) for u in ids))

    answers = asyncio.run(post_all(users))
    stats = ranker.stats()
    assert stats["ranked_alone"] == 0 and stats["items"] == len(users)
    assert stats["batches"] < len(users) and stats["max_batch_seen"] > 1  # ranked together
    for u, r in zip(users, answers, strict=True):
        assert r.status_code == 200
        body = RecommendResponse.model_validate_json(r.content)
        assert [x.item_id for x in body.items] == want[u] and body.user_id == u
    (lone,) = asyncio.run(post_all(users[:1]))
    assert ranker.stats()["ranked_alone"] == 1 and ranker.stats()["items"] == len(users)
    assert [x["item_id"] for x in lone.json()["items"]] == want[users[0]]
    ranker.close()


def test_a_request_cancelled_while_queued_does_not_stop_the_worker():
    """A client that goes away while its request waits (the event loop cancels the awaiting task,
    which cancels the queued future) leaves the worker serving: the cancelled item is dropped."""
    gate = threading.Event()
    b = MicroBatcher(lambda items: (gate.wait(10), [x * 10 for x in items])[1], max_batch=1, max_wait_s=0.0)
    first = b.submit(1)  # taken at once; the worker waits at the gate
    wait_for(lambda: len(b) == 0)
    gone = b.submit(2)
    assert gone.cancel()  # still queued: cancellable
    later = b.submit(3)
    gate.set()
    assert first.result(5) == 10 and later.result(5) == 30
    assert b.stats.items == 2  # the cancelled item was never scored
    b.close()
