"""The cold-item split of ML-1M (``benchmarks/cold_start.py``): a share of the catalogue made cold
(every event of those items removed from training), each user's last cold item as a cold case, and
the item texts (title, year, genres) a content model reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DATA_FILES = {
    "sequences": "ml-1m/ml-1m.txt",
    "item_map": "ml-1m/ml-1m_item_map.tsv",
    "movies": "ml-1m/movies.dat",
}


def item_texts(item_map: Path, movies: Path) -> dict[int, str]:
    """``"Title (Year). Genres: A, B"`` per remapped item id (items without a movie are left out)."""
    import pandas as pd

    imap = pd.read_csv(item_map, sep="\t", dtype={"item_id": np.int64, "movie_id": np.int64})
    by_movie: dict[int, str] = {}
    for line in movies.read_bytes().decode("latin-1").splitlines():
        parts = line.split("::")
        if len(parts) < 3 or not parts[0].strip().isdigit():
            continue
        genres = [g for g in parts[2].strip().split("|") if g]
        by_movie[int(parts[0])] = f"{parts[1].strip()}. Genres: {', '.join(genres)}"
    return {
        int(i): by_movie[int(m)]
        for i, m in zip(imap["item_id"].to_numpy(), imap["movie_id"].to_numpy(), strict=True)
        if int(m) in by_movie
    }


def prepare(data_dir: str | None, *, cold_share: float, seed: int, max_users: int | None) -> dict[str, Any]:
    """The full log (all items in the catalogue, with text), the cold items, the split of the
    cold-removed log and the cold cases."""
    import pandas as pd

    from chronorec.data import columns as C
    from chronorec.data.eventlog import EventLog
    from chronorec.data.idmap import IdMap
    from chronorec.datasets.formats import data_dir as resolve_data_dir
    from chronorec.datasets.formats import load_sequence_file
    from chronorec.evaluation.split import leave_one_out

    ddir = Path(resolve_data_dir(data_dir))
    paths = {k: ddir / v for k, v in DATA_FILES.items()}
    for k, p in paths.items():
        if not p.exists():
            raise SystemExit(f"cold-start benchmark: {k} file {p} not found (pass --data-dir or set CHRONOREC_DATA)")
    texts = item_texts(paths["item_map"], paths["movies"])
    raw = load_sequence_file(paths["sequences"]).to_external_frame()
    if max_users is not None:
        keep_users = pd.unique(raw[C.USER])[:max_users]
        raw = raw[raw[C.USER].isin(keep_users)]
    imap = pd.read_csv(paths["item_map"], sep="\t", dtype={"item_id": np.int64, "movie_id": np.int64})
    catalogue = np.union1d(imap["item_id"].to_numpy(), raw[C.ITEM].to_numpy().astype(np.int64))
    log = EventLog.from_frame(
        raw, items=IdMap(catalogue), item_names=pd.Series(texts, dtype=object), source=str(paths["sequences"])
    )
    n_items = log.n_items
    rng = np.random.default_rng(seed)
    n_cold = int(round(cold_share * n_items))
    cold_idx = np.sort(rng.choice(np.arange(1, n_items + 1), size=n_cold, replace=False))
    is_cold = np.zeros(n_items + 1, dtype=bool)
    is_cold[cold_idx] = True

    ev = log.events
    warm_log = log.with_events(ev[~is_cold[ev[C.ITEM_IDX].to_numpy()]])
    split = leave_one_out(warm_log)

    cases, seen_cold, (no_cold, dropped_short, dropped_empty) = cold_cases(log.sequences(), is_cold)
    cold_events = int(is_cold[ev[C.ITEM_IDX].to_numpy()].sum())
    info = {
        "data_files": {k: str(p) for k, p in paths.items()},
        "n_users": log.n_users,
        "n_items": n_items,
        "n_events": len(log),
        "n_items_with_text": int(sum(1 for i in log.item_names.index if 0 < int(i) <= n_items)),
        "n_cold_items": n_cold,
        "n_cold_items_with_events": int(np.unique(ev[C.ITEM_IDX].to_numpy()[is_cold[ev[C.ITEM_IDX].to_numpy()]]).size),
        "n_cold_events_removed": cold_events,
        "n_train_events": len(split.train),
        "n_cold_cases": len(cases),
        "users_without_cold_items": no_cold,
        "cold_cases_dropped_position_lt_3": dropped_short,
        "cold_cases_dropped_empty_input": dropped_empty,
        "n_warm_test_cases": len(split.test),
        "max_users": max_users,
        "cold_share": cold_share,
        "seed": seed,
        "example_cold_items": [str(t) for t in log.item_name(cold_idx[:5])],
    }
    return {"log": log, "split": split, "cases": cases, "is_cold": is_cold, "seen_cold": seen_cold, "info": info}


def cold_cases(store: Any, is_cold: np.ndarray) -> tuple[Any, dict[int, np.ndarray], tuple[int, int, int]]:
    """Each user's last cold item as a cold case (input: the earlier items with cold items removed),
    the cold items each user saw before it, and the counts of users without cold items and of cases
    dropped (cold item at position < 3; no warm item before it)."""
    from chronorec.scoring.cases import EvalSet

    users, inputs, targets, seen_cold = [], [], [], {}
    no_cold = dropped_short = dropped_empty = 0
    for u in range(1, len(store.offsets) - 1):
        seq = store.items[store.offsets[u] : store.offsets[u + 1]]
        pos = np.flatnonzero(is_cold[seq])
        if len(pos) == 0:
            no_cold += 1
            continue
        p = int(pos[-1])
        if p < 3:
            dropped_short += 1
            continue
        before = seq[:p]
        hist = before[~is_cold[before]]
        if len(hist) == 0:
            dropped_empty += 1
            continue
        users.append(u)
        inputs.append(hist)
        targets.append(seq[p : p + 1])
        seen_cold[u] = before[is_cold[before]]
    cases = EvalSet.build(np.asarray(users, dtype=np.int64), inputs, targets, "cold")
    return cases, seen_cold, (no_cold, dropped_short, dropped_empty)
