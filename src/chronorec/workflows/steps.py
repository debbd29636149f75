"""The steps the use cases share: resolve a named dataset, load events, split, fit on a split.

:mod:`chronorec.workflows.run` re-exports these with the use cases built on them; they live apart
so that :mod:`chronorec.workflows.experiment` (which the use cases call) can use them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chronorec.errors import ConfigError


# ---------------------------------------------------------------------- data
def resolve_dataset(name: str, *, data_dir: str | Path | None = None, seed: int = 0, frame: bool = False) -> Any:
    """A named dataset: an EventLog, or with ``frame`` an event frame (temporal features, behaviour models).

    Names: ``synthetic`` (the planted e-commerce log, drawn with ``seed``), the files of
    :data:`chronorec.datasets.formats.DATASETS` under ``data_dir`` (``ml-1m``, ``ml-1m-full``,
    ``beauty``, ``ml-100k``) and, as frames, ``taobao``
    (:data:`chronorec.datasets.temporal.TEMPORAL_DATASETS`). Every command's ``--dataset`` goes
    through here.
    """
    key = name.lower()
    if frame:
        from chronorec.datasets.formats import DATASETS
        from chronorec.datasets.temporal import TEMPORAL_DATASETS, event_frame, load_temporal_dataset

        if key in DATASETS and key not in TEMPORAL_DATASETS:
            return event_frame(resolve_dataset(key, data_dir=data_dir, seed=seed))
        return load_temporal_dataset(key, data_dir=data_dir, seed=seed)
    if key == "synthetic":
        from chronorec.datasets.synthetic import make_ecommerce_log

        return make_ecommerce_log(seed=seed)
    from chronorec.datasets.formats import load_dataset

    return load_dataset(name, data_dir=data_dir)


def load_events(cfg: Any) -> Any:
    """The EventLog of a config's data section (a whole config, whose seed draws the synthetic set, or a
    :class:`~chronorec.workflows.run_config.DataConfig`): a named dataset, an ingest / store folder or an events file."""
    from chronorec.data.eventlog import EventLog

    d = getattr(cfg, "data", cfg)
    if d.dataset is not None:
        return resolve_dataset(d.dataset, data_dir=d.data_dir, seed=getattr(cfg, "seed", 0))
    if d.path is None:
        raise ConfigError("no data: give --data PATH or --dataset NAME (or data.path / data.dataset in --config)")
    p = Path(d.path)
    if p.is_dir() and ((p / "eventlog.json").exists() or (p / "store.json").exists()):  # ingest / store build
        return EventLog.load(p)
    from chronorec.data import read_events

    return read_events(p, **d.read_options())


def load_event_frame(cfg: Any, *, behavior_col: str | None, value_col: str | None, category_col: str | None) -> Any:
    """The event frame (one row per event, external ids) of a config's data section: a named dataset
    (:func:`resolve_dataset`) or an events file / ingest folder read with these optional columns."""
    from chronorec.datasets.temporal import read_event_frame

    d = cfg.data
    if d.dataset is not None:
        return resolve_dataset(d.dataset, data_dir=d.data_dir, seed=cfg.seed, frame=True)
    if d.path is None:
        raise ConfigError("give --data PATH or --dataset NAME")
    return read_event_frame(Path(d.path), d.user_col, d.item_col, d.time_col, behavior_col, value_col, category_col)


def data_label(cfg: Any) -> str:
    """How results name the data: ``dataset:NAME`` (with its folder when given) or the events path."""
    d = getattr(cfg, "data", cfg)
    if d.dataset is not None:
        return f"dataset:{d.dataset}" + (f" (data_dir={d.data_dir})" if d.data_dir else "")
    return str(d.path)


def describe_log(log: Any) -> dict[str, Any]:
    """The size and source of an event log, as results record it."""
    return {"n_events": len(log), "n_users": log.n_users, "n_items": log.n_items, "source": log.source}


def make_split(log: Any, cfg: Any) -> Any:
    """The evaluation split of ``log`` a config's split section asks for (a whole config or a
    :class:`~chronorec.workflows.run_config.SplitConfig`): leave-one-out, global temporal, session or next-basket."""
    from chronorec.evaluation.split import leave_one_out, temporal_split
    from chronorec.workflows.run_config import SplitConfig

    s = getattr(cfg, "split", cfg)
    if s.protocol == "loo":
        return leave_one_out(log, min_events=s.min_events)
    if s.protocol == "session":
        from chronorec.evaluation.split import session_split

        return session_split(log)
    if s.protocol == "next-basket":
        from chronorec.evaluation.basket import next_basket_split

        return next_basket_split(log, min_baskets=s.min_baskets)
    return temporal_split(
        log, test_cutoff=SplitConfig.to_seconds(s.cutoff), validation_cutoff=SplitConfig.to_seconds(s.validation_cutoff)
    )


def fit_on_split(model: Any, split: Any, log: Any = None) -> Any:
    """Fit ``model`` on ``split.train`` (validation for early stopping) and record the split with it;
    with ``split=None`` on all of ``log`` (no held-out data). Returns the model."""
    if split is None:
        return model.fit(log).record_split(None)
    return model.fit(split.train, validation=split.validation).record_split(split)


def parse_value(text: str) -> Any:
    """A ``key=value`` option's value, read as plain YAML (numbers, lists, ...): tags such as
    ``!!python/object`` are refused, never constructed."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        first = " ".join(str(e).split())[:200]
        raise ConfigError(
            f"cannot read the value {text[:80]!r}: {first} (plain values only: numbers, text, lists)"
        ) from None


def json_default(o: Any) -> Any:
    """``json.dumps``' fallback for results: numpy scalars and arrays as numbers and lists, the rest as text."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
