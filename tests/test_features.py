import numpy as np
import pandas as pd
import pytest

from chronorec.temporal.features import (
    PeriodGrid,
    activity_series,
    change_points,
    cusum_change_point,
    dominant_periods,
    feature_table,
)

DAY = 86400
T0 = 1_700_006_400  # 2023-11-15 00:00 UTC, a Wednesday


def _tiny() -> pd.DataFrame:
    # user a: day 0: 2 pv; day 1: nothing; day 2: 1 pv + 1 buy (value 10); user b: day 1: 1 pv
    rows = [
        ("a", "i1", T0 + 3600, "pv", 0.0),
        ("a", "i2", T0 + 7200, "pv", 0.0),
        ("b", "i1", T0 + DAY + 60, "pv", 0.0),
        ("a", "i3", T0 + 2 * DAY + 3600, "pv", 0.0),
        ("a", "i3", T0 + 2 * DAY + 5400, "buy", 10.0),
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "behavior", "value"])


def test_window_stats_hand_computed():
    df = _tiny()
    ft = feature_table(df, cutoffs=[T0 + 3 * DAY], freq="day", windows=(1, 2, 3))
    a = ft.set_index("entity_id").loc["a"]
    # daily counts of a: [2, 0, 2]
    assert a["n_events"] == 4 and a["n_buy"] == 1 and a["n_pv"] == 3
    assert a["w1_count"] == 2 and a["w1_mean"] == 2 and a["w1_std"] == 0
    assert a["w2_count"] == 2 and a["w2_mean"] == 1 and a["w2_std"] == pytest.approx(1.0)
    assert a["w2_min"] == 0 and a["w2_max"] == 2
    assert a["w3_count"] == 4 and a["w3_mean"] == pytest.approx(4 / 3)
    assert a["w3_std"] == pytest.approx(np.std([2, 0, 2]))
    assert a["w1_share_buy"] == pytest.approx(0.5) and a["w3_share_pv"] == pytest.approx(0.75)
    assert a["w1_value"] == pytest.approx(10.0)
    # recency: last event 1.5 h after day-2 midnight -> 22.5 h before the cut-off
    assert a["hours_since_last"] == pytest.approx(22.5)
    assert a["hours_since_last_buy"] == pytest.approx(22.5)
    assert a["hours_since_last_pv"] == pytest.approx(23.0)
    # gaps: 1 h, 48 h - 1 h + 0 = 47 h, 0.5 h
    assert a["gap_mean_h"] == pytest.approx((1 + 47 + 0.5) / 3)
    assert a["gap_max_h"] == pytest.approx(47) and a["gap_last_h"] == pytest.approx(0.5)
    assert a["active_periods"] == 2
    assert a["slope_w3"] == pytest.approx(0.0)
    # hour-of-day profile: events at 01:00, 02:00, 01:00, 01:30 UTC
    assert a["hod_01"] == pytest.approx(0.75) and a["hod_02"] == pytest.approx(0.25)
    # day-of-week: day 0 Wednesday (2), day 2 Friday (4)
    assert a["dow_2"] == pytest.approx(0.5) and a["dow_4"] == pytest.approx(0.5)
    b = ft.set_index("entity_id").loc["b"]
    assert b["n_events"] == 1 and np.isnan(b["gap_mean_h"]) and np.isnan(b["hours_since_last_buy"])


def test_cutoff_mid_period_uses_only_complete_periods_for_series():
    df = _tiny()
    # cut-off at day 2, 01:30: the pv at 01:00 counts for recency, the day-2 period is incomplete
    ft = feature_table(df, cutoffs=[T0 + 2 * DAY + 5400], freq="day", windows=(1,))
    a = ft.set_index("entity_id").loc["a"]
    assert a["n_events"] == 3  # the buy at exactly the cut-off is excluded (strictly before)
    assert a["w1_count"] == 0  # last complete period is day 1
    assert a["hours_since_last"] == pytest.approx(0.5)
    assert np.isnan(a["hours_since_last_buy"])


def test_planted_future_event_changes_no_earlier_feature():
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "user_id": rng.choice(["u1", "u2", "u3"], n),
            "item_id": rng.integers(0, 50, n),
            "timestamp": T0 + np.sort(rng.integers(0, 30 * DAY, n)),
            "behavior": rng.choice(["pv", "cart", "buy"], n, p=[0.8, 0.15, 0.05]),
            "value": rng.random(n),
        }
    )
    cutoffs = [T0 + d * DAY + h * 3600 for d in range(1, 30) for h in (0, 7)]
    base = feature_table(df, cutoffs=cutoffs, freq="day", windows=(1, 7, 28))
    t_future = T0 + 20 * DAY + 5 * 3600
    planted = pd.concat(
        [
            df,
            pd.DataFrame(
                {
                    "user_id": ["u1", "u1", "new"],
                    "item_id": [999, 998, 997],
                    "timestamp": [t_future, t_future + 10, t_future],
                    "behavior": ["buy", "buy", "pv"],
                    "value": [1e6, 1e6, 5.0],
                }
            ),
        ],
        ignore_index=True,
    )
    after = feature_table(planted, cutoffs=cutoffs, freq="day", windows=(1, 7, 28))
    before_mask = base["cutoff"] <= t_future
    pd.testing.assert_frame_equal(
        base[before_mask].reset_index(drop=True), after[after["cutoff"] <= t_future].reset_index(drop=True)
    )
    # and the planted event is seen after it (the test can fail)
    later = after[(after["cutoff"] > t_future + 10) & (after["entity_id"] == "u1")]
    assert (later["hours_since_last_buy"] < 24 * 10).all() and "new" in set(after["entity_id"])
    assert (after[after["cutoff"] > t_future]["w28_value"] >= 1e6).any()


def _cyclic_user(name: str, slope: float, n_days: int, rng: np.random.Generator) -> pd.DataFrame:
    d = np.arange(n_days)
    rate = 20 + slope * d + 8 * np.cos(2 * np.pi * d / 7 + 0.5)
    counts = rng.poisson(np.clip(rate, 0.5, None))
    day = np.repeat(d, counts)
    ts = T0 + day * DAY + rng.integers(0, DAY, len(day))
    return pd.DataFrame({"user_id": name, "item_id": 1, "timestamp": ts, "behavior": "pv"})


def test_planted_weekly_cycle_and_trend_are_recovered():
    rng = np.random.default_rng(1)
    n_days = 84
    df = pd.concat([_cyclic_user("up", 0.3, n_days, rng), _cyclic_user("down", -0.2, n_days, rng)])
    ft = feature_table(df, cutoffs=[T0 + n_days * DAY], freq="day", windows=(7, 28, 84), slope_windows=(28, 84))
    ft = ft.set_index("entity_id")
    for user in ("up", "down"):
        # frequency bin of the strongest component within one bin of 84 / 7 = 12
        assert abs(n_days / ft.loc[user, "fft1_period"] - n_days / 7) <= 1
        assert ft.loc[user, "fft1_amp"] > 4
    assert ft.loc["up", "slope_w84"] > 0.1 and ft.loc["down", "slope_w84"] < -0.1
    assert ft.loc["up", "slope_w28"] > 0 and ft.loc["down", "slope_w28"] < 0


def test_dominant_periods_exact_and_phase():
    n = 56
    t = np.arange(n)
    y = 3 * np.cos(2 * np.pi * t / 7 + 0.4) + 1 * np.cos(2 * np.pi * t / 4)
    period, amp, phase = dominant_periods(y, k=2, detrend=False)
    assert period[0] == pytest.approx(7) and amp[0] == pytest.approx(3)
    assert phase[0] == pytest.approx(0.4)
    assert period[1] == pytest.approx(4) and amp[1] == pytest.approx(1)


def test_change_points_cusum_and_binary_segmentation():
    y = np.r_[np.zeros(20), np.full(15, 5.0), np.ones(25)] + np.tile([0.1, -0.1], 30)
    idx, shift, stat = cusum_change_point(y)
    assert int(idx) in (20, 35) and stat > 1.36
    assert change_points(y) == [20, 35]
    assert change_points(np.tile([0.1, -0.1], 30)) == []


def test_activity_series_counts_and_grid():
    df = _tiny()
    s = activity_series(df, freq="day")
    assert list(s.columns) == ["series_id", "period", "count", "count_buy", "count_pv", "value_sum"]
    assert len(s) == 3 + 2  # dense from each user's first event: a from day 1, b from day 2 (of 3)
    assert s[s["series_id"] == "b"]["period"].iloc[0] == pd.Timestamp("2023-11-16")
    a = s[s["series_id"] == "a"]
    assert a["count"].tolist() == [2, 0, 2] and a["count_buy"].tolist() == [0, 0, 1]
    assert a["value_sum"].tolist() == [0.0, 0.0, 10.0]
    assert a["period"].iloc[0] == pd.Timestamp("2023-11-15")
    sparse = activity_series(df, freq="day", dense=False)
    assert len(sparse) == 3
    # a +23 h offset moves 01:00 UTC events into the next local day
    shifted = activity_series(df, freq="day", utc_offset_hours=23)
    sa = shifted[shifted["series_id"] == "a"]
    assert sa["period"].iloc[0] == pd.Timestamp("2023-11-16") and sa["count"].tolist() == [2, 0, 2]


def test_week_grid_starts_on_monday():
    g = PeriodGrid.cover(np.array([T0]), freq="week")
    assert g.labels()[0] == pd.Timestamp("2023-11-13")  # the Monday before
    assert g.complete_before(T0) == 0 and g.complete_before(int(g.start_utc(1))) == 1


def test_named_datasets_have_one_home_for_their_local_time():
    from chronorec.datasets.temporal import load_temporal_dataset, utc_offset_hours
    from chronorec.errors import ConfigError

    assert utc_offset_hours("taobao") == 8.0 and utc_offset_hours("Taobao") == 8.0
    assert utc_offset_hours("synthetic") == 0.0 and utc_offset_hours(None) == 0.0
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_temporal_dataset("nope")
    df = load_temporal_dataset("synthetic", seed=1)
    assert df["timestamp"].dtype == np.int64 and df["timestamp"].is_monotonic_increasing
