"""Tests for chronorec.data.ingest and chronorec.data.clean (small generated files only)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from chronorec.data import read_events
from chronorec.data.clean import kcore_mask, remove_duplicates, sessionize, stable_sort
from chronorec.data.eventlog import EventLog
from chronorec.data.ingest import IngestError, IngestReport, parse_timestamps

BASE = 1_600_000_000

# user, item, seconds; u1 has two events at the same second (b before a in the file)
ROWS = [
    ("u1", "b", BASE + 10),
    ("u1", "a", BASE + 10),
    ("u2", "a", BASE + 5),
    ("u1", "c", BASE + 0),
    ("u2", "c", BASE + 20),
]
EXPECTED = pd.DataFrame(
    {
        "user_id": pd.array(["u1", "u1", "u1", "u2", "u2"], dtype="str"),
        "item_id": pd.array(["c", "b", "a", "a", "c"], dtype="str"),
        "timestamp": np.array([BASE, BASE + 10, BASE + 10, BASE + 5, BASE + 20], dtype=np.int64),
    }
)


def _frame(time_transform=lambda t: t) -> pd.DataFrame:
    return pd.DataFrame(
        {"uid": [r[0] for r in ROWS], "iid": [r[1] for r in ROWS], "when": [time_transform(r[2]) for r in ROWS]}
    )


def _read(src, **kw) -> EventLog:
    return read_events(src, user_col="uid", item_col="iid", time_col="when", **kw)


# ----------------------------------------------------------------------------- sources
def test_all_sources_give_the_same_eventlog(tmp_path):
    df = _frame()
    df.to_csv(tmp_path / "e.csv", index=False)
    df.to_csv(tmp_path / "e_semicolon.csv", index=False, sep=";")
    df.to_csv(tmp_path / "e.tsv", index=False, sep="\t")
    with gzip.open(tmp_path / "e.csv.gz", "wt") as fh:
        df.to_csv(fh, index=False)
    df.to_parquet(tmp_path / "e.parquet", index=False)
    df.to_json(tmp_path / "e.jsonl", orient="records", lines=True)
    sources = [
        tmp_path / "e.csv",
        str(tmp_path / "e_semicolon.csv"),
        tmp_path / "e.tsv",
        tmp_path / "e.csv.gz",
        tmp_path / "e.parquet",
        tmp_path / "e.jsonl",
        df,
        pl.from_pandas(df),
    ]
    logs = [_read(s) for s in sources]
    for log in logs:
        pd.testing.assert_frame_equal(log.to_external_frame(), EXPECTED)
        assert log.n_users == 2 and log.n_items == 3
        assert log.users.external_ids.tolist() == ["u1", "u2"]
        assert log.items.external_ids.tolist() == ["b", "a", "c"]
        assert log.events["user_idx"].tolist() == [1, 1, 1, 2, 2]
        assert log.events["item_idx"].tolist() == [3, 1, 2, 2, 3]
        assert log.report.rows_read == 5 and log.report.rows_kept == 5


def test_csv_line_numbers_and_frame_row_numbers(tmp_path):
    _frame().to_csv(tmp_path / "e.csv", index=False)
    # CSV: header is line 1, so data rows are lines 2..6
    assert _read(tmp_path / "e.csv").events["row"].tolist() == [5, 2, 3, 4, 6]
    # DataFrame: 0-based row position + 1
    assert _read(_frame()).events["row"].tolist() == [4, 1, 2, 3, 5]


def test_integer_ids_become_int64_everywhere(tmp_path):
    df = pd.DataFrame({"user_id": [7, 7, 3], "item_id": [100, 200, 100], "timestamp": [5, 6, 7]})
    df.to_csv(tmp_path / "e.csv", index=False)
    for src in (df, tmp_path / "e.csv"):
        out = read_events(src).to_external_frame()
        assert out["user_id"].dtype == np.int64 and out["item_id"].dtype == np.int64
        assert out["user_id"].tolist() == [7, 7, 3]
        assert out["item_id"].tolist() == [100, 200, 100]


def test_zero_padded_ids_stay_text(tmp_path):
    (tmp_path / "e.csv").write_text("user_id,item_id,timestamp\n007,1,5\n7,1,6\n")
    log = read_events(tmp_path / "e.csv")
    assert log.users.external_ids.tolist() == ["007", "7"]
    assert log.n_users == 2


def test_column_mapping_with_behavior_value_context_and_names(tmp_path):
    (tmp_path / "e.csv").write_text(
        "who,what,t,kind,price,session,title\n"
        "1,10,100,view,2.5,s1,Ten\n"
        "1,20,200,buy,4,s1,Twenty\n"
        "2,10,150,view,2.5,,Ten again\n"
    )
    log = read_events(
        tmp_path / "e.csv",
        user_col="who",
        item_col="what",
        time_col="t",
        behavior_col="kind",
        value_col="price",
        context_cols=["session"],
        item_name_col="title",
    )
    out = log.to_external_frame()
    assert list(out.columns) == ["user_id", "item_id", "timestamp", "behavior", "value", "session"]
    assert out["user_id"].tolist() == [1, 1, 2]
    assert out["item_id"].tolist() == [10, 20, 10]
    assert out["timestamp"].tolist() == [100, 200, 150]
    assert out["behavior"].tolist() == ["view", "buy", "view"]
    assert out["value"].tolist() == [2.5, 4.0, 2.5]
    assert out["session"].tolist() == ["s1", "s1", ""]
    assert log.context_columns == ("session",)
    assert log.item_name(np.array([1, 2])).tolist() == ["Ten", "Twenty"]


def test_columns_by_position_without_header(tmp_path):
    (tmp_path / "e.csv").write_text("1,10,pv,100\n1,11,buy,101\n")
    log = read_events(tmp_path / "e.csv", header=False, user_col=0, item_col=1, behavior_col=2, time_col=3)
    out = log.to_external_frame()
    assert out["item_id"].tolist() == [10, 11]
    assert out["behavior"].tolist() == ["pv", "buy"]
    assert log.events["row"].tolist() == [1, 2]


# ----------------------------------------------------------------------------- timestamps
def test_epoch_seconds_milliseconds_and_iso_agree(tmp_path):
    secs = _read(_frame()).to_external_frame()
    ms = _read(_frame(lambda t: t * 1000)).to_external_frame()
    ms_forced = _read(_frame(lambda t: t * 1000), time_unit="ms").to_external_frame()
    iso = _read(_frame(lambda t: pd.Timestamp(t, unit="s").strftime("%Y-%m-%dT%H:%M:%SZ"))).to_external_frame()
    iso_offset = _read(
        _frame(lambda t: (pd.Timestamp(t, unit="s", tz="UTC").tz_convert("Europe/Paris")).isoformat())
    ).to_external_frame()
    dt = _read(_frame(lambda t: pd.Timestamp(t, unit="s"))).to_external_frame()
    _frame(lambda t: t * 1000).to_csv(tmp_path / "ms.csv", index=False)
    ms_csv = _read(tmp_path / "ms.csv").to_external_frame()
    for other in (ms, ms_forced, iso, iso_offset, dt, ms_csv):
        pd.testing.assert_frame_equal(other, EXPECTED)
    assert secs["timestamp"].tolist() == EXPECTED["timestamp"].tolist()


def test_parse_timestamps_units():
    secs, ok, unit = parse_timestamps(pd.Series([1_600_000_000_123, 1_600_000_001_999]))
    assert unit == "ms" and secs.tolist() == [1_600_000_000, 1_600_000_001] and ok.tolist() == [True, True]
    secs, ok, unit = parse_timestamps(pd.Series(["1970-01-01 00:01:00", "not a date", None]))
    assert unit == "datetime" and secs.tolist() == [60, 0, 0] and ok.tolist() == [True, False, False]
    secs, ok, unit = parse_timestamps(pd.Series([5.9, 7.0]), time_unit="s")
    assert unit == "s" and secs.tolist() == [5, 7]


def test_wrong_forced_unit_is_rejected_with_hint():
    with pytest.raises(IngestError, match="--time-unit"):
        _read(_frame(lambda t: t * 1000), time_unit="s")


def test_time_col_none_uses_file_order():
    log = read_events(pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5]}), time_col=None)
    assert log.events["timestamp"].tolist() == [1, 2, 3]
    assert log.report.time_unit == "line number"


# ----------------------------------------------------------------------------- errors
def test_missing_column_error_names_column_file_and_option(tmp_path):
    _frame().to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(IngestError) as err:
        read_events(tmp_path / "e.csv", user_col="user", item_col="iid", time_col="when")
    msg = str(err.value)
    assert "'user'" in msg and "e.csv" in msg and "--user-col" in msg
    assert "'uid', 'iid', 'when'" in msg


def test_missing_column_suggests_no_header(tmp_path):
    (tmp_path / "e.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(IngestError, match="--no-header"):
        read_events(tmp_path / "e.csv")


def test_bad_rows_go_to_rejects_file_with_line_numbers(tmp_path):
    (tmp_path / "e.csv").write_text(
        "uid,iid,when,score\n"
        "u1,a,100,1\n"  # line 2 ok
        "u1,b,yesterday,2\n"  # line 3 bad timestamp
        ",c,101,3\n"  # line 4 missing user
        "u2,a,102,x\n"  # line 5 bad value
        "u2,b,103,4\n"  # line 6 ok
        "u2,c,,5\n"  # line 7 missing timestamp
        "u3,a,104,6\n"  # line 8 ok
        "u3,b,105,7\n"  # line 9 ok
    )
    rej = tmp_path / "out" / "rejects.csv"
    log = _read(tmp_path / "e.csv", value_col="score", rejects_path=rej)
    r = log.report
    assert (r.rows_read, r.rows_kept, r.rows_rejected, r.duplicates_removed, r.kcore_removed) == (8, 4, 4, 0, 0)
    assert r.rejects_by_reason == {"bad timestamp": 1, "missing user": 1, "bad value": 1, "missing timestamp": 1}
    assert r.rejects_path == str(rej)
    assert r.rows_read == r.rows_kept + r.rows_rejected + r.duplicates_removed + r.kcore_removed
    saved = pd.read_csv(rej, dtype=str, keep_default_na=False)
    assert list(saved.columns) == ["line", "reason", "uid", "iid", "when", "score"]
    assert saved["line"].tolist() == ["3", "4", "5", "7"]
    assert saved["reason"].tolist() == ["bad timestamp", "missing user", "bad value", "missing timestamp"]
    assert saved["when"].tolist() == ["yesterday", "101", "102", ""]
    assert saved["score"].tolist() == ["2", "3", "x", "5"]
    assert log.events["row"].tolist() == [2, 6, 8, 9]
    summary = r.summary()
    assert "8 read = 4 kept + 4 rejected + 0 duplicates + 0 k-core: OK" in summary
    d = r.to_dict()
    assert d["rows_rejected"] == 4 and d["balanced"] is True
    assert json.loads(json.dumps(d)) == d


def test_rejects_from_dataframe_use_row_position_plus_one(tmp_path):
    df = pd.DataFrame({"user_id": ["a", None, "b"], "item_id": [1, 2, 3], "timestamp": [1, 2, 3]})
    log = read_events(df, rejects_path=tmp_path / "r.csv")
    saved = pd.read_csv(tmp_path / "r.csv")
    assert saved["line"].tolist() == [2]
    assert saved["reason"].tolist() == ["missing user"]
    assert log.report.rows_kept == 2


def test_too_many_bad_rows_raise_with_line_numbers(tmp_path):
    lines = ["uid,iid,when"] + [f"u{k},i{k},day{k}" for k in range(7)] + ["u9,i9,100", "u9,i8,101"]
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError) as err:
        _read(tmp_path / "e.csv", rejects_path=tmp_path / "r.csv")
    msg = str(err.value)
    assert "7 of 9 rows" in msg
    for line in (2, 3, 4, 5, 6):
        assert f"line {line}: bad timestamp" in msg
    assert "line 7:" not in msg  # only the first five are listed
    assert "'day0'" in msg and "--time-unit" in msg and "--time-col" in msg
    assert len(pd.read_csv(tmp_path / "r.csv")) == 7  # the rejects file is still written


def test_reject_share_threshold_is_configurable(tmp_path):
    df = pd.DataFrame({"user_id": [1, 2, 3, 4], "item_id": [1, 1, 1, 1], "timestamp": ["x", "y", 5, 6]})
    log = read_events(df, max_reject_share=0.5)  # exactly 50% is allowed
    assert log.report.rows_rejected == 2
    with pytest.raises(IngestError, match="2 of 4 rows"):
        read_events(df, max_reject_share=0.4)


def test_empty_inputs_raise(tmp_path):
    (tmp_path / "header_only.csv").write_text("user_id,item_id,timestamp\n")
    (tmp_path / "empty.csv").write_text("")
    for name in ("header_only.csv", "empty.csv"):
        with pytest.raises(IngestError, match=f"file .*{name} has no data rows"):
            read_events(tmp_path / name)
    with pytest.raises(IngestError, match="has no data rows"):
        read_events(pd.DataFrame({"user_id": [], "item_id": [], "timestamp": []}))


def test_missing_file_raises(tmp_path):
    with pytest.raises(IngestError, match="does not exist"):
        read_events(tmp_path / "nope.csv")


def test_malformed_csv_rows_are_rejected_with_exact_line_numbers(tmp_path):
    (tmp_path / "e.csv").write_text('user_id,item_id,timestamp\n1,10,5\n1,11,6,EXTRA\n"multi\nline",12,7\n2,13,8\n')
    log = read_events(tmp_path / "e.csv", rejects_path=tmp_path / "r.csv")
    assert log.report.rows_read == 4 and log.report.rows_rejected == 1
    assert log.report.rejects_by_reason == {"wrong number of fields": 1}
    assert sorted(log.events["row"].tolist()) == [2, 4, 6]  # the quoted newline spans lines 4-5
    saved = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert saved["line"].tolist() == ["3"] and saved["raw"].tolist() == ["1,11,6,EXTRA"]


def test_invalid_json_lines_are_rejected(tmp_path):
    (tmp_path / "e.jsonl").write_text(
        '{"user_id": 1, "item_id": 2, "timestamp": 3}\n\n{broken\n{"user_id": 1, "item_id": 3, "timestamp": 4}\n'
    )
    log = read_events(tmp_path / "e.jsonl")
    assert log.report.rows_read == 3 and log.report.rows_kept == 2 and log.report.blank_lines == 1
    assert log.report.rejects["line"].tolist() == [3]
    assert log.events["row"].tolist() == [1, 4]


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path):
    (tmp_path / "e.csv").write_text("user_id,item_id,timestamp\n1,10,5\n\n1,11,6\n")
    log = read_events(tmp_path / "e.csv")
    assert log.report.rows_read == 2 and log.report.blank_lines == 1
    assert log.events["row"].tolist() == [2, 4]


# ----------------------------------------------------------------------------- cleaning
def test_duplicates_are_removed_and_counted(tmp_path):
    (tmp_path / "e.csv").write_text(
        "user_id,item_id,timestamp,behavior\n1,10,5,view\n1,10,5,view\n1,10,5,buy\n2,10,5,view\n1,10,5,view\n"
    )
    log = read_events(tmp_path / "e.csv", behavior_col="behavior")
    assert log.report.duplicates_removed == 2
    assert log.report.rows_kept == 3
    assert log.events["row"].tolist() == [2, 4, 5]
    assert read_events(tmp_path / "e.csv", behavior_col="behavior", dedupe=False).report.rows_kept == 5


def test_kcore_is_iterative():
    # item 30 has 1 event -> removed; then user 3 has only 1 event left -> removed as well
    df = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2, 3, 3],
            "item_id": [10, 20, 10, 20, 20, 30],
            "timestamp": [1, 2, 3, 4, 5, 6],
        }
    )
    log = read_events(df, min_user_events=2, min_item_events=2)
    assert log.report.kcore_removed == 2
    assert log.report.rows_kept == 4
    assert log.to_external_frame()["user_id"].tolist() == [1, 1, 2, 2]
    mask = kcore_mask(np.array([1, 1, 2, 3, 3, 3]), np.array([5, 6, 5, 5, 6, 7]), min_user_events=2, min_item_events=2)
    assert mask.tolist() == [True, True, False, True, True, False]
    with pytest.raises(IngestError, match="removed all"):
        read_events(df, min_user_events=10)


def test_stable_sort_keeps_file_order_for_equal_timestamps(tmp_path):
    (tmp_path / "e.csv").write_text("user_id,item_id,timestamp\n1,c,5\n1,a,5\n1,b,5\n1,z,4\n")
    log = read_events(tmp_path / "e.csv")
    assert log.to_external_frame()["item_id"].tolist() == ["z", "c", "a", "b"]
    df = pd.DataFrame({"user_id": [2, 1, 1], "timestamp": [1, 3, 3], "row": [9, 8, 7], "x": [0, 1, 2]})
    assert stable_sort(df)["x"].tolist() == [2, 1, 0]


def test_remove_duplicates_helper():
    df = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [2, 2, 3], "timestamp": [0, 0, 0], "row": [1, 2, 3]})
    out, n = remove_duplicates(df)
    assert n == 1 and out["row"].tolist() == [1, 3]


def test_sessionize():
    df = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "a", "a", "b"],
            "timestamp": [0, 100, 50, 2000, 3800, 60],
        }
    )
    # a: 0, 100 | 2000 (gap 1900 > 1800) | 3800 (gap exactly 1800: same session); b: 50, 60
    assert sessionize(df).tolist() == [1, 1, 3, 2, 2, 3]
    assert sessionize(df, gap_seconds=50).tolist() == [1, 2, 5, 3, 4, 5]


def test_report_summary_mentions_the_check():
    r = IngestReport(source="x.csv", rows_read=10, rows_kept=6, rows_rejected=2, duplicates_removed=1, kcore_removed=1)
    assert r.balanced
    assert "10 read = 6 kept + 2 rejected + 1 duplicates + 1 k-core: OK" in r.summary()
    r.rows_kept = 5
    assert not r.balanced and "MISMATCH" in r.summary()


def test_eventlog_read_delegates(tmp_path):
    _frame().to_csv(tmp_path / "e.csv", index=False)
    log = EventLog.read(tmp_path / "e.csv", user_col="uid", item_col="iid", time_col="when")
    pd.testing.assert_frame_equal(log.to_external_frame(), EXPECTED)
    assert log.source == str(tmp_path / "e.csv")


# ----------------------------------------------------------------------------- real-log options
def _cli(*args):
    from typer.testing import CliRunner

    from chronorec.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250", "NO_COLOR": "1"})


def test_cli_reads_a_headerless_latin1_file_with_names_and_timezone(tmp_path):
    p = tmp_path / "u.data"
    p.write_bytes("196\tcafé\t3\t2011-06-01 12:00:00\n186\tthé\t5\t2011-12-01 12:00:00\n".encode("latin-1"))
    out = tmp_path / "log"
    res = _cli("ingest", p, "--out", out, "--no-header", "--names", "user,item,rating,time", "--sep", "\\t")
    assert res.exit_code == 1 and "--encoding" in res.output  # latin-1 bytes: the message names the option
    res = _cli(
        "ingest", p, "--out", out, "--no-header", "--names", "user,item,rating,time", "--sep", "\\t",
        "--encoding", "latin-1", "--timezone", "Europe/London",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "2 timestamps without an offset read as Europe/London time" in res.output
    log = EventLog.load(out)
    assert sorted(log.items.external_ids.tolist()) == ["café", "thé"]
    secs = sorted(log.events["timestamp"].tolist())
    assert secs == [int(pd.Timestamp(t, tz="UTC").timestamp()) for t in ("2011-06-01 11:00", "2011-12-01 12:00")]
    report = json.loads((out / "ingest_report.json").read_text())
    assert report["timezone"] == "Europe/London" and report["naive_timestamps_read_as"] == "Europe/London"
    assert report["columns"] == {"user": "user", "item": "item", "time": "time"}


def test_naive_timestamps_without_a_timezone_are_reported_as_utc(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("user_id,item_id,timestamp\n1,a,2011-06-01 12:00:00\n2,b,2011-06-01T12:00:00+02:00\n")
    log = read_events(p)
    assert log.report.naive_timestamps == 1 and log.report.timezone is None
    assert "1 timestamps without an offset read as UTC (pass --timezone" in log.report.summary()
    assert log.report.to_dict()["naive_timestamps_read_as"] == "UTC"


def test_headerless_file_error_names_options_that_exist(tmp_path):
    p = tmp_path / "u.data"
    p.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    res = _cli("ingest", p, "--out", tmp_path / "x")
    assert res.exit_code == 1 and "--no-header" in res.output and "--names" in res.output
    res = _cli("ingest", p, "--out", tmp_path / "x", "--no-header", "--names", "user,item,rating,time")
    assert res.exit_code == 0, res.output
    assert EventLog.load(tmp_path / "x").n_users == 2


def test_config_file_takes_the_same_reading_keys(tmp_path):
    p = tmp_path / "ub.csv"
    p.write_text("1,10,5,pv,1511544070\n1,11,5,buy,1511544080\n2,10,5,cart,1400000000\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{path: {p}, recipe: taobao, encoding: utf-8, timezone: Asia/Shanghai}}\n")
    res = _cli("ingest", p, "--out", tmp_path / "t", "--config", cfg)
    assert res.exit_code == 0, res.output
    assert "rule 'outside the nine days'" in res.output and ": OK" in res.output
    cfg.write_text(
        f"data: {{path: {p}, header: false, names: [u, i, c, b, t], user_col: u, item_col: i, time_col: t}}\n"
    )
    res = _cli("ingest", p, "--out", tmp_path / "t2", "--config", cfg)
    assert res.exit_code == 0, res.output
    assert EventLog.load(tmp_path / "t2").n_items == 2
    cfg.write_text("data: {recipe: nosuch}\n")
    res = _cli("ingest", p, "--out", tmp_path / "t3", "--config", cfg)
    assert res.exit_code == 1 and "unknown recipe 'nosuch'" in res.output
