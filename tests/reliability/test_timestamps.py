"""Timestamps are never silently corrupted: each numeric epoch's unit comes from its own magnitude,
dates outside 1677-2262 and over-long text become per-row rejects with line numbers (never an
OutOfBoundsDatetime), and negative, pre-1990 and future values are reported and rejectable."""

from __future__ import annotations

import datetime as dt
import json
import logging

import numpy as np
import pandas as pd
import pytest

from chronorec.data import read_events
from chronorec.data import timestamps as T
from chronorec.data.timestamps import MAX_TIME_TEXT, parse_time_column, parse_timestamps
from chronorec.errors import IngestError

from .conftest import accounted

T0 = 1_600_000_000  # 2020-09-13
SCALE = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _csv(tmp_path, times, name="events.csv"):
    """One event per timestamp, users alternating, items distinct; line of row i is i + 2."""
    p = tmp_path / name
    p.write_text("user_id,item_id,timestamp\n" + "".join(f"u{i % 2},i{i},{t}\n" for i, t in enumerate(times)))
    return p


# ----------------------------------------------------------------------------- units per value
def test_seconds_and_milliseconds_mixed_in_one_file_are_each_read_right(tmp_path, caplog):
    # the probe's case: 22 rows, 10 in seconds, 12 in milliseconds, one second apart in truth
    times = [(T0 + i) if i % 2 else (T0 + i) * 1000 for i in range(22)]
    with caplog.at_level(logging.WARNING, logger="chronorec"):
        log = read_events(_csv(tmp_path, times))
    frame = log.to_external_frame().sort_values("item_id", key=lambda s: s.str[1:].astype(int))
    assert frame["timestamp"].tolist() == [T0 + i for i in range(22)]  # none collapsed to 1970, order kept
    assert log.report.time_unit == "s+ms"
    assert log.report.time_units == {"s": 11, "ms": 11}
    assert "numeric timestamps in several units (s: 11 rows, ms: 11 rows)" in caplog.text
    assert "11 in s, 11 in ms (each value's unit decided by its magnitude)" in log.report.summary()


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_each_unit_alone_gives_the_same_seconds(unit):
    secs, ok, used = parse_timestamps(pd.Series([T0 * SCALE[unit], (T0 + 59) * SCALE[unit]]))
    assert secs.tolist() == [T0, T0 + 59] and ok.all() and used == unit


def test_all_four_units_in_one_column():
    s = pd.Series([T0, (T0 + 1) * 10**3, (T0 + 2) * 10**6, (T0 + 3) * 10**9])
    tp = parse_time_column(s)
    assert tp.seconds.tolist() == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert tp.unit_counts == {"s": 1, "ms": 1, "us": 1, "ns": 1}


def test_a_forced_unit_applies_to_every_value():
    tp = parse_time_column(pd.Series([T0, T0 * 1000]), time_unit="ms")
    assert tp.seconds.tolist() == [T0 // 1000, T0] and tp.unit == "ms"


def test_nanosecond_integers_are_floored_exactly():
    s = pd.Series(np.array([T0 * 10**9 + 999_999_999, -1], dtype=np.int64))
    assert parse_time_column(s).seconds.tolist() == [T0, -1]


def test_epochs_and_dates_in_one_column():
    tp = parse_time_column(pd.Series([str(T0), "2020-09-13T12:26:40Z", " 1600000001000 "]))
    assert tp.seconds.tolist() == [T0, T0, T0 + 1]
    assert tp.unit == "s+ms+datetime" and tp.ok.all()


# ----------------------------------------------------------------------------- out of range
@pytest.mark.parametrize(
    "value",
    ["2300-01-01", "3000-01-01T00:00:00Z", "1500-06-01", "9999-12-31 23:59", "10000000000", "-10000000000"],
)
def test_out_of_range_dates_are_per_row_rejects_with_line_numbers(tmp_path, value):
    times = [T0 + i for i in range(6)]
    times.insert(3, value)
    log = read_events(_csv(tmp_path, times))
    rej = log.report.rejects
    assert rej["line"].tolist() == [5]
    assert rej["reason"].tolist() == ["timestamp out of range"]
    assert rej["timestamp"].tolist() == [value]
    assert len(log) == 6 and accounted(log.report)


def test_datetime_objects_past_2262_in_a_frame_are_rejects_not_exceptions():
    df = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2],
            "item_id": [1, 2, 1, 2],
            "timestamp": [
                dt.datetime(9999, 1, 1),
                dt.datetime(2020, 1, 1),
                dt.datetime(2020, 1, 2),
                dt.datetime(2300, 5, 1),
            ],
        }
    )
    log = read_events(df)
    assert log.report.rejects["line"].tolist() == [1, 4]
    assert set(log.report.rejects["reason"]) == {"timestamp out of range"}
    assert log.to_external_frame()["timestamp"].tolist() == [1_577_836_800, 1_577_923_200]


def test_huge_json_integer_timestamp_is_out_of_range(tmp_path):
    rows = [{"user_id": 1, "item_id": i, "timestamp": T0 + i} for i in range(4)]
    rows.append({"user_id": 2, "item_id": 9, "timestamp": 10**30})
    p = tmp_path / "events.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    log = read_events(p)
    assert log.report.rejects_by_reason == {"timestamp out of range": 1}
    assert log.report.rejects["line"].tolist() == [5]


def test_a_file_of_only_out_of_range_dates_names_the_fix(tmp_path):
    with pytest.raises(IngestError) as e:
        read_events(_csv(tmp_path, ["2300-01-01", "2400-01-01", "2500-01-01"]))
    msg = str(e.value)
    assert "3 of 3 rows (100%) are bad" in msg and "timestamp out of range: 3" in msg
    assert "line 2: timestamp out of range" in msg
    assert "between 1677-09-21 and 2262-04-11" in msg


def test_the_range_ends_where_the_service_ends():
    from chronorec.serving.schemas import MAX_EPOCH_SECONDS

    assert T.MAX_EPOCH_SECONDS == MAX_EPOCH_SECONDS
    tp = parse_time_column(pd.Series([T.MAX_EPOCH_SECONDS, T.MAX_EPOCH_SECONDS + 1]), time_unit="s")
    assert tp.ok.tolist() == [True, False] and tp.out_of_range.tolist() == [False, True]


# ----------------------------------------------------------------------------- long and odd text
def test_timestamp_text_over_the_bound_is_rejected_before_any_parser(tmp_path, monkeypatch):
    seen: list[int] = []
    real_to_datetime, real_to_numeric = pd.to_datetime, pd.to_numeric

    def longest(values):
        if isinstance(values, pd.Series) and values.dtype == object:
            seen.append(max((len(v) for v in values if isinstance(v, str)), default=0))

    def spy_dt(values, *a, **k):
        longest(values)
        return real_to_datetime(values, *a, **k)

    def spy_num(values, *a, **k):
        longest(values)
        return real_to_numeric(values, *a, **k)

    monkeypatch.setattr(T.pd, "to_datetime", spy_dt)
    monkeypatch.setattr(T.pd, "to_numeric", spy_num)
    huge = "2" * 5_000_000  # 5 MB of digits (the probe used 20 MB): quadratic in the mixed-format retry before
    times = ["2020-01-01", "Jan 2 2020", huge, "2020-01-03", "x" * 65, "2020-01-04"]
    log = read_events(_csv(tmp_path, times))
    assert max(seen) <= MAX_TIME_TEXT
    assert log.report.rejects["line"].tolist() == [4, 6]
    assert log.report.rejects_by_reason == {"timestamp too long": 2}
    assert len(log) == 4 and accounted(log.report)


def test_the_length_bound_is_64_characters():
    ok_text = "2020-01-01T00:00:00" + " " * (MAX_TIME_TEXT - 19)
    tp = parse_time_column(pd.Series([ok_text, ok_text + " "]))
    assert MAX_TIME_TEXT == 64
    assert tp.ok.tolist() == [True, False] and tp.too_long.tolist() == [False, True]


@pytest.mark.parametrize("value", [[1], {"t": 1}, True, float("inf"), "soon", "1e400"])
def test_values_that_are_not_times_are_bad_timestamps(value):
    tp = parse_time_column(pd.Series([T0, value, None], dtype=object))
    assert tp.ok.tolist() == [True, False, False]
    assert tp.bad.tolist() == [False, True, False]  # None is missing, not bad


def test_blank_text_is_missing_not_bad(tmp_path):
    log = read_events(_csv(tmp_path, [T0, "   ", T0 + 1, T0 + 2, T0 + 3]))
    assert log.report.rejects_by_reason == {"missing timestamp": 1}


# ----------------------------------------------------------------------------- outliers
@pytest.mark.parametrize(
    ("value", "kind"),
    [(-5, "negative timestamp"), (5, "timestamp before 1990"), ("1985-06-01", "timestamp before 1990"),
     (4_102_444_800, "future timestamp"), ("2150-01-01", "future timestamp")],
)  # fmt: skip
def test_outliers_are_kept_counted_and_named_with_examples(tmp_path, caplog, value, kind):
    times = [T0 + i for i in range(5)]
    times.insert(1, value)
    with caplog.at_level(logging.WARNING, logger="chronorec"):
        log = read_events(_csv(tmp_path, times))
    assert len(log) == 6 and log.report.rows_rejected == 0
    assert log.report.time_outliers == {kind: 1}
    assert log.report.time_outlier_examples == [{"line": 3, "value": str(value), "reason": kind}]
    assert f"kept 1 row with a {kind}" in caplog.text and "--reject-time-outliers" in caplog.text
    assert f"time outliers (kept): 1 {kind} (e.g. line 3: {str(value)!r})" in log.report.summary()


def test_outliers_are_rejected_on_request_with_their_lines(tmp_path):
    times = [-5, T0, 5, T0 + 1, 4_102_444_800, T0 + 2, T0 + 3]
    log = read_events(_csv(tmp_path, times), reject_time_outliers=True)
    rej = log.report.rejects
    assert rej["line"].tolist() == [2, 4, 6]
    assert rej["reason"].tolist() == ["negative timestamp", "timestamp before 1990", "future timestamp"]
    assert len(log) == 4 and accounted(log.report)
    assert "time outliers (rejected)" in log.report.summary()


def test_reject_time_outliers_on_the_cli(tmp_path, cli):
    src = _csv(tmp_path, [T0, -5, T0 + 1, T0 + 2, 4_102_444_800])
    out = tmp_path / "log"
    res = cli("ingest", src, "--out", out, "--reject-time-outliers")
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out / "rejects.csv")["line"].tolist() == [3, 6]
    report = json.loads((out / "ingest_report.json").read_text())
    assert report["time_outliers"] == {"negative timestamp": 1, "future timestamp": 1}
    assert report["rows_rejected"] == 2 and accounted(report)


def test_outliers_in_the_saved_report_when_kept(tmp_path, cli):
    out = tmp_path / "log"
    assert cli("ingest", _csv(tmp_path, [T0, -5, T0 + 1, T0 + 2]), "--out", out).exit_code == 0
    report = json.loads((out / "ingest_report.json").read_text())
    assert report["time_outliers"] == {"negative timestamp": 1}
    assert report["time_outlier_examples"] == [{"line": 3, "value": "-5", "reason": "negative timestamp"}]
    assert report["rows_kept"] == 4


def test_future_is_measured_from_now_with_a_day_of_slack():
    now = T0
    tp = parse_time_column(pd.Series([now + 86_400, now + 86_401]))
    kinds = {k: m.tolist() for k, m in tp.outliers(now=now)}
    assert kinds["future timestamp"] == [False, True]


# ----------------------------------------------------------------------------- time zones
def test_naive_text_is_read_in_the_given_timezone_and_offsets_are_kept():
    s = pd.Series(["2020-01-01 00:00", "2020-01-01", "2020-01-01T00:00:00Z", "2020-07-01 00:00+02:00"])
    tp = parse_time_column(s, timezone="Europe/Paris")
    assert tp.seconds.tolist() == [1_577_833_200, 1_577_833_200, 1_577_836_800, 1_593_554_400]


def test_an_unknown_timezone_is_an_ingest_error():
    with pytest.raises(IngestError, match="unknown timezone 'Mars/Olympus'"):
        parse_time_column(pd.Series(["2020-01-01 00:00"]), timezone="Mars/Olympus")


def test_an_error_quotes_a_huge_field_cut_short(tmp_path):
    huge = "9" * 1_000_000
    with pytest.raises(IngestError) as e:
        read_events(_csv(tmp_path, [huge, huge, T0]))
    msg = str(e.value)
    assert "2 of 3 rows (67%) are bad" in msg and "timestamp too long: 2" in msg
    assert "... (1,000,000 characters)" in msg and len(msg) < 2_000
