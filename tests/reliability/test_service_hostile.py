"""Hostile requests to the service: out-of-range numbers, retried and conflicting writes with an
Idempotency-Key, keys and headers of the wrong shape. Each gets its documented status, and nothing
is lost or changed (the live-event count, the answers, the stored events across a restart)."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from chronorec.serving.app import create_app

from ._models import save_sasrec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KEY = {"X-API-Key": "s3cret"}
HUGE = 10**30


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_sasrec(tmp_path_factory.mktemp("svc") / "sasrec")


@pytest.fixture()
def state(tmp_path):
    return tmp_path / "state"


@pytest.fixture()
def client(model_dir, state):
    with TestClient(create_app(model_dir, state_dir=state, api_key="s3cret")) as c:
        yield c


def live(c) -> int:
    return c.get("/health").json()["live_events"]


def events(c, body, key=None, **headers):
    h = {**KEY, **headers}
    if key is not None:
        h["Idempotency-Key"] = key
    return c.post("/events", json=body, headers=h)


BODY = {"events": [{"user_id": 1, "item_id": 3, "timestamp": 1_700_000_000}, {"user_id": 1, "item_id": 4}]}


# ---------------------------------------------------------------------- out-of-range numbers
@pytest.mark.parametrize(
    "body",
    [
        {"events": [{"user_id": HUGE, "item_id": 1}]},
        {"events": [{"user_id": 1, "item_id": HUGE}]},
        {"events": [{"user_id": 1, "item_id": 1, "timestamp": HUGE}]},
        {"events": [{"user_id": 1, "item_id": 1, "timestamp": -HUGE}]},
        {"events": [{"user_id": -(2**63) - 1, "item_id": 1}]},
    ],
)
def test_huge_numbers_in_events_are_a_422_and_nothing_is_stored(client, body):
    r = events(client, body)
    assert r.status_code == 422, r.text
    assert live(client) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": HUGE, "k": 3},
        {"history": [HUGE], "k": 3},
        {"history": [{"item_id": HUGE}], "k": 3},
        {"history": [{"item_id": 1, "timestamp": HUGE}], "k": 3},
    ],
)
def test_huge_numbers_in_a_recommendation_request_are_a_422(client, body):
    r = client.post("/recommend", json=body)
    assert r.status_code == 422, r.text
    assert "error" in r.json()
    assert client.post("/recommend", json={"user_id": 1, "k": 3}).status_code == 200


def test_a_k_above_the_catalogue_is_clamped_with_a_warning_and_a_huge_one_is_422(client):
    r = client.post("/recommend", json={"user_id": 1, "k": 5000})
    assert r.status_code == 200
    assert len(r.json()["items"]) == 20
    assert any("is above the catalogue size 20; clamped to 20" in w for w in r.json()["warnings"])
    r = client.post("/recommend", json={"user_id": 1, "k": HUGE})  # past the declared bound of k
    assert r.status_code == 422 and "k" in r.text and "100000" in r.text


# ---------------------------------------------------------------------- idempotency
def test_a_retry_with_the_same_key_adds_nothing_and_gets_the_first_answer(client):
    first = events(client, BODY, key="req-1")
    assert first.status_code == 200 and first.json()["accepted"] == 2
    again = events(client, BODY, key="req-1")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert live(client) == 2


def test_the_same_key_with_another_body_is_a_422_and_adds_nothing(client):
    assert events(client, BODY, key="req-2").status_code == 200
    other = {"events": [{"user_id": 2, "item_id": 5}]}
    r = events(client, other, key="req-2")
    assert r.status_code == 422
    assert r.json()["error"].startswith("Idempotency-Key: this key was already used with another body")
    assert live(client) == 2


def test_different_keys_are_different_requests(client):
    assert events(client, BODY, key="a").status_code == 200
    assert events(client, BODY, key="b").status_code == 200
    assert live(client) == 4


def test_without_a_key_a_retry_is_a_new_request(client):
    events(client, BODY)
    events(client, BODY)
    assert live(client) == 4


def test_the_key_survives_a_restart_and_still_deduplicates(model_dir, state):
    with TestClient(create_app(model_dir, state_dir=state, api_key="s3cret")) as c:
        first = events(c, BODY, key="restart-1").json()
    with TestClient(create_app(model_dir, state_dir=state, api_key="s3cret")) as c:
        again = events(c, BODY, key="restart-1")
        assert again.json() == first
        assert live(c) == 2


def test_a_key_committed_without_its_answer_still_deduplicates(client):
    """A crash between committing the events and recording the answer: the retry adds nothing."""
    svc = client.app.state.service
    svc.store.append([{"user_id": 9, "item_id": 3, "timestamp": 1}], idempotency=("crashed", "digest-x"))
    before = live(client)
    r = events(client, BODY, key="crashed")
    assert r.status_code == 422  # another body than the one committed
    assert live(client) == before


def test_a_wrong_api_key_is_401_and_does_not_burn_the_idempotency_key(client):
    r = events(client, BODY, key="k-401", **{"X-API-Key": "nope"})
    assert r.status_code == 401
    assert events(client, BODY, key="k-401").status_code == 200
    assert live(client) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "tab\tkey"])
def test_a_malformed_idempotency_key_is_a_422(client, key):
    r = client.post("/events", json=BODY, headers={**KEY, "Idempotency-Key": key})
    assert r.status_code == 422, r.text
    assert live(client) == 0


def test_concurrent_retries_with_one_key_store_the_events_once(client):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: events(client, BODY, key="burst"), range(16)))
    assert {a.status_code for a in answers} == {200}
    assert live(client) == 2
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 15


# ---------------------------------------------------------------------- the API key
def test_the_key_is_compared_with_hmac_compare_digest(client, monkeypatch):
    import chronorec.serving.auth as auth

    seen = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert events(client, BODY, **{"X-API-Key": "s3creX"}).status_code == 401
    assert seen == [(b"s3creX", b"s3cret")]


def test_an_empty_key_is_refused_at_start(model_dir, state):
    from chronorec.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="empty"):
        create_app(model_dir, state_dir=state, api_key="")
