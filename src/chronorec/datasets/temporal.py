"""Event frames for the temporal side: the named datasets and their local time.

An *event frame* is a plain :class:`pandas.DataFrame` with ``user_id, item_id, timestamp`` (epoch
seconds, int64) and optionally ``behavior``, ``value`` and ``category``, sorted by time
(:func:`event_frame`). The temporal features, behaviour prediction and forecasting read these.

* :func:`load_temporal_dataset`: ``taobao`` (928 complete users), ``ml-100k`` (ratings as ``rate``
  events) or ``synthetic`` (the planted e-commerce log).
* :func:`read_event_frame`: any events file or ingest folder.
* :func:`utc_offset_hours`: the one place that knows each named dataset's local time (Taobao is
  Beijing time, UTC+8), used to align days to local midnight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data import columns as C
from chronorec.errors import ConfigError, IngestError

CATEGORY = "category"

TAOBAO_FILES = ("taobao-userbehavior/UserBehavior_first814users.csv", "taobao-userbehavior/UserBehavior_114users.csv")
TAOBAO_START = 1511539200  # 2017-11-25 00:00 Beijing time
TAOBAO_END = 1512316800  # 2017-12-04 00:00 Beijing time

#: Hours added to UTC to get each named dataset's local time (datasets not listed: UTC).
UTC_OFFSETS: dict[str, float] = {"taobao": 8.0}

TEMPORAL_DATASETS = ("taobao", "ml-100k", "synthetic")

__all__ = [
    "CATEGORY",
    "TAOBAO_END",
    "TAOBAO_FILES",
    "TAOBAO_START",
    "TEMPORAL_DATASETS",
    "UTC_OFFSETS",
    "event_frame",
    "load_taobao",
    "load_temporal_dataset",
    "read_event_frame",
    "utc_offset_hours",
]


def utc_offset_hours(name: str | None) -> float:
    """Hours added to UTC to get the local time of the named dataset (``8.0`` for ``taobao``; ``0.0``
    for any other name or ``None``)."""
    return UTC_OFFSETS.get((name or "").lower(), 0.0)


def event_frame(log: Any) -> pd.DataFrame:
    """The events of an :class:`~chronorec.data.eventlog.EventLog` (or a frame) with canonical columns.

    A frame is returned with ``timestamp`` as int64 and rows stably sorted by time; an EventLog
    is converted with its external ids (a ``category`` context column is kept if present).
    """
    df = log if isinstance(log, pd.DataFrame) else log.to_external_frame()
    for col in (C.USER, C.TIME):
        if col not in df.columns:
            raise IngestError(f"event frame needs a {col!r} column (has {list(df.columns)})")
    df = df.copy()
    df[C.TIME] = df[C.TIME].to_numpy().astype(np.int64)
    if C.BEHAVIOR in df.columns:
        df[C.BEHAVIOR] = df[C.BEHAVIOR].astype(str)
    return df.sort_values(C.TIME, kind="stable").reset_index(drop=True)


def load_taobao(directory: str | Path | None = None, *, clip: bool = True) -> pd.DataFrame:
    """The 928 complete Taobao users (first 814 + 114 users files) as an event frame.

    Columns ``user_id, item_id, category, behavior, timestamp``. With ``clip`` the few outlier
    timestamps outside the dataset's nine days (2017-11-25 .. 2017-12-03, Beijing time) are dropped
    (35 rows in the 814-user file), as the dataset's description prescribes.
    """
    from chronorec.datasets.formats import data_dir

    d = data_dir(directory)
    names = [C.USER, C.ITEM, CATEGORY, C.BEHAVIOR, C.TIME]
    dtypes = {C.USER: np.int64, C.ITEM: np.int64, CATEGORY: np.int64, C.BEHAVIOR: str, C.TIME: np.int64}
    frames = []
    for rel in TAOBAO_FILES:
        p = d / rel
        if not p.exists():
            raise FileNotFoundError(f"Taobao file {p} not found (see shared/data/README.md)")
        frames.append(pd.read_csv(p, header=None, names=names, dtype=dtypes))
    df = pd.concat(frames, ignore_index=True)
    if clip:
        df = df[(df[C.TIME] >= TAOBAO_START) & (df[C.TIME] < TAOBAO_END)]
    return event_frame(df)


def load_temporal_dataset(name: str, *, data_dir: str | Path | None = None, seed: int = 0) -> pd.DataFrame:
    """A named event frame: ``taobao`` (928 users), ``ml-100k`` (ratings as ``rate`` events with
    the rating as value), or ``synthetic`` (the planted e-commerce log)."""
    key = name.lower()
    if key == "taobao":
        return load_taobao(data_dir)
    if key == "ml-100k":
        from chronorec.datasets.formats import load_dataset

        df = event_frame(load_dataset("ml-100k", data_dir=data_dir))
        df[C.BEHAVIOR] = "rate"
        return df
    if key == "synthetic":
        from chronorec.datasets.synthetic import make_ecommerce_log

        return event_frame(make_ecommerce_log(seed=seed, return_frame=True))
    raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(TEMPORAL_DATASETS)}")


def read_event_frame(
    data: Path,
    user_col: str,
    item_col: str,
    time_col: str,
    behavior_col: str | None,
    value_col: str | None,
    category_col: str | None,
) -> pd.DataFrame:
    """An event frame from a file (via :func:`chronorec.data.read_events`) or an ingest folder."""
    from chronorec.data import EventLog, read_events

    if data.is_dir() and (data / "eventlog.json").exists():
        return event_frame(EventLog.load(data))
    log = read_events(
        data,
        user_col=user_col,
        item_col=item_col,
        time_col=time_col,
        behavior_col=behavior_col,
        value_col=value_col,
        context_cols=[category_col] if category_col else (),
    )
    df = event_frame(log)
    if category_col:
        df = df.rename(columns={category_col: CATEGORY})
    return df
