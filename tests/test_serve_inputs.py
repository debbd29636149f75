"""The service's input boundary: live events and history items take the timestamps ``chronorec ingest``
takes (ISO 8601 text, epochs in s / ms / us by the same unit rule), on every endpoint alike; a bad one is a 422 naming the field and why; a behaviour type the model was not
trained on is kept but named in the answer's warnings."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from chronorec.data.timestamps import parse_time_column, parse_time_values
from chronorec.datasets.synthetic import make_ecommerce_log
from chronorec.models.baselines.itemknn import ItemKNN
from chronorec.serving.app import create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KEY = {"x-api-key": "k"}
T0 = 1_718_011_800  # 2024-06-10T09:30:00Z
SAME_TIME = [
    T0,
    "2024-06-10T09:30:00Z",
    "2024-06-10T11:30:00+02:00",
    "2024-06-10T09:30:00",  # no zone: UTC, as ingest reads it without --timezone
    "2024-06-10 09:30:00.250000+00:00",
    T0 * 1000 + 999,  # milliseconds
    T0 * 1_000_000 + 5,  # microseconds
    T0 + 0.75,  # fractional seconds are floored
    str(T0),  # numeric text, as in a CSV cell
]


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory):
    """A model trained on a log with behaviour types view / cart / buy."""
    log = make_ecommerce_log(n_users=30, n_items=25, n_clusters=2, mean_length=10, seed=3)
    model = ItemKNN(neighbours=10).fit(log)
    assert sorted(model.context_vocab["behavior"]) == ["buy", "cart", "view"]
    d = tmp_path_factory.mktemp("models") / "knn"
    model.save(d)
    return d, model


@pytest.fixture()
def client(shop_dir, tmp_path):
    with TestClient(create_app(shop_dir[0], state_dir=tmp_path / "state", api_key="k")) as c:
        yield c


def _stored(client, key):
    """One field of every stored live event, from the JSON Lines export."""
    lines = client.get("/events/export?format=jsonl", headers=KEY).text.strip().splitlines()
    return [json.loads(line)[key] for line in lines]


# ---------------------------------------------------------------------- timestamps
def test_ingest_reads_every_form_as_the_same_second():
    """The forms the service is tested with are the same instant for ingest (the rule both share)."""
    for ts in SAME_TIME:
        tp = parse_time_column(pd.Series([ts]))
        assert tp.ok.tolist() == [True] and tp.seconds.tolist() == [T0], ts


def test_ingest_reads_a_naive_time_after_an_offset_one_as_utc():
    """In one ingest column, a naive time that follows a time with a numeric offset is UTC (pandas
    alone reads it in that offset), as the service reads it; with --timezone it is that zone's time."""
    tp = parse_time_column(pd.Series(["2024-06-10T11:30:00+02:00", "2024-06-10T09:30:00"]))
    assert tp.seconds.tolist() == [T0, T0]
    tp = parse_time_column(pd.Series(["2024-06-10T11:30:00+02:00", "2024-06-10T11:30:00"]), timezone="Europe/Paris")
    assert tp.seconds.tolist() == [T0, T0]


@pytest.mark.parametrize("ts", SAME_TIME)
def test_events_take_iso_and_millisecond_timestamps_as_ingest_does(client, ts):
    r = client.post(
        "/events", json={"events": [{"user_id": "u0001", "item_id": "i0001", "timestamp": ts}]}, headers=KEY
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "warnings": []}
    assert _stored(client, "timestamp") == [T0]


def test_many_text_timestamps_in_one_request_are_each_read(client):
    days = [f"2024-06-{d:02d}T00:00:00Z" for d in range(1, 31)]
    events = [{"user_id": "u0002", "item_id": "i0001", "timestamp": t} for t in days]
    events += [
        {"user_id": "u0002", "item_id": "i0002", "timestamp": 1_717_200_000_000},
        {"user_id": "u0002", "item_id": "i0003"},
    ]
    r = client.post("/events", json={"events": events}, headers=KEY)
    assert r.status_code == 200 and r.json()["accepted"] == 32
    assert _stored(client, "timestamp")[:31] == [1_717_200_000 + 86_400 * d for d in range(30)] + [1_717_200_000]


def test_history_timestamps_in_any_form_order_the_history(client, shop_dir):
    """Items sent out of order with ISO / ms / us / seconds timestamps are ordered by time, exactly
    as the same items sent in time order."""
    _, model = shop_dir
    in_order = ["i0001", "i0005", "i0009", "i0002"]
    shuffled = [
        {"item_id": "i0009", "timestamp": "2024-06-10T11:30:00+02:00"},  # T0
        {"item_id": "i0002", "timestamp": (T0 + 60) * 1_000_000},  # microseconds
        {"item_id": "i0001", "timestamp": "2024-06-10T09:00:00"},  # T0 - 1800, naive = UTC
        {"item_id": "i0005", "timestamp": (T0 - 60) * 1000},  # milliseconds
    ]
    want = client.post("/recommend", json={"history": in_order, "k": 5}).json()
    assert [x["item_id"] for x in want["items"]] == model.recommend_from_history([in_order], k=5)["item_id"].tolist()
    r = client.post("/recommend", json={"history": shuffled, "k": 5})
    assert r.status_code == 200 and r.json() == want


@pytest.mark.parametrize(
    ("ts", "why"),
    [
        ("yesterday", "'yesterday' is not a timestamp: send epoch seconds, milliseconds or microseconds"),
        ("", "'' is not a timestamp"),
        (True, "True is not a timestamp"),
        ([T0], "[1718011800] is not a timestamp"),
        (-1, "-1 is out of range: times lie between 1970-01-01 and 2262-04-11 UTC"),
        (10**30, "is out of range: times lie between 1970-01-01 and 2262-04-11 UTC"),
        ("2300-01-01T00:00:00Z", "'2300-01-01T00:00:00Z' is out of range"),
        ("1969-07-20T20:17:00Z", "'1969-07-20T20:17:00Z' is out of range"),
        ("2024-06-10T09:30:00Z" * 4, "timestamp text over 64 characters"),
    ],
)
def test_a_bad_timestamp_is_a_422_with_one_clear_message_on_every_path(client, ts, why):
    before = client.get("/health").json()["live_events"]
    ok = {"user_id": "u0001", "item_id": "i0001", "timestamp": "2024-06-10T09:30:00Z"}
    r = client.post(
        "/events", json={"events": [ok, {"user_id": "u0001", "item_id": "i0001", "timestamp": ts}]}, headers=KEY
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error.startswith("events.1.timestamp: ") and why in error
    assert [d["field"] for d in r.json()["detail"]] == ["events.1.timestamp"]  # one message, one field
    assert client.get("/health").json()["live_events"] == before  # nothing stored
    r = client.post("/recommend", json={"history": [{"item_id": "i0001", "timestamp": ts}], "k": 3})
    assert r.status_code == 422 and r.json()["error"].startswith("history.0.timestamp: ") and why in r.json()["error"]


def test_plain_seconds_skip_the_parser_and_other_forms_are_parsed_once_per_request(monkeypatch):
    """The usual request (epoch seconds) never reaches the text parser; a request with other forms
    parses them all in one call, whatever their number."""
    from chronorec.serving import schemas

    calls = []

    def spy(values, **kw):
        calls.append(list(values))
        return parse_time_values(values, **kw)

    monkeypatch.setattr(schemas, "parse_time_values", spy)
    seconds = [{"user_id": "u", "item_id": "i", "timestamp": T0 + i} for i in range(200)]
    assert [e.timestamp for e in schemas.EventsRequest.model_validate({"events": seconds}).events] == [
        T0 + i for i in range(200)
    ]
    history = schemas.RecommendRequest.model_validate({"history": [{"item_id": "i", "timestamp": T0}, "j"]})
    assert history.history[0].timestamp == T0 and calls == []
    mixed = seconds + [{"user_id": "u", "item_id": "i", "timestamp": t} for t in SAME_TIME[1:] * 20]
    parsed = schemas.EventsRequest.model_validate({"events": mixed}).events
    assert [e.timestamp for e in parsed[200:]] == [T0] * (len(SAME_TIME) - 1) * 20
    assert len(calls) == 1 and len(calls[0]) == (len(SAME_TIME) - 1) * 20


def test_the_openapi_schema_describes_the_timestamp_forms(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("Event", "HistoryItem"):
        ts = schema[name]["properties"]["timestamp"]
        kinds = {t.get("type") for alt in ts["anyOf"] for t in alt.get("anyOf", [alt])}
        assert kinds == {"integer", "number", "string", "null"}, ts
        assert "ISO 8601" in ts["description"] and "milliseconds below 1e14" in ts["description"]
        assert "without a zone it is UTC" in ts["description"]
        assert "warnings name it" in schema[name]["properties"]["behavior"]["description"]


# ---------------------------------------------------------------------- behaviour types
def test_an_unknown_behaviour_is_stored_and_named_in_the_warnings(client):
    events = [
        {"user_id": "u0003", "item_id": "i0001", "behavior": "view"},
        {"user_id": "u0003", "item_id": "i0002", "behavior": "purchase"},
        {"user_id": "u0003", "item_id": "i0003", "behavior": "Buy"},
        {"user_id": "u0003", "item_id": "i0004", "behavior": "purchase"},
    ]
    r = client.post("/events", json={"events": events}, headers=KEY)
    assert r.status_code == 200 and r.json()["accepted"] == 4
    (warning,) = r.json()["warnings"]
    assert warning.startswith("3 events name behaviour types ['purchase', 'Buy'] unknown to the model, which knows")
    assert "(did you mean 'Buy' -> 'buy'?)" in warning and "stored as given" in warning
    assert _stored(client, "behavior") == ["view", "purchase", "Buy", "purchase"]  # kept for retraining
    known = client.post(
        "/events", json={"events": [{"user_id": "u0003", "item_id": "i0005", "behavior": "buy"}]}, headers=KEY
    )
    assert known.json()["warnings"] == []


def test_an_unknown_behaviour_in_a_history_is_used_and_warned(client):
    plain = client.post("/recommend", json={"history": ["i0001", "i0002", "i0003"], "k": 5}).json()
    assert plain["warnings"] == []
    body = {
        "history": [
            {"item_id": "i0001", "behavior": "view"},
            {"item_id": "i0002", "behavior": "purchase"},
            {"item_id": "i0003", "behavior": "buy"},
        ],
        "k": 5,
    }
    answer = client.post("/recommend", json=body).json()
    assert answer["items"] == plain["items"] and answer["history_length"] == 3  # the event still counts
    assert answer["warnings"] == [
        "history: behaviour types ['purchase'] unknown to the model, which knows ['view', 'cart', 'buy']: the "
        "events count as history as usual; only exclude_behaviors filters naming these types match them"
    ]
    # the name given is the one filters match
    only = {"exclude_seen": True, "exclude_behaviors": ["purchase"]}
    dropped = client.post("/recommend", json={**body, "filters": only, "k": 30}).json()
    listed = [x["item_id"] for x in dropped["items"]]
    assert "i0002" not in listed and {"i0001", "i0003"} <= set(listed)
