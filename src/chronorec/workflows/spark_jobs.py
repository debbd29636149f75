"""Batch jobs on Spark: top-K for every user of a saved model, and per-user temporal features.

Spark is the first-class engine (docs/scale.md says why): the same job runs in local mode in the tests
and, given ``--master spark://...`` / ``yarn`` / ``k8s://...``, on a cluster unchanged; the model folder
and the data must then sit where every executor can read them (a shared file system or object store).

* :func:`topk_spark` — users are split over partitions; each Python worker loads the model folder's
  recommendation pipeline once (:func:`~chronorec.recommend.folder.pipeline_for`, with
  the folder's ``recommend.json``, cached per process) and ranks its partition through it in batches
  (``mapInPandas``), so the result equals :func:`topk_local`, the single-process path, user by user, and
  the lists of ``chronorec.load(dir).recommend``, ``chronorec recommend`` and the service.
* :func:`user_features_spark` — recency, frequency and inter-event gaps per user at a cut-off, strictly
  from the events before it: the same values as the columns of the same names in
  :func:`chronorec.temporal.features.feature_table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.errors import ConfigError

_PIPELINES: dict[str, Any] = {}  # model folder -> its recommendation pipeline, per Python worker process
FEATURES = ("n_events", "hours_since_last", "hours_since_first", "gap_mean_h", "gap_std_h", "gap_max_h", "gap_last_h")


def spark_session(master: str = "local[*]", app_name: str = "chronorec", **conf: str):
    """A Spark session (``master``: ``local[N]``, ``spark://host:7077``, ``yarn``, ``k8s://...``)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("batch jobs need Spark: pip install 'chronorec[spark]' (and Java 17+)") from None
    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {"spark.sql.execution.arrow.pyspark.enabled": "true", "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": "8", **conf}  # fmt: skip
    if master.startswith("local"):  # the workers run this interpreter (on a cluster: the executors' own
        import os  # Python, with chronorec installed there)
        import sys

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _pipeline(model_dir: str):
    if model_dir not in _PIPELINES:
        from chronorec.recommend.folder import ModelLists, pipeline_for

        _PIPELINES[model_dir] = ModelLists(pipeline_for(model_dir, device="cpu"))
    return _PIPELINES[model_dir]


def _recommend(pipe, users: list, k: int, exclude_seen: bool | None, batch: int) -> pd.DataFrame:
    parts = [
        pipe.model_lists(users[s : s + batch], None, k, exclude_seen=exclude_seen) for s in range(0, len(users), batch)
    ]
    return (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["user_id", "item_id", "score", "rank"])
    )


def model_users(model_dir: str | Path) -> np.ndarray:
    """External ids of every user a saved model knows (its training users)."""
    return pd.read_parquet(Path(model_dir) / "users.parquet").sort_values("internal_id")["external_id"].to_numpy()


def topk_local(model_dir: str | Path, users: Any = None, *, k: int = 10, exclude_seen: bool | None = None,
               batch: int = 2048) -> pd.DataFrame:  # fmt: skip
    """The single-process path: the folder's pipeline over ``users`` (default: every user of the model) in
    batches. ``exclude_seen`` None: the folder's ``recommend.json``, else the model's history protocol."""
    pipe = _pipeline(str(model_dir))
    users = model_users(model_dir) if users is None else np.asarray(users)
    return _recommend(pipe, users.tolist(), k, exclude_seen, batch)


def _numpy_text(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects: pandas 3 keeps text in Arrow arrays, which Spark's Arrow
    transfer refuses ("Cannot convert pyarrow.lib.ChunkedArray to pyarrow.lib.Array")."""
    text = [c for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype) and df[c].dtype != object]
    return df.astype(dict.fromkeys(text, object)) if text else df


def _spark_type(values: np.ndarray) -> str:
    return "long" if np.issubdtype(np.asarray(values).dtype, np.integer) else "string"


def topk_spark(spark, model_dir: str | Path, users: Any = None, *, k: int = 10, exclude_seen: bool | None = None,
               partitions: int | None = None, batch: int = 2048):  # fmt: skip
    """Top-``k`` of every user as a Spark DataFrame ``user_id, item_id, score, rank`` (lazy: write or
    collect it). ``users``: a Spark DataFrame with a ``user_id`` column, a list, or None for every user;
    ``exclude_seen`` as :func:`topk_local`."""
    path = str(Path(model_dir).resolve()) if "://" not in str(model_dir) else str(model_dir)
    item_ids = pd.read_parquet(Path(model_dir) / "items.parquet")["external_id"].to_numpy()
    if users is None or not hasattr(users, "rdd"):
        ids = model_users(model_dir) if users is None else np.asarray(users)
        users = spark.createDataFrame(pd.DataFrame({"user_id": ids}))
    user_type = dict(users.dtypes)["user_id"]
    user_type = "long" if user_type in ("bigint", "int") else "string"
    schema = f"user_id {user_type}, item_id {_spark_type(item_ids)}, score double, rank int"
    n = partitions or max(spark.sparkContext.defaultParallelism, 1)

    def score(frames):
        pipe = _pipeline(path)
        for pdf in frames:
            if len(pdf):
                out = _recommend(pipe, pdf["user_id"].tolist(), k, exclude_seen, batch)
                out = out[["user_id", "item_id", "score", "rank"]].astype({"score": "float64", "rank": "int32"})
                yield _numpy_text(out)

    return users.select("user_id").repartition(n).mapInPandas(score, schema)


def user_features_spark(events, cutoff: int, *, behaviors: list[str] | None = None):
    """Per-user features at ``cutoff`` (epoch seconds) from a Spark DataFrame ``user_id, timestamp[, behavior]``
    (events at or after the cut-off are ignored): :data:`FEATURES` plus ``n_<b>`` and ``hours_since_last_<b>``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ev = events.filter(F.col("timestamp") < F.lit(int(cutoff)))
    if "row" not in ev.columns:
        ev = ev.withColumn("row", F.monotonically_increasing_id())
    w = Window.partitionBy("user_id").orderBy("timestamp", "row")
    ev = ev.withColumn("gap", (F.col("timestamp") - F.lag("timestamp").over(w)) / 3600.0)
    ev = ev.withColumn("seq", F.row_number().over(w))
    hours = lambda c: (F.lit(int(cutoff)) - c) / 3600.0  # noqa: E731
    aggs = [
        F.count(F.lit(1)).cast("double").alias("n_events"),
        hours(F.max("timestamp")).alias("hours_since_last"),
        hours(F.min("timestamp")).alias("hours_since_first"),
        F.avg("gap").alias("gap_mean_h"),
        F.stddev_pop("gap").alias("gap_std_h"),
        F.max("gap").alias("gap_max_h"),
        F.max_by("gap", "seq").alias("gap_last_h"),
    ]
    if behaviors is None and "behavior" in ev.columns:
        behaviors = sorted(r[0] for r in ev.select("behavior").distinct().collect() if r[0] is not None)
    for b in behaviors or []:
        is_b = F.col("behavior") == F.lit(b)
        aggs.append(F.sum(F.when(is_b, 1.0).otherwise(0.0)).alias(f"n_{b}"))
        aggs.append(hours(F.max(F.when(is_b, F.col("timestamp")))).alias(f"hours_since_last_{b}"))
    return ev.groupBy("user_id").agg(*aggs).withColumn("cutoff", F.lit(int(cutoff)))


__all__ = ["FEATURES", "model_users", "spark_session", "topk_local", "topk_spark", "user_features_spark"]
