"""Batch jobs on Spark in local mode: top-K of every user equals the single-process path, and the per-user
features equal those of chronorec.temporal.features.feature_table at the same cut-off."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from chronorec.datasets.synthetic import make_ecommerce_log  # noqa: E402
from chronorec.models import registry  # noqa: E402
from chronorec.workflows import spark_jobs  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    session = spark_jobs.spark_session("local[2]", "chronorec-tests", **{"spark.driver.memory": "1g"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def log():
    return make_ecommerce_log(n_users=150, n_items=60, mean_length=20, seed=4, span_days=21)


@pytest.mark.parametrize("kind,params", [("sasrec", {"epochs": 1, "dim": 16, "max_len": 20, "progress": False}),
                                         ("popular", {})])  # fmt: skip
def test_spark_topk_equals_the_single_process_path(spark, log, tmp_path, kind, params):
    model = registry.get(kind)(**params).fit(log)
    model.save(tmp_path / "m")
    local = spark_jobs.topk_local(tmp_path / "m", k=10, batch=64)
    dist = spark_jobs.topk_spark(spark, tmp_path / "m", k=10, partitions=2, batch=64).toPandas()
    assert len(local) == len(dist) == 10 * log.n_users
    key = ["user_id", "rank"]
    a, b = local.sort_values(key).reset_index(drop=True), dist.sort_values(key).reset_index(drop=True)
    assert (a["user_id"].to_numpy() == b["user_id"].to_numpy()).all()
    assert (a["item_id"].to_numpy() == b["item_id"].to_numpy()).all()
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), rtol=1e-5, atol=1e-6)
    # a subset of users, given as a Spark DataFrame
    some = spark.createDataFrame(pd.DataFrame({"user_id": local["user_id"].unique()[:7]}))
    assert spark_jobs.topk_spark(spark, tmp_path / "m", some, k=3).count() == 21


def test_spark_features_equal_feature_table(spark, log):
    from chronorec.datasets.temporal import event_frame
    from chronorec.temporal.features import feature_table

    ev = event_frame(log)
    cutoff = int(ev["timestamp"].quantile(0.7))
    ref = feature_table(ev, cutoffs=[cutoff], profiles=False).set_index("entity_id").sort_index()
    sdf = spark.createDataFrame(ev[["user_id", "timestamp", "behavior"]].assign(row=np.arange(len(ev))))
    got = spark_jobs.user_features_spark(sdf, cutoff).toPandas().set_index("user_id").sort_index()
    assert list(got.index) == list(ref.index) and len(got) > 100
    behs = sorted(ev["behavior"].unique())
    cols = [*spark_jobs.FEATURES, *(f"n_{b}" for b in behs), *(f"hours_since_last_{b}" for b in behs)]
    for c in cols:
        np.testing.assert_allclose(got[c].to_numpy(float), ref[c].to_numpy(float), rtol=1e-9, atol=1e-9, err_msg=c)
