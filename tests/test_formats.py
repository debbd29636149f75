"""Tests for chronorec.datasets.formats (small generated files; real data only if present)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chronorec.data.ingest import IngestError
from chronorec.datasets import formats
from chronorec.datasets.formats import (
    data_dir,
    dataset_path,
    load_dataset,
    load_ml1m_item_names,
    load_movielens,
    load_movielens_items,
    load_sequence_file,
)


def test_sequence_file(tmp_path):
    (tmp_path / "seq.txt").write_text("1 10 11 12\n\n3 11 13\n2 12\n")
    log = load_sequence_file(tmp_path / "seq.txt")
    out = log.to_external_frame()
    assert out["user_id"].tolist() == [1, 1, 1, 3, 3, 2]
    assert out["item_id"].tolist() == [10, 11, 12, 11, 13, 12]
    assert out["timestamp"].tolist() == [0, 1, 2, 0, 1, 0]
    assert out["user_id"].dtype == np.int64 and out["item_id"].dtype == np.int64
    assert log.events["row"].tolist() == [1, 1, 1, 3, 3, 4]
    assert (log.n_users, log.n_items, len(log)) == (3, 4, 6)
    store = log.sequences()
    assert store.user_items(1).tolist() == [1, 2, 3]
    assert store.user_items(2).tolist() == [2, 4]
    assert log.report.rows_read == 6 and log.report.balanced


def test_sequence_file_user_on_two_lines_and_names(tmp_path):
    (tmp_path / "seq.txt").write_text("5 1 2\n5 3\n")
    log = load_sequence_file(tmp_path / "seq.txt", item_names={1: "one", 3: "three"})
    assert log.to_external_frame()["timestamp"].tolist() == [0, 1, 2]
    assert log.item_name(np.array([1, 2, 3])).tolist() == ["one", "2", "three"]


def test_sequence_file_errors(tmp_path):
    (tmp_path / "bad.txt").write_text("1 2 3\n2 x 4\n")
    with pytest.raises(IngestError, match="line 2"):
        load_sequence_file(tmp_path / "bad.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(IngestError, match="no data rows"):
        load_sequence_file(tmp_path / "empty.txt")


def test_u_data(tmp_path):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n")
    (tmp_path / "u.item").write_bytes(
        "242|Kolya (1996)|24-Jan-1997||http://x|0|0\n302|L.A. Confidential (1997)|01-Jan-1997||http://y|0|1\n"
        "377|Caf\u00e9 (1994)|01-Jan-1994||http://z|1|0\n".encode("latin-1")
    )
    titles = load_movielens_items(tmp_path / "u.item")
    assert titles.to_dict() == {242: "Kolya (1996)", 302: "L.A. Confidential (1997)", 377: "Caf\u00e9 (1994)"}
    log = load_movielens(tmp_path / "u.data", item_names=titles)
    out = log.to_external_frame()
    assert out["user_id"].tolist() == [196, 196, 186]
    assert out["item_id"].tolist() == [377, 242, 302]
    assert out["timestamp"].tolist() == [878887116, 881250949, 891717742]
    assert out["value"].tolist() == [1.0, 3.0, 3.0]
    assert log.events["row"].tolist() == [3, 1, 2]
    assert log.item_name(np.array([1, 2, 3])).tolist() == [
        "Kolya (1996)",
        "L.A. Confidential (1997)",
        "Caf\u00e9 (1994)",
    ]


def test_ratings_dat_and_movies_dat(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (tmp_path / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation\n".encode(
            "latin-1"
        )
    )
    log = load_movielens(tmp_path / "ratings.dat")
    out = log.to_external_frame()
    assert out["user_id"].tolist() == [1, 1, 2]
    assert out["item_id"].tolist() == [1193, 661, 1193]
    assert out["timestamp"].tolist() == [978300760, 978302109, 978298413]
    assert out["value"].tolist() == [5.0, 3.0, 4.0]
    titles = load_movielens_items(tmp_path / "movies.dat")
    assert titles.to_dict() == {1193: "One Flew Over the Cuckoo's Nest (1975)", 661: "James and the Giant Peach (1996)"}


def test_movielens_bad_rows_are_rejected(tmp_path):
    (tmp_path / "u.data").write_text("1\t2\t3\t100\n1\t3\tbad\t101\n2\t2\t4\t102\n")
    log = load_movielens(tmp_path / "u.data", rejects_path=tmp_path / "r.csv")
    assert log.report.rows_rejected == 1 and log.report.rows_kept == 2
    assert pd.read_csv(tmp_path / "r.csv")["line"].tolist() == [2]


def _fake_data_dir(root):
    d = root / "data"
    (d / "ml-1m").mkdir(parents=True)
    (d / "ml-1m" / "ml-1m.txt").write_text("1 1 2\n2 2 3\n")
    (d / "ml-1m" / "ml-1m_item_map.tsv").write_text("item_id\tmovie_id\n1\t50\n2\t60\n3\t70\n")
    (d / "ml-1m" / "movies.dat").write_text("50::Fifty::Drama\n60::Sixty::Comedy\n")
    (d / "ml-100k").mkdir()
    (d / "ml-100k" / "u.data").write_text("1\t50\t4\t100\n")
    (d / "ml-100k" / "u.item").write_text("50|Fifty|x\n")
    return d


def test_data_dir_resolution(tmp_path, monkeypatch):
    d = _fake_data_dir(tmp_path)
    assert data_dir(d) == d
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        data_dir(tmp_path / "missing")
    monkeypatch.setenv("CHRONOREC_DATA", str(d))
    assert data_dir() == d
    monkeypatch.setenv("CHRONOREC_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="CHRONOREC_DATA"):
        data_dir()
    monkeypatch.delenv("CHRONOREC_DATA")
    work = tmp_path / "repo"
    work.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(d)
    monkeypatch.chdir(work)
    assert data_dir() == d.resolve()
    monkeypatch.setattr(formats, "_repo_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="CHRONOREC_DATA"):
        data_dir()


def test_dataset_path_and_load_dataset(tmp_path):
    d = _fake_data_dir(tmp_path)
    assert dataset_path("ml-1m", data_dir=d) == d / "ml-1m" / "ml-1m.txt"
    assert dataset_path("ML-100K", data_dir=d) == d / "ml-100k" / "u.data"
    with pytest.raises(ValueError, match="known: ml-1m"):
        dataset_path("netflix", data_dir=d)
    with pytest.raises(FileNotFoundError, match="Beauty.txt"):
        dataset_path("beauty", data_dir=d)
    names = load_ml1m_item_names(d / "ml-1m")
    assert names.to_dict() == {1: "Fifty", 2: "Sixty"}
    log = load_dataset("ml-1m", data_dir=d)
    assert (log.n_users, log.n_items, len(log)) == (2, 3, 4)
    assert log.item_name(np.array([1, 2, 3])).tolist() == ["Fifty", "Sixty", "3"]
    log = load_dataset("ml-100k", data_dir=d)
    assert log.item_name(np.array([1])).tolist() == ["Fifty"]
    assert log.to_external_frame()["value"].tolist() == [4.0]


def _real_ml1m():
    try:
        return dataset_path("ml-1m")
    except FileNotFoundError:
        return None


@pytest.mark.skipif(_real_ml1m() is None, reason="shared benchmark data not available")
def test_real_ml1m_counts():
    log = load_dataset("ml-1m")
    assert (log.n_users, log.n_items, len(log)) == (6040, 3416, 999611)
    assert log.item_names is not None and len(log.item_names) == 3416
