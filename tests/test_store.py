"""The out-of-core event store: exact row accounting and rejects, the same sequences as the in-memory
ingest, Parquet folder / CSV / JSON Lines sources, memory-mapped arrays behind the EventLog API, user-range
partitions, atomic rebuilds and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from chronorec.cli.main import app
from chronorec.data.eventlog import EventLog, StoredEventLog
from chronorec.data.store import build_store, open_store
from chronorec.datasets.large import TaobaoShape, write_taobao
from chronorec.errors import IngestError

CSV = """user_id,item_id,timestamp,behavior
u1,a,100,pv
u1,b,200,pv
u2,a,150,pv
u1,a,100,pv
,b,300,pv
u2,,300,pv
u2,c,not-a-time,pv
u2,b,120,cart
u3,c,2024-01-01T00:00:00,pv
u1,c,200,buy
"""


def external_sequences(log) -> dict:
    s = log.sequences()
    return {
        u: log.items.to_external(s.user_items(log.users.to_internal([u])[0])).tolist() for u in log.users.external_ids
    }


def test_csv_accounting_rejects_and_same_sequences_as_in_memory(tmp_path):
    src = tmp_path / "events.csv"
    src.write_text(CSV)
    report = build_store(src, tmp_path / "store", memory_limit="200MB", threads=1)
    assert (report.rows_read, report.kept, report.rejected, report.duplicates) == (10, 6, 3, 1)
    assert report.balanced
    rejects = pd.read_csv(report.rejects_path)
    assert rejects["line"].tolist() == [6, 7, 8]  # header is line 1
    assert rejects["reason"].tolist() == ["missing user", "missing item", "missing or unparseable timestamp"]
    log = EventLog.load(tmp_path / "store")
    assert isinstance(log, StoredEventLog) and len(log) == 6
    assert isinstance(log.sequences().items, np.memmap)
    mem = EventLog.read(src, behavior_col="behavior")
    r = mem.report  # the in-memory ingest counts the same rows the same way
    assert (r.rows_read, r.rows_kept, r.rows_rejected, r.duplicates_removed) == (10, 6, 3, 1)
    assert external_sequences(log) == external_sequences(mem)
    # behaviours and times follow the same order as the items
    s = log.sequences()
    u1 = log.users.to_internal(["u1"])[0]
    a, b = s.offsets[u1], s.offsets[u1 + 1]
    assert s.timestamps[a:b].tolist() == [100, 200, 200]
    assert log.behaviors.to_external(s.behaviors[a:b]).tolist() == ["pv", "pv", "buy"]
    meta = json.loads((tmp_path / "store" / "store.json").read_text())
    assert meta["report"]["balanced"] and meta["n_events"] == 6


def test_parquet_folder_sorted_partitions_and_jsonl(tmp_path, monkeypatch):
    import chronorec.data.store as store_mod

    monkeypatch.setattr(store_mod, "PART_ROWS", 3_000)
    monkeypatch.setattr(store_mod, "BATCH_ROWS", 1_000)
    shape = TaobaoShape(n_events=20_000, n_users=1_500, n_items=3_000, seed=2)
    write_taobao(shape, tmp_path / "synth", chunk_events=5_000, items_file=False)
    report = build_store(tmp_path / "synth" / "events", tmp_path / "store", threads=1)
    assert report.rows_read == report.kept == 20_000 and report.n_users == 1_500
    raw = pd.read_parquet(tmp_path / "synth" / "events")
    st = open_store(tmp_path / "store")
    seq = st.sequences()
    log = EventLog.load(tmp_path / "store")
    # the CSR order is (user, time, source order): the generator's own order
    ext_users = log.users.to_external(np.repeat(np.arange(1, seq.n_users + 1), seq.lengths[1:]))
    assert (ext_users == raw["user_id"].to_numpy()).all()
    assert (log.items.to_external(np.asarray(seq.items)) == raw["item_id"].to_numpy()).all()
    assert (np.asarray(seq.timestamps) == raw["timestamp"].to_numpy()).all()
    parts = sorted((tmp_path / "store" / "events").glob("*.parquet"))
    assert len(parts) >= 3
    ranges = [pd.read_parquet(p)["user_idx"].agg(["min", "max"]).tolist() for p in parts]
    assert all(ranges[k][1] < ranges[k + 1][0] for k in range(len(ranges) - 1))  # contiguous user ranges
    # JSON Lines: the same events
    raw.head(500).assign(behavior=lambda d: d["behavior"].astype(str)).to_json(
        tmp_path / "e.jsonl", orient="records", lines=True
    )
    r2 = build_store(tmp_path / "e.jsonl", tmp_path / "store2", threads=1)
    assert r2.rows_read == 500 and r2.balanced


def test_failed_rebuild_keeps_the_store_and_errors_are_one_line(tmp_path):
    src = tmp_path / "events.csv"
    src.write_text(CSV)
    build_store(src, tmp_path / "store", threads=1)
    before = (tmp_path / "store" / "store.json").read_text()
    with pytest.raises(IngestError, match="no column 'uid'"):
        build_store(src, tmp_path / "store", user_col="uid", threads=1)
    assert (tmp_path / "store" / "store.json").read_text() == before
    with pytest.raises(IngestError, match="no such file"):
        build_store(tmp_path / "missing.csv", tmp_path / "s3")


def test_cli_store_build_then_train_from_the_store(tmp_path):
    runner = CliRunner()
    shape = TaobaoShape(n_events=8_000, n_users=300, n_items=400, seed=1)
    write_taobao(shape, tmp_path / "synth", items_file=False)
    res = runner.invoke(app, ["store", "build", str(tmp_path / "synth" / "events"), "--out", str(tmp_path / "st")])
    assert res.exit_code == 0, res.output
    assert "read 8,000 rows: kept 8,000, rejected 0, duplicates 0" in res.output
    res = runner.invoke(app, ["train", "--data", str(tmp_path / "st"), "--kind", "gru4rec", "--epochs", "1",
                              "-p", "dim=8", "--out", str(tmp_path / "m"), "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "8000 events, 300 users" in res.output
    res = runner.invoke(app, ["store", "build", str(tmp_path / "nope"), "--out", str(tmp_path / "st")])
    assert res.exit_code == 1 and "no such file" in res.output
