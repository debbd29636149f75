"""benchmarks/cold_start.py on a tiny synthetic ML-1M lookalike (same file formats, no shared data): the
script runs as a command; its split is chronorec.testing.cold_start's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chronorec.testing.cold_start import prepare

ROOT = Path(__file__).resolve().parents[1]
GENRES = ["Comedy", "Horror", "Western", "Documentary"]
N_ITEMS = 80  # 20 per genre


def _write_data(root: Path) -> None:
    """Users stay inside one genre; item text = nonsense title + year + genre (genre = the only signal)."""
    rng = np.random.default_rng(0)
    d = root / "ml-1m"
    d.mkdir(parents=True)
    movie_ids = 1000 + 3 * np.arange(1, N_ITEMS + 1)  # MovieIDs differ from the remapped item ids
    genre = (np.arange(1, N_ITEMS + 1) - 1) % len(GENRES)
    lines = []
    for u in range(1, 161):
        g = u % len(GENRES)
        pool = np.flatnonzero(genre == g) + 1
        seq = rng.choice(pool, size=14, replace=False)
        lines.append(" ".join(map(str, [u, *seq])))
    (d / "ml-1m.txt").write_text("\n".join(lines) + "\n")
    (d / "ml-1m_item_map.tsv").write_text(
        "item_id\tmovie_id\n" + "".join(f"{i}\t{m}\n" for i, m in zip(range(1, N_ITEMS + 1), movie_ids, strict=True))
    )
    words = ["".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 6)) for _ in range(N_ITEMS)]
    movies = [
        f"{m}::{w.title()} ({1990 + i % 10})::{GENRES[genre[i]]}"
        for i, (m, w) in enumerate(zip(movie_ids, words, strict=True))
    ]
    movies.append("99999::Unused Film (1950)::Drama|War")  # a movie not in the item map
    (d / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cold")
    _write_data(tmp / "data")
    out = tmp / "res" / "cold.json"
    src = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "CHRONOREC_NO_PROGRESS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/cold_start.py",
            *["--data-dir", str(tmp / "data"), "--out", str(out), "--cold-share", "0.25", "--in-process"],
            *["--models", "popular,sasrec,contentrec", "--no-progress", "--threads", "1"],
            *["--set", "sasrec.epochs=4", "--set", "sasrec.max_len=14", "--set", "sasrec.amp=false"],
            *["--set", "contentrec.epochs=15", "--set", "contentrec.max_len=14", "--set", "contentrec.amp=false"],
            *["--set", "contentrec.content_dim=64", "--set", "contentrec.dim=32", "--set", "sasrec.dim=32"],
            *["--set", "contentrec.batch_size=32", "--set", "contentrec.patience=100"],
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_cold_items_cases_and_outputs(result):
    out = result
    res = json.loads(out.read_text())
    assert res["n_items"] == N_ITEMS and res["n_items_with_text"] == N_ITEMS
    assert res["n_cold_items"] == 20
    # every user's last cold item at position >= 3, unless dropped; counts add up
    dropped = res["cold_cases_dropped_position_lt_3"] + res["cold_cases_dropped_empty_input"]
    assert res["n_cold_cases"] + dropped + res["users_without_cold_items"] == 160
    assert res["n_cold_events_removed"] + res["n_train_events"] + 2 * res["n_warm_test_cases"] == 160 * 14
    assert res["example_cold_items"][0].endswith(tuple(f"Genres: {g}" for g in GENRES))
    runs = {r["model"]: r for r in res["runs"]}
    assert list(runs) == ["popular", "sasrec", "contentrec"]
    for r in runs.values():
        assert r["checks"]["train_count_of_cold_items"] == 0
        assert r["cold_full"]["n_users"] == res["n_cold_cases"]
        assert 1 <= r["cold_only"]["median_rank"] <= r["cold_full"]["median_rank"] <= N_ITEMS
    assert runs["contentrec"]["checks"]["keep_of_cold_items"] == 0
    assert runs["contentrec"]["checks"]["share_of_cold_items_with_content"] == 1
    # popular: cold items all count 0 and tie last; the content model ranks them by genre
    assert runs["popular"]["cold_full"]["HR@10"] == 0 and runs["popular"]["cold_only"]["median_rank"] >= 10
    data = prepare(res["data_files"]["sequences"].rsplit("/ml-1m/", 1)[0], cold_share=0.25, seed=0, max_users=None)
    cold_ext = data["log"].items.to_external(np.flatnonzero(data["is_cold"]))
    per_genre = np.bincount((cold_ext - 1) % len(GENRES), minlength=len(GENRES))
    assert per_genre.sum() == 20
    # the target's genre holds at most max(per_genre) cold candidates: content ranks within it
    assert runs["contentrec"]["cold_only"]["median_rank"] <= per_genre.max()
    assert runs["contentrec"]["cold_only"]["NDCG@10"] > runs["sasrec"]["cold_only"]["NDCG@10"] + 0.1
    assert runs["contentrec"]["cold_full"]["NDCG@10"] > runs["popular"]["cold_full"]["NDCG@10"] + 0.1
    md = out.with_suffix(".md").read_text()
    assert [ln.split(" |")[0] for ln in md.splitlines() if ln.startswith("| ")][1:] == [
        "| popular",
        "| sasrec",
        "| contentrec",
    ]
    assert "cold-only HR@10" in md
    assert "git_commit" in res["provenance"] and res["command"].startswith("python benchmarks/cold_start.py")
