"""The HTTP service in-process (FastAPI TestClient): answers agree with the library, live events,
restarts, the documented answers to bad requests, metrics, and the refusal of non-artifact files."""

from __future__ import annotations

import json
import logging
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from chronorec.data.eventlog import EventLog
from chronorec.datasets.synthetic import make_sequences
from chronorec.models.baselines.popular import MostPopular
from chronorec.models.sequential.sasrec import SASRec
from chronorec.recommend import RecommendOptions, RecommendPipeline
from chronorec.serving.app import MAX_HISTORY, check_model_dir, create_app
from chronorec.serving.store import LiveEventStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def sasrec_dir(tmp_path_factory):
    log = make_sequences(n_users=60, n_items=40, seed=0, mean_length=12)
    model = SASRec(max_len=16, dim=16, layers=1, epochs=2, batch_size=32, progress=False, seed=0).fit(log)
    d = tmp_path_factory.mktemp("models") / "sasrec"
    model.save(d)
    return d, model


@pytest.fixture(scope="module")
def popular_dir(tmp_path_factory):
    seqs = {"u1": list("abcdef"), "u2": list("abcd"), "u3": list("abc"), "u4": list("ab"), "u5": list("a")}
    model = MostPopular().fit(EventLog.from_sequences(seqs))
    d = tmp_path_factory.mktemp("models") / "popular"
    model.save(d)
    table = pd.DataFrame({"item_id": list("abcdef"), "category": ["X", "X", "Y", "Z", "Y", "Z"]})
    items = d.parent / "items.csv"
    table.to_csv(items, index=False)
    return d, model, items


@pytest.fixture()
def client(sasrec_dir, tmp_path):
    d, _ = sasrec_dir
    with TestClient(create_app(d, state_dir=tmp_path / "state", api_key="s3cret")) as c:
        yield c


def post(c, path, body, **kw):
    return c.post(path, json=body, **kw)


def items_of(resp):
    return [x["item_id"] for x in resp.json()["items"]]


# ---------------------------------------------------------------------- agreement with the library
def test_by_id_and_by_history_agree_with_the_library(client, sasrec_dir):
    _, model = sasrec_dir
    users = ["u0001", "u0002", "u0017"]
    lib = model.recommend(users, k=5)
    pipe = RecommendPipeline(model)
    ours = pipe.recommend(users, options=RecommendOptions(k=5))
    for u in users:
        r = post(client, "/recommend", {"user_id": u, "k": 5})
        assert r.status_code == 200
        body = r.json()
        assert items_of(r) == lib.loc[lib.user_id == u, "item_id"].tolist()
        np.testing.assert_allclose([x["score"] for x in body["items"]], ours.loc[ours.user_id == u, "score"], rtol=1e-5)
        assert [x["rank"] for x in body["items"]] == [1, 2, 3, 4, 5]
        assert body["strategy"] == "model" and body["warnings"] == []
        # the same history sent explicitly (no user id) gets the same list
        hist = model.items.to_external(model.store.user_items(int(model.users.to_internal([u])[0]))).tolist()
        r2 = post(client, "/recommend", {"history": hist, "k": 5})
        assert items_of(r2) == items_of(r)
        lib_h = model.recommend_from_history([hist], k=5)
        assert items_of(r2) == lib_h["item_id"].tolist()


def test_explanations_name_history_items(client, sasrec_dir):
    _, model = sasrec_dir
    r = post(client, "/recommend", {"history": ["i0001", "i0002", "i0003"], "k": 3, "n_explain": 2})
    pipe = RecommendPipeline(model)
    hist = model.items.to_internal(["i0001", "i0002", "i0003"])
    ranked = pipe.rank(np.zeros(1, np.int64), [hist], RecommendOptions(k=3, explain=True, n_explain=2))[0]
    for got, want in zip(r.json()["items"], ranked.explanations, strict=True):
        assert [b["item_id"] for b in got["because"]] == model.items.to_external([j for j, _ in want]).tolist()
        for b in got["because"]:
            assert b["item_id"] in {"i0001", "i0002", "i0003"}
            assert b["name"].endswith(")")  # synthetic names: "Shirt 001 (cluster 0)"


# ---------------------------------------------------------------------- live events
def test_events_change_the_next_answer_and_survive_a_restart(sasrec_dir, tmp_path):
    d, model = sasrec_dir
    state = tmp_path / "state"
    with TestClient(create_app(d, state_dir=state)) as c:
        before = items_of(post(c, "/recommend", {"user_id": "u0003", "k": 5}))
        new = [before[0], "i0040"]
        ev = [
            {"user_id": "u0003", "item_id": i, "behavior": "view", "timestamp": 1_700_000_000 + j}
            for j, i in enumerate(new)
        ]
        r = post(c, "/events", {"events": ev + [{"user_id": "u0003", "item_id": "not-an-item"}]})
        assert r.status_code == 200 and r.json()["accepted"] == 3
        assert "1 events name items unknown" in r.json()["warnings"][0]
        after = post(c, "/recommend", {"user_id": "u0003", "k": 5}).json()
        train_hist = model.items.to_external(model.store.user_items(int(model.users.to_internal(["u0003"])[0])))
        expected = model.recommend_from_history([[*train_hist.tolist(), *new]], k=5)["item_id"].tolist()
        assert [x["item_id"] for x in after["items"]] == expected
        assert before[0] not in expected
        assert after["history_length"] == len(train_hist) + 2
    with TestClient(create_app(d, state_dir=state)) as c2:  # a new process on the same state
        again = post(c2, "/recommend", {"user_id": "u0003", "k": 5}).json()
        assert [x["item_id"] for x in again["items"]] == expected
        assert c2.get("/health").json()["live_events"] == 3
    exported = LiveEventStore(state).export(tmp_path / "live.parquet")
    df = pd.read_parquet(exported)
    assert df["item_id"].tolist() == [*new, "not-an-item"]
    assert df["user_id"].tolist() == ["u0003"] * 3
    assert df["timestamp"].tolist()[:2] == [1_700_000_000, 1_700_000_001]


def test_events_for_an_unknown_user_make_it_warm(client):
    cold = post(client, "/recommend", {"user_id": "new-user", "k": 3}).json()
    assert cold["strategy"] == "popularity" and "cold-start" in cold["warnings"][0]
    key = {"x-api-key": "s3cret"}
    assert (
        post(client, "/events", {"events": [{"user_id": "new-user", "item_id": "i0005"}]}, headers=key).status_code
        == 200
    )
    warm = post(client, "/recommend", {"user_id": "new-user", "k": 3}).json()
    assert warm["strategy"] == "model" and warm["history_length"] == 1
    assert "using its 1 live events" in warm["warnings"][0]


def test_api_key_protects_events_and_export(client):
    body = {"events": [{"user_id": "u0001", "item_id": "i0002"}]}
    assert post(client, "/events", body).status_code == 401
    assert post(client, "/events", body, headers={"x-api-key": "wrong"}).status_code == 401
    assert post(client, "/events", body, headers={"x-api-key": "s3cret"}).status_code == 200
    assert client.get("/events/export?format=csv").status_code == 401
    r = client.get("/events/export?format=csv", headers={"x-api-key": "s3cret"})
    assert r.status_code == 200 and r.text.splitlines()[0] == "user_id,item_id,timestamp"
    assert r.text.splitlines()[1].startswith("u0001,i0002,")


def test_the_api_key_is_compared_in_constant_time(client, monkeypatch):
    import chronorec.serving.auth as auth

    calls = []

    def spy(a, b):
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    body = {"events": [{"user_id": "u0001", "item_id": "i0002"}]}
    assert post(client, "/events", body, headers={"x-api-key": "s3cre"}).status_code == 401
    assert calls == [(b"s3cre", b"s3cret")]
    assert auth.key_matches(None, None) and auth.key_matches(None, "any")
    assert not auth.key_matches("k", None) and auth.key_matches("k\u00e9", "k\u00e9")


# ---------------------------------------------------------------------- documented answers to bad requests
@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ('{"k": 3', 400, "body"),
        ("not json", 400, "body"),
        ('{"k": 0}', 422, "k"),
        ('{"k": -2}', 422, "k"),
        ('{"k": "ten"}', 422, "k"),
        ('{"k": 2.5}', 422, "k"),
        ('{"user_id": [1]}', 422, "user_id"),
        ('{"history": "i0001"}', 422, "history"),
        ('{"history": [{"item_id": "i0001", "timestamp": "yesterday"}]}', 422, "history.0.timestamp"),
        ('{"kk": 3}', 422, "kk"),
        ('{"filters": {"min_price": -1}}', 422, "filters.min_price"),
        ('{"rerank": {"diversity_weight": 2}}', 422, "rerank.diversity_weight"),
        ("[1, 2]", 422, "body"),
    ],
)
def test_malformed_requests_get_a_4xx_naming_the_field(client, body, status, field):
    r = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"].startswith(f"{field}:")


def test_k_above_the_catalogue_is_clamped(client, sasrec_dir):
    _, model = sasrec_dir
    r = post(client, "/recommend", {"user_id": "u0001", "k": 10_000})
    assert r.status_code == 200
    seen = len(set(model.store.user_items(int(model.users.to_internal(["u0001"])[0]))))
    assert len(r.json()["items"]) == model.n_items - (seen if model.exclude_history else 0)
    assert any(f"clamped to {model.n_items}" in w for w in r.json()["warnings"])


def test_unknown_items_are_ignored_and_reported(client, sasrec_dir):
    _, model = sasrec_dir
    r = post(client, "/recommend", {"history": ["i0001", "nope", {"item_id": 12345}], "k": 4}).json()
    assert r["warnings"] == ["history: 2 unknown item ids ignored: ['nope', 12345]"]
    assert r["history_length"] == 1
    assert [x["item_id"] for x in r["items"]] == model.recommend_from_history([["i0001"]], k=4)["item_id"].tolist()
    only_unknown = post(client, "/recommend", {"history": ["nope"], "k": 2}).json()
    assert only_unknown["strategy"] == "popularity"


def test_huge_histories(client, sasrec_dir):
    _, model = sasrec_dir
    too_long = post(client, "/recommend", {"history": ["i0001"] * (MAX_HISTORY + 1), "k": 2})
    assert too_long.status_code == 422 and too_long.json()["error"].startswith("history:")
    ok = post(client, "/recommend", {"history": ["i0002", "i0003"] * (MAX_HISTORY // 2), "k": 2})
    assert ok.status_code == 200 and ok.json()["history_length"] == MAX_HISTORY
    # only the last max_len items reach the sequence model: same answer as the short history
    short = model.recommend_from_history([["i0002", "i0003"] * 8], k=2)["item_id"].tolist()
    assert items_of(ok) == short
    huge = client.post("/recommend", content=b'{"history": [' + b'"i0001",' * 400_000 + b'"i0001"]}')
    assert huge.status_code == 413 and huge.json()["error"].startswith("body:")


def test_events_validation(client):
    key = {"x-api-key": "s3cret"}
    assert post(client, "/events", {"events": []}, headers=key).status_code == 422
    many = {"events": [{"user_id": "u", "item_id": "i0001"}] * 1001}
    r = post(client, "/events", many, headers=key)
    assert r.status_code == 422 and r.json()["error"].startswith("events:")
    r = post(client, "/events", {"events": [{"user_id": "u"}]}, headers=key)
    assert r.status_code == 422 and r.json()["error"].startswith("events.0.item_id:")


def test_an_internal_error_is_a_500_and_the_service_keeps_serving(sasrec_dir, tmp_path, caplog):
    client = TestClient(create_app(sasrec_dir[0], state_dir=tmp_path / "s"), raise_server_exceptions=False)
    svc = client.app.state.service
    original = svc.pipeline.rank

    def broken(*a, **k):
        raise RuntimeError("boom: secret detail")

    svc.pipeline.rank = broken
    try:
        with caplog.at_level(logging.ERROR, logger="chronorec.serving"):
            r = post(client, "/recommend", {"user_id": "u0001"})
            mine = post(client, "/recommend", {"user_id": "u0001"}, headers={"X-Request-ID": "req-42"})
    finally:
        svc.pipeline.rank = original
    # the client gets a generic message and a request id, never the exception text
    assert r.status_code == 500 and "boom" not in r.text and "RuntimeError" not in r.text
    body = r.json()
    assert body["error"].startswith("internal error") and len(body["request_id"]) == 32
    assert r.headers["x-request-id"] == body["request_id"]
    assert mine.status_code == 500 and mine.json()["request_id"] == "req-42"
    # the log has the traceback under that id
    failures = [rec for rec in caplog.records if rec.name.startswith("chronorec.serving") and rec.exc_info]
    assert len(failures) == 2
    assert body["request_id"] in failures[0].getMessage() and "/recommend" in failures[0].getMessage()
    assert "req-42" in failures[1].getMessage()
    assert "RuntimeError: boom: secret detail" in caplog.text and "Traceback" in caplog.text
    text = client.get("/metrics").text
    assert 'chronorec_requests_total{method="POST",route="/recommend",status="500"} 2.0' in text
    assert post(client, "/recommend", {"user_id": "u0001"}).status_code == 200


# ---------------------------------------------------------------------- filters through the service
def test_filters_and_rerank_through_the_service(popular_dir, tmp_path):
    d, _, items = popular_dir
    with TestClient(create_app(d, state_dir=tmp_path / "s", items=items)) as c:
        assert items_of(post(c, "/recommend", {"history": ["e"], "k": 3})) == ["a", "b", "c"]
        assert items_of(post(c, "/recommend", {"history": ["e"], "k": 3, "filters": {"deny": ["b"]}})) == [
            "a",
            "c",
            "d",
        ]
        cats = post(c, "/recommend", {"history": ["a"], "k": 3, "filters": {"categories": ["Y"]}})
        assert items_of(cats) == ["c", "e"]
        interest = post(c, "/recommend", {"history": ["e"], "k": 3, "rerank": {"interest_weight": 0.5}})
        assert items_of(interest) == ["c", "a", "b"]
        mmr = {"history": ["e"], "k": 5, "rerank": {"diversity_weight": 0.5, "diversity_by": "category"}}
        assert items_of(post(c, "/recommend", mmr)) == ["a", "c", "d", "b", "f"]
        bought = {
            "history": [{"item_id": "a", "behavior": "view"}, {"item_id": "b", "behavior": "buy"}],
            "k": 3,
            "filters": {"exclude_behaviors": ["buy"]},
        }
        assert items_of(post(c, "/recommend", bought)) == ["a", "c", "d"]
        timed = {"history": [{"item_id": "b", "timestamp": 20}, {"item_id": "a", "timestamp": 10}], "k": 1}
        assert post(c, "/recommend", timed).json()["history_length"] == 2
        # integer-looking ids for a text catalogue do not crash; they are unknown
        assert post(c, "/recommend", {"history": [1], "k": 1}).json()["warnings"][0].startswith("history: 1 unknown")


# ---------------------------------------------------------------------- health, metrics, docs
def test_health_metrics_and_docs(client):
    for _ in range(3):
        post(client, "/recommend", {"user_id": "u0001", "k": 2})
    client.post("/recommend", content="{", headers={"content-type": "application/json"})
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model_version"].startswith("sasrec-") and h["n_items"] == 40
    text = client.get("/metrics").text
    assert 'chronorec_requests_total{method="POST",route="/recommend",status="200"} 3' in text
    assert 'chronorec_requests_total{method="POST",route="/recommend",status="400"} 1' in text
    assert f'version="{h["model_version"]}"' in text
    assert 'chronorec_request_duration_seconds_count{route="/recommend"} 4' in text
    assert client.get("/docs").status_code == 200
    assert "/recommend" in client.get("/openapi.json").json()["paths"]


def test_metrics_are_prometheus_text_from_a_registry_per_app(client, sasrec_dir, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    post(client, "/recommend", {"user_id": "u0001", "k": 2})
    post(client, "/events", {"events": [{"user_id": "u0001", "item_id": "i0002"}]}, headers={"x-api-key": "s3cret"})
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert families["chronorec_requests"].type == "counter"
    assert families["chronorec_request_duration_seconds"].type == "histogram"
    (info,) = families["chronorec_model_info"].samples
    assert info.value == 1.0 and info.labels["kind"] == "sasrec" and info.labels["version"].startswith("sasrec-")
    live = [s.value for s in families["chronorec_live_events"].samples if s.name == "chronorec_live_events_total"]
    assert live == [1.0]
    ok = [
        s.value
        for s in families["chronorec_requests"].samples
        if s.name == "chronorec_requests_total"
        and s.labels == {"method": "POST", "route": "/recommend", "status": "200"}
    ]
    assert ok == [1.0]
    with TestClient(create_app(sasrec_dir[0], state_dir=tmp_path / "other")) as other:  # its own counters
        assert "chronorec_requests_total{" not in other.get("/metrics").text


def test_service_settings(sasrec_dir, tmp_path):
    from pydantic import ValidationError

    from chronorec.settings import ServeSettings

    assert all(f.description for f in ServeSettings.model_fields.values())
    s = ServeSettings(model=sasrec_dir[0], state_dir=tmp_path / "st", api_key="k3y", max_body_bytes=200)
    assert "k3y" not in repr(s) and s.key() == "k3y" and s.live_dir == tmp_path / "st"
    with pytest.raises(ValidationError):
        ServeSettings(model=sasrec_dir[0], prot=80)
    with TestClient(create_app(s)) as c:
        assert c.post("/events", json={"events": [{"user_id": "u", "item_id": "i0001"}]}).status_code == 401
        assert post(c, "/recommend", {"user_id": "u0001", "history": ["i0001"] * 40}).status_code == 413
    with TestClient(create_app(s, max_body_bytes=100_000)) as c:
        assert post(c, "/recommend", {"user_id": "u0001", "history": ["i0001"] * 40}).status_code == 200


# ---------------------------------------------------------------------- only safe artifacts
@pytest.mark.parametrize("stray", ["model.pt", "weights.pkl", "extra.bin", "sub/notes.txt"])
def test_model_dirs_with_other_files_are_refused(sasrec_dir, tmp_path, stray):
    d, _ = sasrec_dir
    copy = tmp_path / "m"
    shutil.copytree(d, copy, ignore=shutil.ignore_patterns("live"))
    assert check_model_dir(copy)["kind"] == "sasrec"
    (copy / stray).parent.mkdir(parents=True, exist_ok=True)
    (copy / stray).write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match="refusing to serve"):
        create_app(copy, state_dir=tmp_path / "s")


def test_a_manifest_naming_a_pickle_is_refused(sasrec_dir, tmp_path):
    d, _ = sasrec_dir
    copy = tmp_path / "m"
    shutil.copytree(d, copy, ignore=shutil.ignore_patterns("live"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["model.pkl"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="only JSON, safetensors and Parquet"):
        create_app(copy, state_dir=tmp_path / "s")


def test_cli_serve_refuses_and_exports(sasrec_dir, tmp_path):
    from typer.testing import CliRunner

    from chronorec.cli.main import app

    d, _ = sasrec_dir
    copy = tmp_path / "m"
    shutil.copytree(d, copy, ignore=shutil.ignore_patterns("live"))
    (copy / "model.pt").write_bytes(b"x")
    res = CliRunner().invoke(app, ["serve", "--model", str(copy)])
    assert res.exit_code == 1 and "refusing to serve" in res.output
    LiveEventStore(tmp_path / "st").append(
        [{"user_id": 7, "item_id": "i0001", "timestamp": 5, "context": {"device": "tv"}}]
    )
    out = tmp_path / "ev.csv"
    res = CliRunner().invoke(
        app, ["serve", "--model", str(d), "--state-dir", str(tmp_path / "st"), "--export-events", str(out)]
    )
    assert res.exit_code == 0 and "Wrote 1 live events" in res.output
    assert out.read_text().splitlines() == ["user_id,item_id,timestamp,device", "7,i0001,5,tv"]


def test_cli_batch_recommend_uses_the_pipeline(sasrec_dir, tmp_path):
    from typer.testing import CliRunner

    from chronorec.cli.main import app

    d, model = sasrec_dir
    users = tmp_path / "users.txt"
    users.write_text("u0001\nu0002\nnobody\n")
    out = tmp_path / "recs.parquet"
    res = CliRunner().invoke(
        app,
        [
            "recommend",
            "--model",
            str(d),
            "--users-file",
            str(users),
            "-k",
            "4",
            "--out",
            str(out),
            "--calibrated",
            "--explain",
        ],
    )
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    want = RecommendPipeline(model).recommend(["u0001", "u0002", "nobody"], options=RecommendOptions(k=4, explain=True))
    pd.testing.assert_frame_equal(got, want)
    assert list(got.columns) == ["user_id", "item_id", "score", "rank", "source", "item_name", "explanation"]
    assert set(got.loc[got.user_id == "nobody", "source"]) == {"popularity"}  # never mixed silently with model rows
    assert "1 of 3 users are unknown to the model" in res.output


# ---------------------------------------------------------------------- hostile live events
HUGE = 10**30


@pytest.mark.parametrize(
    "event",
    [
        {"user_id": 1, "item_id": HUGE},
        {"user_id": HUGE, "item_id": 1},
        {"user_id": 1, "item_id": 1, "timestamp": HUGE},
        {"user_id": 1, "item_id": -(2**63) - 1},
    ],
)
def test_out_of_range_live_events_are_a_422_and_nothing_is_stored(client, event):
    before = client.get("/health").json()["live_events"]
    r = post(client, "/events", {"events": [event]}, headers={"X-API-Key": "s3cret"})
    assert r.status_code == 422, r.text
    assert client.get("/health").json()["live_events"] == before
    assert post(client, "/recommend", {"user_id": 1, "k": 3}).status_code == 200


def test_huge_ids_in_a_recommend_request_are_a_422(client):
    assert post(client, "/recommend", {"user_id": HUGE, "k": 3}).status_code == 422
    assert post(client, "/recommend", {"history": [{"item_id": HUGE}], "k": 3}).status_code == 422
    assert post(client, "/recommend", {"user_id": 1, "k": 3, "filters": {"deny": [HUGE]}}).status_code == 422


def test_a_stored_event_that_cannot_be_applied_is_quarantined_at_start_up(tmp_path):
    """Poisoned rows in the live store (written by an older version, or by hand) must not stop the
    service: they are moved aside, logged and counted, and the good events still count."""
    import sqlite3

    seqs = {1: [10, 11, 12], 2: [10, 12], 3: [11, 12, 13]}  # integer ids: 10**30 overflows their arrays
    d = tmp_path / "pop"
    MostPopular().fit(EventLog.from_sequences(seqs)).save(d)
    state = tmp_path / "state"
    with TestClient(create_app(d, state_dir=state, api_key="k")) as c:
        ok = post(c, "/events", {"events": [{"user_id": 7, "item_id": 13}]}, headers={"X-API-Key": "k"})
        assert ok.status_code == 200, ok.text
    db = sqlite3.connect(state / "events.sqlite")
    insert = (
        "INSERT INTO events (user_id, item_id, behavior, timestamp, context, received_at) VALUES (?, ?, ?, ?, ?, ?)"
    )
    db.execute(insert, ("1", str(HUGE), None, 0, None, 0.0))  # what the unvalidated service once stored
    db.execute(insert, ("1", "{not json", None, 0, None, 0.0))
    db.commit()
    db.close()
    with TestClient(create_app(d, state_dir=state, api_key="k")) as c:
        health = c.get("/health").json()
        assert health["status"] == "ok"
        assert health["live_events"] == 1 and health["quarantined_events"] == 2
        assert "chronorec_live_events_quarantined_total 2.0" in c.get("/metrics").text
        assert post(c, "/recommend", {"user_id": 7, "k": 3}).json()["history_length"] == 1
    kept = sqlite3.connect(state / "events.sqlite").execute("SELECT reason FROM quarantined_events").fetchall()
    assert [r[0].split(":")[0] for r in kept] == ["OverflowError", "ValueError"]
    with TestClient(create_app(d, state_dir=state, api_key="k")) as c:  # the next start is clean
        assert c.get("/health").json()["quarantined_events"] == 2


# ---------------------------------------------------------------------- the API key
def test_an_empty_api_key_is_an_error_not_an_open_service(sasrec_dir, tmp_path):
    from pydantic import ValidationError

    d, _ = sasrec_dir
    with pytest.raises(ValidationError, match="API key is empty"):
        create_app(d, state_dir=tmp_path / "s", api_key="  ")


def test_serve_reads_the_key_from_a_file_and_refuses_an_empty_one(sasrec_dir, tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from chronorec.cli import app as cli_app

    d, _ = sasrec_dir
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.setdefault("app", app))
    keyfile = tmp_path / "key"
    keyfile.write_text("from-a-file\n")
    state = str(tmp_path / "s")
    res = CliRunner().invoke(
        cli_app, ["serve", "--model", str(d), "--state-dir", state, "--api-key-file", str(keyfile)]
    )
    assert res.exit_code == 0, res.output
    assert served["app"].state.service.api_key == "from-a-file"

    monkeypatch.setenv("CHRONOREC_API_KEY", "")
    res = CliRunner().invoke(cli_app, ["serve", "--model", str(d), "--state-dir", state])
    assert res.exit_code == 1 and "API key is empty" in res.output
    monkeypatch.delenv("CHRONOREC_API_KEY")
    keyfile.write_text("\n")
    res = CliRunner().invoke(
        cli_app, ["serve", "--model", str(d), "--state-dir", state, "--api-key-file", str(keyfile)]
    )
    assert res.exit_code == 1 and "first line is empty" in res.output


@pytest.fixture(scope="module")
def buyagain_dir(tmp_path_factory):
    from chronorec.models.baselines.buyagain import BuyAgain

    # integer user ids; user 13047 bought item 7 three times and item 8 once, item 1 is the best-seller
    rows = [(13047, 7, 1), (13047, 8, 2), (13047, 7, 3), (13047, 7, 4)]
    rows += [(u, 1, 10 + u) for u in range(1, 6)] + [(u, 2, 20 + u) for u in range(1, 4)]
    log = EventLog.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    d = tmp_path_factory.mktemp("models") / "buyagain"
    BuyAgain(decay=0.0).fit(log).save(d)
    return d


def test_recommend_echoes_the_user_id_as_given_and_buyagain_keeps_seen_items(buyagain_dir, tmp_path):
    with TestClient(create_app(buyagain_dir, state_dir=tmp_path / "state")) as c:
        as_text = post(c, "/recommend", {"user_id": "13047", "k": 3, "explain": True})
        as_number = post(c, "/recommend", {"user_id": 13047, "k": 3})
        assert as_text.status_code == as_number.status_code == 200
        assert as_text.json()["user_id"] == "13047" and as_number.json()["user_id"] == 13047
        # no filters in the request: a buy-again model ranks the customer's own items first
        assert items_of(as_text)[:2] == [7, 8] and items_of(as_number) == items_of(as_text)
        assert "bought 3 times, last 0 events ago" in as_text.json()["items"][0]["reason"]
        # saying so still drops them
        excluded = post(c, "/recommend", {"user_id": "13047", "k": 3, "filters": {"exclude_seen": True}})
        assert not {7, 8} & set(items_of(excluded)) and items_of(excluded)[0] == 1


# ---------------------------------------------------------------------- the route answered before routing
def test_guard_answers_its_endpoints_and_leaves_the_rest_to_the_application():
    import asyncio

    from starlette.responses import JSONResponse

    from chronorec.serving.metrics import ServiceMetrics
    from chronorec.serving.middleware import Guard

    seen = []

    async def inner(scope, receive, send):
        seen.append((await receive())["body"])
        await JSONResponse({"from": "app"})(scope, receive, send)

    async def endpoint(body, content_type):
        if body == b"busy":
            return 503, b'{"error":"x"}', [(b"retry-after", b"2")]
        return 200, b'{"from":"endpoint"}', ()

    guard = Guard(inner, ServiceMetrics({"kind": "t", "version": "v", "chronorec_version": ""}), 1000, {"/r": endpoint})

    def call(path, body, method="POST"):
        sent = []
        msgs = iter([{"type": "http.request", "body": body, "more_body": False}])

        async def receive():
            return next(msgs)

        async def send(m):
            sent.append(m)

        scope = {"type": "http", "method": method, "path": path, "headers": []}
        asyncio.run(guard(scope, receive, send))
        return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))

    assert call("/r", b"anything") == (200, {"from": "endpoint"}) and seen == []
    assert call("/r", b"busy") == (503, {"error": "x"}) and seen == []
    assert call("/r", b"", method="GET") == (405, {"error": "Method Not Allowed", "field": None}) and seen == []
    assert call("/elsewhere", b"fast") == (200, {"from": "app"}) and seen == [b"fast"]


def test_recommend_has_one_entrance_for_valid_and_invalid_requests(client):
    """Every POST /recommend, valid or not, is answered by the one endpoint before FastAPI's routing:
    valid requests with what the service builds, another content type, malformed JSON or an invalid
    field with the documented 400 / 422 in the shape of every route's errors."""
    import asyncio

    from chronorec.serving.schemas import RecommendRequest

    svc = client.app.state.service
    post(client, "/recommend", {"user_id": "u0001"})  # the middleware stack is built on the first request
    guard = client.app.middleware_stack
    while type(guard).__name__ != "Guard":
        guard = guard.app
    endpoint, taken = guard.endpoints["/recommend"], []

    async def spy(body, content_type):
        answer = await endpoint(body, content_type)
        taken.append(answer[0])
        return answer

    guard.endpoints["/recommend"] = spy
    bodies = [
        {"user_id": "u0001", "k": 3},
        {"history": ["i0003", "i0007"], "k": 4, "explain": False},
        {"user_id": "nobody", "k": 2, "filters": {"exclude_seen": False}},
    ]
    for body in bodies:
        r = post(client, "/recommend", body)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        want = asyncio.run(svc.recommend(RecommendRequest.model_validate(body)))
        assert r.json() == json.loads(json.dumps(want))
    assert taken == [200] * len(bodies)
    as_text = client.post("/recommend", content=json.dumps(bodies[0]), headers={"content-type": "text/plain"})
    assert as_text.status_code == 422 and as_text.json()["error"].startswith("body:")
    assert "Content-Type: application/json, not text/plain" in as_text.json()["error"]  # says what to send
    bad = client.post("/recommend", content=b'{"user_id": ', headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["field"] == "body" and "malformed JSON" in bad.json()["error"]
    wrong = post(client, "/recommend", {"user_id": "u0001", "k": 0})
    assert wrong.status_code == 422 and wrong.json()["error"].startswith("k:")
    assert wrong.json()["detail"][0]["field"] == "k"
    empty = client.post("/recommend", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 422 and empty.json()["error"] == "body: Field required"
    assert taken == [200] * len(bodies) + [422, 400, 422, 422]  # the same endpoint answered all of them
    assert client.get("/recommend").status_code == 405
    text = client.get("/metrics").text
    assert 'chronorec_requests_total{method="POST",route="/recommend",status="200"}' in text
