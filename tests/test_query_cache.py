"""The query cache of sequence models: same scores as the forward pass, bounded, and visible in the service."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chronorec.datasets.synthetic import make_sequences
from chronorec.models.sequential.query_cache import QueryCache
from chronorec.models.sequential.sasrec import SASRec


@pytest.fixture(scope="module")
def model():
    log = make_sequences(n_users=120, n_items=40, mean_length=14, seed=3)
    return SASRec(max_len=12, dim=16, layers=1, epochs=1, batch_size=32, progress=False, seed=0).fit(log)


def test_the_cache_computes_only_missing_rows_and_evicts_the_least_recently_used():
    asked: list[list[int]] = []

    def compute(rows):
        asked.append(list(rows))
        return torch.tensor([[float(len(hs[i])), float(hs[i][-1])] for i in rows])

    cache = QueryCache(2)
    hs = [np.array([1, 2]), np.array([3]), np.array([1, 2])]
    out = cache.rows(hs, compute)
    assert asked == [[0, 1, 2]]  # a repeat inside one call is computed, not looked up
    assert out.tolist() == [[2.0, 2.0], [1.0, 3.0], [2.0, 2.0]]
    assert cache.rows([np.array([3]), np.array([1, 2])], compute).tolist() == [[1.0, 3.0], [2.0, 2.0]]
    assert asked == [[0, 1, 2]] and cache.hits == 2 and cache.misses == 3
    hs = [np.array([9])]
    cache.rows(hs, compute)  # a third history: [3], the least recently used, goes
    assert len(cache) == 2 and asked[-1] == [0]
    hs = [np.array([3])]
    cache.rows(hs, compute)
    assert asked[-1] == [0] and cache.stats()["misses"] == 5
    with pytest.raises(ValueError):
        QueryCache(0)


def test_cached_scores_equal_the_forward_pass_and_new_history_is_a_new_key(model):
    rng = np.random.default_rng(0)
    hists = [rng.integers(1, model.n_items + 1, n) for n in (3, 12, 20, 1, 0)]
    users = np.zeros(len(hists), np.int64)
    model.enable_query_cache(0)
    plain = model.score(users, hists)
    assert model.enable_query_cache(100)
    first = model.score(users, hists)
    again = model.score(users, hists[::-1])
    torch.testing.assert_close(first, plain, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(again, plain.flip(0), rtol=1e-4, atol=1e-4)
    assert model.query_cache.hits == len(hists) and model.query_cache.misses == len(hists)
    longer = model.score(users[:1], [np.append(hists[0], 5)])  # a live event: another key, another query
    assert model.query_cache.misses == len(hists) + 1
    assert not torch.allclose(longer[0], plain[0])
    # a history longer than the window is keyed by the window: the same query as its last max_len items
    model.score(users[:1], [np.append(rng.integers(1, model.n_items + 1, 7), hists[2][-12:])])
    assert model.query_cache.hits == len(hists) + 1
    model.enable_query_cache(0)
    assert model.query_cache is None


def test_models_that_score_from_context_are_never_cached():
    log = make_sequences(n_users=40, n_items=20, mean_length=8, seed=1)
    ctx = SASRec(max_len=8, dim=8, layers=1, epochs=1, batch_size=32, progress=False, request_context=True)
    ctx.fit(log)
    assert ctx.enable_query_cache(100) is False and ctx.query_cache is None


def test_the_service_reports_cache_hits(model, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from chronorec.serving.app import create_app

    model.save(tmp_path / "m")
    user = str(model.users.external_ids[0])
    with TestClient(create_app(tmp_path / "m", state_dir=tmp_path / "state")) as c:
        a = c.post("/recommend", json={"user_id": user, "k": 5}).json()
        b = c.post("/recommend", json={"user_id": user, "k": 5}).json()
        assert [x["item_id"] for x in a["items"]] == [x["item_id"] for x in b["items"]]
        stats = c.get("/health").json()["query_cache"]
        assert stats["hits"] >= 1 and stats["size"] == 100_000
        assert "chronorec_query_cache_hits" in c.get("/metrics").text
    with TestClient(create_app(tmp_path / "m", state_dir=tmp_path / "state", query_cache=0)) as c:
        assert c.get("/health").json()["query_cache"] is None


def test_the_load_test_sets_the_cache_of_each_server_variant():
    from chronorec.testing.load import parse_variants, server_command

    vs = {v["name"]: v for v in parse_variants(["cached:64", "nocache:64:1:0", "two:32:2"], server_threads=1)}
    assert vs["nocache"]["query_cache"] == 0 and vs["cached"]["query_cache"] is None and vs["two"]["threads"] == 2
    assert vs["cached"]["threads"] == 1 and vs["two"]["max_batch"] == 32
    cmd = server_command("m", vs["nocache"], 8000, "/tmp/state", max_wait_ms=2.0)
    assert cmd[cmd.index("--query-cache") + 1] == "0" and "--query-cache" not in server_command(
        "m", vs["cached"], 1, "s", max_wait_ms=2.0
    )
    base = parse_variants([], server_threads=3, baseline=("abc", "/tmp/src"))
    assert base == [{"name": "main@abc", "max_batch": None, "pythonpath": "/tmp/src", "threads": 3}]
    assert "--max-batch" not in server_command("m", base[0], 1, "s", max_wait_ms=2.0)
