"""One path to lists: the library (``chronorec.load(dir).recommend``), ``chronorec recommend``, the
service and the batch job (single process and Spark) rank through the model folder's recommendation
pipeline, so a ``recommend.json`` that changes the lists changes them everywhere alike."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import chronorec
from chronorec.datasets.synthetic import make_sequences
from chronorec.models.sequential.sasrec import SASRec
from chronorec.recommend import RecommendPipeline
from chronorec.recommend.folder import ModelLists
from chronorec.workflows import spark_jobs

K = 10


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A small SASRec saved with a recommend.json that keeps seen items and denies the two most popular."""
    torch.set_num_threads(1)
    log = make_sequences(n_users=40, n_items=30, seed=11, mean_length=10)
    model = SASRec(epochs=1, dim=8, max_len=10, progress=False, history="exclude").fit(log)
    d = tmp_path_factory.mktemp("one-path") / "sasrec"
    model.save(d)
    top = log.items.to_external(np.argsort(-model.popularity, kind="stable")[:2]).tolist()
    (d / "recommend.json").write_text(json.dumps({"filters": {"exclude_seen": False, "deny": top}}))
    users = log.users.external_ids[:8].tolist()
    return d, model, users, top


def _lists(df: pd.DataFrame, users: list) -> dict:
    return {u: [str(x) for x in df.loc[df["user_id"] == u].sort_values("rank")["item_id"]] for u in users}


def test_the_settings_change_the_lists(folder):
    d, model, users, top = folder
    plain = _lists(model.recommend(users, K), users)  # fitted here: no pipeline attached, defaults
    assert plain == _lists(
        ModelLists(RecommendPipeline(model)).model_lists(users, None, K), users
    )  # the core is the pipeline's
    loaded = _lists(chronorec.load(d).recommend(users, K), users)
    assert loaded != plain
    assert not any(set(top) & set(x) for x in loaded.values())


def test_library_cli_service_and_batch_give_the_same_lists(folder, tmp_path):
    from typer.testing import CliRunner

    from chronorec.cli import app

    d, _, users, _ = folder
    library = _lists(chronorec.load(d).recommend(users, K), users)

    out = tmp_path / "cli.csv"
    args = ["recommend", "-m", str(d), "--users", ",".join(users), "-k", str(K), "-o", str(out)]
    res = CliRunner().invoke(app, args)  # the folder's recommend.json, as everywhere else
    assert res.exit_code == 0, res.output
    cli = _lists(pd.read_csv(out, dtype={"user_id": str, "item_id": str}), users)

    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from chronorec.serving.app import create_app

    with TestClient(create_app(d, state_dir=tmp_path / "state")) as c:
        service = {
            u: [str(x["item_id"]) for x in c.post("/recommend", json={"user_id": u, "k": K}).json()["items"]]
            for u in users
        }

    local = _lists(spark_jobs.topk_local(d, users, k=K, batch=3), users)
    assert library == cli == service == local
    for u in users:  # byte-identical item ids
        assert [x.encode() for x in library[u]] == [x.encode() for x in service[u]]


def test_the_spark_job_gives_the_same_lists(folder):
    pytest.importorskip("pyspark")
    d, _, users, _ = folder
    spark = spark_jobs.spark_session("local[1]", "chronorec-one-path", **{"spark.driver.memory": "1g"})
    try:
        dist = spark_jobs.topk_spark(spark, d, users, k=K, partitions=2, batch=3).toPandas()
    finally:
        spark.stop()
    assert _lists(dist, users) == _lists(chronorec.load(d).recommend(users, K), users)


def test_recommend_from_history_ranks_through_the_attached_pipeline(folder):
    d, model, users, top = folder
    loaded = chronorec.load(d)
    hist = [model.store.user_items(1).tolist()]
    ext = [model.items.to_external(np.asarray(hist[0])).tolist() + ["never-seen"]]
    got = loaded.recommend_from_history(ext, K, user_ids=["x"])
    assert not set(top) & set(got["item_id"])
    assert got.attrs["warnings"] and "unknown item" in got.attrs["warnings"][0]
    with pytest.raises(ValueError, match="context has"):
        loaded.recommend_from_history(ext, K, context=[None, None])


def test_idmap_owns_the_one_conversion():
    from chronorec.data.idmap import IdMap
    from chronorec.recommend.items import to_internal

    ints, text = IdMap([7, 12, 3]), IdMap(["a", "12"])
    assert ints.to_internal(["12", 12, np.int64(3), True, "x", 2**70]).tolist() == [2, 2, 3, 0, 0, 0]
    assert text.to_internal([12, "a", None]).tolist() == [2, 1, 0]
    assert ints.to_internal(["7"]).tolist() == [1] and text.to_internal(np.array([12])).tolist() == [2]
    assert to_internal(ints, ["3"]).tolist() == ints.to_internal(["3"]).tolist()
    with pytest.raises(KeyError):
        ints.to_internal([99], strict=True)
