"""Small saved models and the tools to tamper with them, shared by the model-folder, checkpoint,
service and crash suites (tiny data: every fit takes well under a second)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorec.data.eventlog import EventLog
from chronorec.datasets.synthetic import make_sequences

SASREC = {"max_len": 8, "dim": 8, "layers": 1, "epochs": 1, "batch_size": 32, "progress": False, "seed": 0}


def small_log(seed: int = 0, n_users: int = 30) -> EventLog:
    return make_sequences(n_users=n_users, n_items=20, seed=seed, mean_length=8)


def events_csv(path: Path, seed: int = 0, n_users: int = 30) -> Path:
    """The small log as an events CSV (user_id, item_id, timestamp) for CLI runs."""
    rng = np.random.default_rng(seed)
    rows = [(u, int(rng.integers(1, 20)), 1_600_000_000 + 60 * j) for u in range(n_users) for j in range(8)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(path, index=False)
    return path


def save_popular(d: Path) -> Path:
    from chronorec.models.baselines.popular import MostPopular

    MostPopular().fit(small_log()).save(d)
    return d


def save_sasrec(d: Path, **params: Any) -> Path:
    from chronorec.models.sequential.sasrec import SASRec

    SASRec(**{**SASREC, **params}).fit(small_log()).save(d)
    return d


def scores(d: Path) -> np.ndarray:
    """A loaded model's scores for three fixed histories (to prove a model is unchanged)."""
    from chronorec.models.registry import load

    m = load(d, device="cpu")
    items = list(m.items.external_ids[:3])
    out = m.recommend_from_history([[items[0]], items[:2], items], k=5)
    return out[["item_id", "score"]].to_numpy()


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def edit_manifest(d: Path, change) -> None:
    """Apply ``change(manifest_dict)`` and write the manifest back."""
    m = json.loads((d / "manifest.json").read_text())
    change(m)
    (d / "manifest.json").write_text(json.dumps(m))


def forge(d: Path, name: str, content: bytes) -> None:
    """Replace ``d/name`` and fake its checksum in the manifest (a file corrupt behind a matching manifest)."""
    (d / name).write_bytes(content)
    edit_manifest(d, lambda m: m["files"].__setitem__(name, sha256(d / name)))
