"""A request's context reaches a model trained with it, through the library pipeline, the service and the
batch command; a model that ignores context says so in its warnings instead of answering silently."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from chronorec.data import columns as C
from chronorec.data.eventlog import EventLog
from chronorec.models.baselines.itemknn import ItemKNN
from chronorec.models.sequential.sasrec import SASRec
from chronorec.recommend import RecommendOptions, RecommendPipeline
from chronorec.recommend.context import conditioned_features, request_context

N_ITEMS = 12


def _successors() -> dict[str, np.ndarray]:
    """The planted rule: mobile events are items 0-5, desktop events items 6-11; after item i comes the
    item at position (i + 1) mod 6 of the next event's device's half of the catalogue."""
    nxt = (np.arange(N_ITEMS) + 1) % (N_ITEMS // 2)
    return {"mobile": nxt, "desktop": nxt + N_ITEMS // 2}


def _device_log(n_users: int = 120, length: int = 10, seed: int = 0) -> EventLog:
    """Users walk the catalogue; each event's device is random and decides which item comes next."""
    rng = np.random.default_rng(seed)
    succ = _successors()
    rows = []
    for u in range(n_users):
        i = int(rng.integers(N_ITEMS))
        for t in range(length):
            device = "mobile" if rng.random() < 0.5 else "desktop"
            if t:
                i = int(succ[device][i])
            rows.append((f"u{u}", f"i{i}", 1_700_000_000 + 600 * t, device))
    df = pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.TIME, "device"])
    return EventLog.from_frame(df, context_columns=("device",))


@pytest.fixture(scope="module")
def log():
    return _device_log()


@pytest.fixture(scope="module")
def context_model(log):
    params = {"epochs": 6, "dim": 32, "max_len": 8, "lr": 1e-2, "batch_size": 32, "progress": False, "seed": 0}
    return SASRec(use_context=True, request_context=True, context_features=["device"], **params).fit(log)


@pytest.fixture(scope="module")
def saved(context_model, log, tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    context_model.save(d / "ctx")
    ItemKNN().fit(log).save(d / "knn")
    return d


def test_the_device_decides_the_ranking_in_the_library(context_model):
    pipe = RecommendPipeline(context_model)
    succ = _successors()
    hits = 0
    for i in range(N_ITEMS):
        for device in ("mobile", "desktop"):
            history = pipe.known_items([f"i{i}"], [])
            lst = pipe.rank(np.zeros(1, np.int64), [history], RecommendOptions(k=1), contexts=[{"device": device}])[0]
            hits += pipe.external(lst.items).tolist() == [f"i{succ[device][i]}"]
            assert lst.warnings == []
    assert hits >= 22, hits  # the planted successor of the request's device, for (nearly) every item
    assert conditioned_features(context_model) == ["device"]


def test_unknown_keys_and_values_are_named(context_model):
    coded, warn = request_context(context_model, {"device": "tablet", "weather": "rain"})
    assert coded == {"next": {"device": 0}}
    assert any("['weather'] unknown to the model" in w for w in warn)
    assert any("device='tablet'" in w and "never seen in training" in w for w in warn)


def _client(model_dir, state_dir):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from chronorec.serving.app import create_app

    return TestClient(create_app(model_dir, state_dir=state_dir))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_service_passes_the_context_to_a_context_model(saved, tmp_path):
    succ = _successors()
    with _client(saved / "ctx", tmp_path / "s1") as c:
        got = {}
        for device in ("mobile", "desktop"):
            r = c.post("/recommend", json={"history": ["i3"], "k": 3, "context": {"device": device}}).json()
            got[device] = [x["item_id"] for x in r["items"]]
            assert r["warnings"] == [], r["warnings"]
        assert got["mobile"][0] == f"i{succ['mobile'][3]}" and got["desktop"][0] == f"i{succ['desktop'][3]}"
        # a known user: the stored history context stays, the request's device still decides
        r = c.post("/recommend", json={"user_id": "u0", "k": 1, "context": {"device": "tablet", "os": "x"}}).json()
        assert any("never seen in training" in w for w in r["warnings"])
        assert any("['os'] unknown to the model" in w for w in r["warnings"])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_model_without_context_says_it_ignored_it(saved, tmp_path):
    with _client(saved / "knn", tmp_path / "s2") as c:
        a = c.post("/recommend", json={"history": ["i3"], "k": 3, "context": {"device": "mobile"}}).json()
        b = c.post("/recommend", json={"history": ["i3"], "k": 3, "context": {"device": "desktop"}}).json()
        plain = c.post("/recommend", json={"history": ["i3"], "k": 3}).json()
    assert a["items"] == b["items"]
    assert len(a["warnings"]) == 1 and "ignored by the model" in a["warnings"][0]
    assert "itemknn model was trained without context" in a["warnings"][0]
    assert plain["warnings"] == []


def test_cli_batch_recommend_prints_the_context_warning(saved, tmp_path):
    from typer.testing import CliRunner

    from chronorec.cli.main import app

    res = CliRunner().invoke(
        app, ["recommend", "--model", str(saved / "knn"), "--users", "u1,u2", "-k", "2", "--context", "device=mobile"]
    )
    assert res.exit_code == 0, res.output
    assert "ignored by the model" in res.output
    res = CliRunner().invoke(
        app, ["recommend", "--model", str(saved / "ctx"), "--history", "i3", "-k", "1", "--context", "device=desktop"]
    )
    assert res.exit_code == 0, res.output
    assert f"i{_successors()['desktop'][3]}" in res.stdout.splitlines()[1]
