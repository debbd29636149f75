"""Hostile input files: each gets one exact answer (an IngestError / one CLI error line naming the
file and the fix, or per-row rejects with line numbers) and nothing is lost or changed: row
accounting stays exact and a previous good ingest folder stays byte-identical."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chronorec.data import read_events
from chronorec.data.eventlog import EventLog
from chronorec.errors import ConfigError, DataError, IngestError

from .conftest import accounted, leftovers, one_line_error, snapshot

GOOD = "user_id,item_id,timestamp\n" + "".join(f"u{i % 3},i{i % 4},{1_600_000_000 + i}\n" for i in range(12))
BAD_HALF = (
    "user_id,item_id,timestamp\n" + "".join(f"u{i},,{1_600_000_000 + i}\n" for i in range(6)) + "u9,i1,1600000000\n"
)


def _good_folder(tmp_path: Path, cli) -> tuple[Path, dict[str, bytes]]:
    """A folder from a successful ingest that has a rejects.csv (one bad row), and its snapshot."""
    src = tmp_path / "good.csv"
    src.write_text(GOOD + "u1,,1600000100\n")
    out = tmp_path / "log"
    res = cli("ingest", src, "--out", out)
    assert res.exit_code == 0, res.output
    assert json.loads((out / "ingest_report.json").read_text())["rows_rejected"] == 1
    return out, snapshot(out)


# ----------------------------------------------------------------------------- compressed files
def _truncated(kind: str) -> bytes:
    data = (GOOD * 50).encode()
    if kind == "gz":
        blob = gzip.compress(data)
    elif kind == "xz":
        blob = lzma.compress(data)
    elif kind == "bz2":
        blob = bz2.compress(data)
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("events.csv", data)
        blob = buf.getvalue()
    return blob[: len(blob) // 2]


@pytest.mark.parametrize(("kind", "name"), [("gz", "gzip"), ("xz", "xz"), ("bz2", "bz2"), ("zip", "zip")])
def test_truncated_compressed_file_is_one_error_naming_it(tmp_path, kind, name):
    p = tmp_path / f"events.csv.{kind}"
    p.write_bytes(_truncated(kind))
    with pytest.raises(IngestError, match=rf"events\.csv\.{kind}: the {name} data is truncated or corrupt") as e:
        read_events(p)
    assert "copy or download the file again" in str(e.value)


@pytest.mark.parametrize(("kind", "name"), [("gz", "gzip"), ("xz", "xz"), ("bz2", "bz2"), ("zip", "zip")])
def test_plain_file_named_as_compressed_is_refused(tmp_path, kind, name):
    p = tmp_path / f"events.csv.{kind}"
    p.write_text(GOOD)
    with pytest.raises(IngestError) as e:
        read_events(p)
    assert f"is named .{kind} but is not {name}-compressed (it is plain text)" in str(e.value)
    assert "e.g. events.csv" in str(e.value)


def test_xz_data_named_gz_says_what_it_is(tmp_path):
    p = tmp_path / "events.csv.gz"
    p.write_bytes(lzma.compress(GOOD.encode()))
    with pytest.raises(IngestError, match=r"it is xz-compressed data: name it \.xz"):
        read_events(p)


def test_truncated_gz_on_the_cli_is_one_line_not_aborted(tmp_path, cli):
    p = tmp_path / "events.csv.gz"
    p.write_bytes(_truncated("gz"))
    res = cli("ingest", p, "--out", tmp_path / "log")
    assert res.exit_code == 1
    assert "Aborted" not in res.output
    assert "the gzip data is truncated or corrupt" in one_line_error(res.output)
    assert not (tmp_path / "log").exists()


# ----------------------------------------------------------------------------- JSON
@pytest.mark.parametrize("line", ["[1, 2, 3]", "5", '"text"', "null", "true"])
def test_jsonl_line_that_is_not_an_object_is_rejected_with_its_line(tmp_path, line):
    rows = [json.dumps({"user_id": f"u{i % 2}", "item_id": i, "timestamp": 1_600_000_000 + i}) for i in range(4)]
    rows.insert(2, line)
    p = tmp_path / "events.jsonl"
    p.write_text("\n".join(rows) + "\n")
    log = read_events(p)
    rej = log.report.rejects
    assert rej["line"].tolist() == [3]
    assert rej["reason"].tolist() == ["invalid JSON (not an object)"]
    assert len(log) == 4 and accounted(log.report)


def test_json_array_with_non_object_elements_rejects_them_by_position(tmp_path):
    items = [{"user_id": 1, "item_id": 2, "timestamp": 1_600_000_000}, [1, 2], 7]
    items += [{"user_id": 2, "item_id": 3, "timestamp": 1_600_000_001}, {"user_id": 2, "item_id": 4, "timestamp": 5}]
    p = tmp_path / "events.json"
    p.write_text(json.dumps(items))
    log = read_events(p, max_reject_share=0.9)
    assert log.report.rejects["line"].tolist() == [2, 3]
    assert log.report.rows_read == 5 and len(log) == 3 and accounted(log.report)


def test_json_that_is_not_an_array_or_lines_is_refused(tmp_path):
    p = tmp_path / "events.json"
    p.write_text('[{"user_id": 1, "item_id": 2}')  # cut short
    with pytest.raises(IngestError, match="not a valid JSON array of records"):
        read_events(p)


def test_undecodable_jsonl_names_the_encoding_option(tmp_path):
    p = tmp_path / "events.jsonl"
    p.write_bytes('{"user_id": "J\xfcrgen", "item_id": 1, "timestamp": 1600000000}\n'.encode("latin-1"))
    with pytest.raises(IngestError, match=r"cannot decode as utf-8-sig .*latin-1"):
        read_events(p)
    assert read_events(p, encoding="latin-1").to_external_frame()["user_id"].tolist() == ["Jürgen"]


def test_unknown_encoding_is_an_ingest_error(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text(GOOD)
    with pytest.raises(IngestError, match="unknown encoding 'klingon'"):
        read_events(p, encoding="klingon")


# ----------------------------------------------------------------------------- paths and bytes
def test_symlink_loop_is_named_as_such(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(IngestError, match="a.csv is a symbolic link loop") as e:
        read_events(a)
    assert "does not exist" not in str(e.value)


def test_broken_symlink_names_its_target(tmp_path):
    link = tmp_path / "events.csv"
    link.symlink_to(tmp_path / "gone.csv")
    with pytest.raises(IngestError, match=r"events.csv is a symbolic link to .*gone.csv, which does not exist"):
        read_events(link)


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(IngestError, match="is a directory; pass the data file itself"):
        read_events(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_is_refused_instead_of_blocking(tmp_path):
    fifo = tmp_path / "events.csv"
    os.mkfifo(fifo)
    with pytest.raises(IngestError, match="is not a regular file"):
        read_events(fifo)


@pytest.mark.parametrize("name", ["events.csv", "events.jsonl", "events.bin"])
def test_random_bytes_are_not_text(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(IngestError) as e:
        read_events(p)
    assert f"{name} is not a text/CSV file: it is binary data" in str(e.value)
    assert "no data rows" not in str(e.value)


def test_parquet_named_csv_says_parquet(tmp_path):
    p = tmp_path / "events.csv"
    pd.read_csv(io.StringIO(GOOD)).to_parquet(p)
    with pytest.raises(IngestError, match="it is a Parquet file: name it .parquet or pass --format parquet"):
        read_events(p)
    assert len(read_events(p, fmt="parquet")) == 12


def test_utf16_text_names_the_encoding(tmp_path):
    p = tmp_path / "events.csv"
    p.write_bytes(GOOD.encode("utf-16"))
    with pytest.raises(IngestError, match="is UTF-16 text: pass --encoding utf-16"):
        read_events(p)
    assert len(read_events(p, encoding="utf-16")) == 12


def test_utf16_without_a_byte_order_mark_names_the_byte_order(tmp_path):
    p = tmp_path / "events.csv"
    p.write_bytes(GOOD.encode("utf-16-le"))
    with pytest.raises(IngestError, match="UTF-16 text without a byte-order mark: pass --encoding utf-16-le"):
        read_events(p)
    assert len(read_events(p, encoding="utf-16-le")) == 12


def test_a_stray_control_character_in_a_text_file_is_not_binary(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text("user_id,item_id,timestamp\n1,2\x1a,1600000000\n2,3,1600000001\n")
    assert read_events(p).to_external_frame()["item_id"].tolist() == ["2\x1a", "3"]


# ----------------------------------------------------------------------------- ids and columns
def test_list_and_dict_ids_are_rejected_with_their_lines(tmp_path):
    rows = [
        {"user_id": [1], "item_id": 2, "timestamp": 1_600_000_000},
        {"user_id": 1, "item_id": {"a": 1}, "timestamp": 1_600_000_001},
        *({"user_id": u, "item_id": i, "timestamp": 1_600_000_002 + i} for u in (1, 2) for i in (3, 4)),
    ]
    p = tmp_path / "events.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    log = read_events(p)
    rej = log.report.rejects
    assert rej["line"].tolist() == [1, 2]
    assert rej["reason"].tolist() == ["bad user id", "bad item id"]
    assert log.report.rejects_by_reason == {"bad user id": 1, "bad item id": 1}
    frame = log.to_external_frame()
    assert "[1]" not in frame["user_id"].astype(str).tolist()
    assert frame["item_id"].tolist() == [3, 4, 3, 4] and accounted(log.report)


def test_object_behaviours_are_rejected_with_their_lines(tmp_path):
    rows = [{"user_id": 1, "item_id": i, "timestamp": 1_600_000_000 + i, "b": "buy"} for i in range(5)]
    rows[1]["b"] = {"kind": "buy"}
    p = tmp_path / "events.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    log = read_events(p, behavior_col="b")
    assert log.report.rejects["line"].tolist() == [2]
    assert log.report.rejects_by_reason == {"bad behavior": 1}
    assert log.to_external_frame()["behavior"].tolist() == ["buy"] * 4 and accounted(log.report)


def test_list_ids_in_parquet_are_rejected(tmp_path):
    df = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [[5, 6], [7], [8], [9]], "timestamp": 1_600_000_000})
    df.to_parquet(tmp_path / "e.parquet")
    with pytest.raises(
        IngestError, match=r"(?s)4 of 4 rows .*bad item id: 4.*line 1: bad item id.*Fix: item ids must be single values"
    ):
        read_events(tmp_path / "e.parquet")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"item_col": "user_id"}, "user_col and item_col both name column 'user_id'"),
        ({"time_col": "user_id"}, "user_col and time_col both name column 'user_id'"),
        ({"user_col": 1}, "user_col and item_col both name column 'item_id'"),  # by position
    ],
)
def test_one_column_in_two_roles_is_refused(tmp_path, kwargs, message):
    p = tmp_path / "events.csv"
    p.write_text(GOOD)
    with pytest.raises(IngestError, match=message):
        read_events(p, **kwargs)


def test_user_col_equal_item_col_on_the_cli(tmp_path, cli):
    p = tmp_path / "events.csv"
    p.write_text(GOOD)
    res = cli("ingest", p, "--out", tmp_path / "log", "--item-col", "user_id")
    assert res.exit_code == 1
    assert "both name column 'user_id'" in one_line_error(res.output)
    assert not (tmp_path / "log").exists()


def test_repeated_column_names_in_a_frame_are_refused():
    df = pd.DataFrame([[1, 2, 3, 1_600_000_000]], columns=["user_id", "item_id", "item_id", "timestamp"])
    with pytest.raises(IngestError, match="more than one column is named 'item_id'"):
        read_events(df)


def test_repeated_header_names_are_refused_in_a_ragged_csv_too(tmp_path):
    """Which of two ``item_id`` columns is the item is a guess: the header is refused, as documented
    (it used to be renamed to ``item_id.1`` and the second column silently ignored)."""
    p = tmp_path / "events.csv"
    p.write_text("user_id,item_id,item_id,timestamp\n1,2,3,1600000000\n1,2,3,1600000001,extra\n2,3,4,1600000002\n")
    with pytest.raises(IngestError, match="more than one column is named 'item_id'"):
        read_events(p)


def test_repeated_names_option_is_refused(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text("1,2,1600000000\n")
    with pytest.raises(IngestError, match="repeats a column name"):
        read_events(p, header=False, names=["a", "a", "t"])


# ----------------------------------------------------------------------------- output folder
def test_out_naming_an_existing_file_is_refused_before_reading(tmp_path, cli):
    src = tmp_path / "events.csv"
    src.write_text(GOOD)
    target = tmp_path / "taken"
    target.write_text("keep me")
    res = cli("ingest", src, "--out", target)
    assert res.exit_code == 1
    assert "taken exists and is a file, not a folder" in one_line_error(res.output)
    assert target.read_text() == "keep me" and leftovers(tmp_path) == []


def test_out_under_a_file_is_refused(tmp_path, cli):
    src = tmp_path / "events.csv"
    src.write_text(GOOD)
    res = cli("ingest", src, "--out", src / "log")
    assert res.exit_code == 1
    assert "events.csv is a file, so" in one_line_error(res.output)


def test_out_naming_a_foreign_folder_is_refused(tmp_path, cli):
    src = tmp_path / "events.csv"
    src.write_text(GOOD)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    res = cli("ingest", src, "--out", mine)
    assert res.exit_code == 1
    assert "is a non-empty folder that is not an EventLog" in one_line_error(res.output)
    assert snapshot(mine) == {"notes.txt": b"keep me"}


def test_successful_ingest_writes_one_whole_folder(tmp_path, cli):
    out, snap = _good_folder(tmp_path, cli)
    meta = json.loads((out / "eventlog.json").read_text())
    assert sorted(meta["files"]) == sorted(n for n in snap if n != "eventlog.json")
    report = json.loads((out / "ingest_report.json").read_text())
    assert report["rejects_path"] == str(out / "rejects.csv")
    assert pd.read_csv(out / "rejects.csv")["line"].tolist() == [14]
    assert accounted(report) and report["rows_kept"] == len(EventLog.load(out)) == 12
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", ["too many bad rows", "binary", "missing column"])
def test_failed_ingest_leaves_the_previous_folder_byte_identical(tmp_path, cli, bad):
    out, before = _good_folder(tmp_path, cli)
    src = tmp_path / "bad.csv"
    if bad == "binary":
        src.write_bytes(bytes(range(256)) * 8)
    elif bad == "missing column":
        src.write_text("a,b\n1,2\n")
    else:
        src.write_text(BAD_HALF)
    res = cli("ingest", src, "--out", out)
    assert res.exit_code == 1
    one_line_error(res.output)
    assert snapshot(out) == before  # rejects.csv of the good ingest included
    assert leftovers(tmp_path) == []


def test_failed_ingest_with_rejects_option_writes_them_aside_and_says_where(tmp_path, cli):
    out, before = _good_folder(tmp_path, cli)
    src = tmp_path / "bad.csv"
    src.write_text(BAD_HALF)
    aside = tmp_path / "bad-rows.csv"
    res = cli("ingest", src, "--out", out, "--rejects", aside)
    assert res.exit_code == 1
    assert f"All rejected rows were written to {aside}" in res.output
    assert pd.read_csv(aside)["line"].tolist() == [2, 3, 4, 5, 6, 7]
    assert snapshot(out) == before


def test_rejects_inside_out_is_refused(tmp_path, cli):
    out, before = _good_folder(tmp_path, cli)
    res = cli("ingest", tmp_path / "good.csv", "--out", out, "--rejects", out / "rejects.csv")
    assert res.exit_code == 1
    assert "is inside --out" in one_line_error(res.output)
    assert snapshot(out) == before


def test_reingest_keeps_no_stale_behaviors_names_or_rejects(tmp_path, cli):
    src = tmp_path / "rich.csv"
    src.write_text(
        "user_id,item_id,timestamp,action,title\n"
        + "".join(f"u{i % 3},i{i % 4},{1_600_000_000 + i},view,T{i % 4}\n" for i in range(12))
        + "u1,,1600000100,view,x\n"
    )
    out = tmp_path / "log"
    assert cli("ingest", src, "--out", out, "--behavior-col", "action", "--item-name-col", "title").exit_code == 0
    assert {"behaviors.parquet", "item_names.parquet", "rejects.csv"} <= set(snapshot(out))
    plain = tmp_path / "plain.csv"
    plain.write_text(GOOD)
    res = cli("ingest", plain, "--out", out)
    assert res.exit_code == 0, res.output
    assert set(snapshot(out)) == {
        "eventlog.json",
        "events.parquet",
        "items.parquet",
        "users.parquet",
        "ingest_report.json",
    }
    log = EventLog.load(out)
    assert log.behaviors is None and log.item_names is None
    assert json.loads((out / "ingest_report.json").read_text())["rows_rejected"] == 0


def test_a_save_that_fails_midway_leaves_the_previous_folder(tmp_path, monkeypatch):
    out = tmp_path / "log"
    first = read_events(_csv(tmp_path, GOOD))
    first.save(out)
    before = snapshot(out)

    def boom(*a, **k):
        raise OSError("disk full")

    second = read_events(_csv(tmp_path, GOOD.replace("u0", "x0")))
    monkeypatch.setattr(type(second.users), "save", boom)
    with pytest.raises(OSError, match="disk full"):
        second.save(out)
    assert snapshot(out) == before and leftovers(tmp_path) == []


def test_load_reads_only_the_files_the_save_listed(tmp_path):
    out = tmp_path / "log"
    read_events(_csv(tmp_path, GOOD)).save(out)
    pd.DataFrame({"internal_id": [1], "external_id": ["stale"]}).to_parquet(out / "behaviors.parquet")
    assert EventLog.load(out).behaviors is None


def test_load_of_a_corrupt_folder_is_a_data_error(tmp_path):
    out = tmp_path / "log"
    read_events(_csv(tmp_path, GOOD)).save(out)
    (out / "events.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="missing or corrupt .*ingest the events again"):
        EventLog.load(out)
    (out / "eventlog.json").write_text("{")
    with pytest.raises(DataError, match="eventlog.json is unreadable or not JSON"):
        EventLog.load(out)


def test_save_over_a_file_is_a_config_error(tmp_path):
    f = tmp_path / "log"
    f.write_text("x")
    with pytest.raises(ConfigError, match="exists and is a file"):
        read_events(_csv(tmp_path, GOOD)).save(f)
    assert f.read_text() == "x"


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / f"src-{abs(hash(text)) % 10**8}.csv"
    p.write_text(text)
    return p


_SAVER = """
import sys
import pandas as pd
from chronorec.data.eventlog import EventLog
n = 20_000
a = pd.DataFrame({"user_id": [i % 500 for i in range(n)], "item_id": [i % 700 for i in range(n)], "timestamp": range(n)})
b = a.head(n // 2).assign(behavior=["view", "buy"] * (n // 4))
logs = [EventLog.from_frame(a), EventLog.from_frame(b)]
print("ready", flush=True)
i = 0
while True:
    logs[i % 2].save(sys.argv[1])
    i += 1
"""


def test_kill_9_during_ingest_saves_never_leaves_a_broken_folder(tmp_path):
    """A few kills here; CHRONOREC_KILLS=20 (or more) in the slower crash job."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "log"
    read_events(_csv(tmp_path, GOOD)).save(out)
    rng = np.random.default_rng(0)
    for _ in range(int(os.environ.get("CHRONOREC_KILLS", "3"))):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(out)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.8)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        log = EventLog.load(out)  # the old folder or a new one, always whole
        meta = json.loads((out / "eventlog.json").read_text())
        assert set(meta["files"]) | {"eventlog.json"} == set(snapshot(out))
        assert (len(log), log.behaviors is None) in {(12, True), (20_000, True), (10_000, False)}
        assert len(log) == meta["n_events"]


def test_rejects_naming_the_input_file_is_refused_and_the_input_kept(tmp_path, cli):
    src = tmp_path / "events.csv"
    src.write_text(GOOD + "u1,,1600000100\n")
    before = src.read_bytes()
    res = cli("ingest", src, "--out", tmp_path / "log", "--rejects", src)
    assert res.exit_code == 1
    assert "is the input file itself" in one_line_error(res.output)
    assert src.read_bytes() == before and not (tmp_path / "log").exists()


def test_saving_into_the_folder_that_holds_the_rejects_file_is_refused(tmp_path):
    out = tmp_path / "log"
    log = read_events(_csv(tmp_path, GOOD + "u1,,1600000100\n"), rejects_path=out / "bad.csv")
    with pytest.raises(ConfigError, match=r"the rejects file .*bad.csv is inside .*log, which the save replaces"):
        log.save(out)
    assert snapshot(out).keys() == {"bad.csv"}
