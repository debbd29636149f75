import numpy as np
import pandas as pd
import pytest

from chronorec.temporal.forecast.core import (
    SeriesMatrix,
    fit_scaler,
    forecast_metrics,
    mase_scale,
    rolling_origin,
    to_matrix,
)


def _matrix(Y: np.ndarray, season: int = 7) -> SeriesMatrix:
    periods = pd.date_range("2024-01-01", periods=Y.shape[1], freq="D")
    return SeriesMatrix(ids=np.arange(len(Y)), periods=periods, Y=Y.astype(np.float64), season=season)


def test_metrics_hand_computed():
    actual = np.array([[[1.0, 2.0]], [[0.0, 4.0]]])  # 2 series, 1 origin, h = 2
    pred = np.array([[[2.0, 2.0]], [[0.0, 1.0]]])
    scale = np.array([0.5, 0.0])
    m = forecast_metrics(actual, pred, scale)
    assert m["MAE"] == pytest.approx((1 + 0 + 0 + 3) / 4)
    assert m["MSE"] == pytest.approx((1 + 0 + 0 + 9) / 4)
    assert m["RMSE"] == pytest.approx(np.sqrt(2.5))
    # sMAPE: 200*1/3, 0, 0 (both zero), 200*3/5
    assert m["sMAPE"] == pytest.approx((200 / 3 + 0 + 0 + 120) / 4)
    assert m["MASE"] == pytest.approx(0.5 / 0.5) and m["series_zero_scale"] == 1
    assert m["by_horizon"]["MAE"] == pytest.approx([0.5, 1.5])


def test_mase_scale_is_in_sample_seasonal_naive():
    y = np.array([[1.0, 2, 3, 2, 4, 6]])
    assert mase_scale(y, 3)[0] == pytest.approx((1 + 2 + 3) / 3)


def test_seasonal_naive_exact_on_periodic_series():
    pattern = np.array([3.0, 1, 4, 1, 5, 9, 2])
    Y = np.stack([np.tile(pattern, 12), np.tile(pattern[::-1] * 2, 12)])
    ev = rolling_origin(_matrix(Y), h=10, n_origins=3, models=("seasonal_naive", "naive"))
    sn = ev["results"]["seasonal_naive"]
    assert sn["MAE"] == 0.0 and sn["RMSE"] == 0.0
    # a purely periodic series has a zero in-sample scale: left out of MASE and counted
    assert np.isnan(sn["MASE"]) and sn["series_zero_scale"] == 2
    assert ev["results"]["naive"]["MAE"] > 1.0
    np.testing.assert_array_equal(ev["forecasts"]["seasonal_naive"], ev["actual"])


def test_scaler_fit_on_training_window_only():
    rng = np.random.default_rng(0)
    Y = rng.poisson(20, size=(5, 120)).astype(float)
    o0 = 120 - 7 - 2 * 7  # the first of 3 origins 7 apart with h = 7
    mu, sd = fit_scaler(Y[:, :o0])
    Y2 = Y.copy()
    Y2[:, o0:] *= 1000  # a different future
    mu2, sd2 = fit_scaler(Y2[:, :o0])
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sd, sd2)
    # the global models' forecasts at the first origin do not depend on values after it
    kw = {
        "h": 7,
        "n_origins": 3,
        "models": ("gbm", "lstm", "transformer"),
        "params": {
            "lstm": {"epochs": 2},
            "transformer": {"epochs": 2},
            "gbm": {"max_iter": 40},
        },
        "threads": 1,
    }
    a = rolling_origin(_matrix(Y), **kw)
    b = rolling_origin(_matrix(Y2), **kw)
    for name in ("gbm", "lstm", "transformer"):
        np.testing.assert_allclose(a["forecasts"][name][:, 0], b["forecasts"][name][:, 0], rtol=1e-6)
        assert not np.allclose(a["forecasts"][name][:, -1], b["forecasts"][name][:, -1])


def test_global_gbm_learns_weekly_pattern_better_than_naive():
    rng = np.random.default_rng(1)
    t = np.arange(200)
    Y = np.stack([10 + 5 * np.sin(2 * np.pi * (t + s) / 7) + rng.normal(0, 0.5, len(t)) for s in range(6)])
    ev = rolling_origin(
        _matrix(Y),
        h=7,
        n_origins=4,
        models=("naive", "seasonal_naive", "gbm"),
        params={"gbm": {"max_iter": 60, "learning_rate": 0.15}},
    )
    r = ev["results"]
    assert r["gbm"]["MASE"] < r["seasonal_naive"]["MASE"] < r["naive"]["MASE"]


def test_to_matrix_fills_missing_periods():
    s = pd.DataFrame(
        {"series_id": ["a", "a", "b"], "period": ["2024-01-01", "2024-01-03", "2024-01-02"], "y": [1.0, 3.0, 2.0]}
    )
    sm = to_matrix(s)  # each series starts at its first event: NaN before, 0 where a later period has no row
    np.testing.assert_array_equal(sm.Y, [[1.0, 0.0, 3.0], [np.nan, 2.0, 0.0]])
    assert sm.season == 7
    assert to_matrix(s, start="grid").Y.tolist() == [[1.0, 0.0, 3.0], [0.0, 2.0, 0.0]]


def test_global_transformer_beats_naive_and_seasonal_naive_on_planted_season_and_trend():
    # 8 series, a weekly cycle (phase per series) on a linear trend, small noise: the trend takes the
    # test periods above the training window's range, so seasonal naive lags and the level must be
    # carried over from the input window
    rng = np.random.default_rng(2)
    t = np.arange(150)
    Y = np.stack(
        [
            20 + 0.08 * t * (1 + s % 3) + 6 * np.sin(2 * np.pi * (t + s) / 7) + rng.normal(0, 0.4, len(t))
            for s in range(8)
        ]
    )
    ev = rolling_origin(
        _matrix(Y),
        h=7,
        n_origins=3,
        models=("naive", "seasonal_naive", "transformer"),
        params={"transformer": {"epochs": 25, "patience": 25, "lr": 3e-3}},
        threads=1,
    )
    r = ev["results"]
    assert r["transformer"]["MASE"] < 0.5 * r["naive"]["MASE"]
    assert r["transformer"]["MASE"] < 0.9 * r["seasonal_naive"]["MASE"]
    # windows of 28 periods ending 2 h before the training window's end, for every series
    assert r["transformer"]["train_windows"] == 8 * (150 - 3 * 7 - 28 - 2 * 7 + 1)


def test_forecaster_configs_are_validated_with_the_old_defaults():
    from pydantic import ValidationError

    from chronorec.errors import ConfigError
    from chronorec.temporal.forecast.core import model_config
    from chronorec.temporal.forecast.forecaster_config import TransformerForecastConfig

    t = model_config("transformer", {"dim": 16})
    assert isinstance(t, TransformerForecastConfig) and t.dim == 16 and t.center and t.epochs == 40
    assert not model_config("lstm").center and model_config("lstm").hidden == 64 and model_config("gbm").max_iter == 300
    for bad in ({"hiden": 32}, {"threads": 1}):  # a misspelt key, or a run setting among the hyper-parameters
        with pytest.raises(ValidationError):
            model_config("lstm", bad)
    Y = np.tile(np.arange(7.0), (2, 6))
    with pytest.raises(ConfigError, match="unknown forecaster"):
        rolling_origin(_matrix(Y), h=7, n_origins=2, models=("naive", "prophet"))


def _weekly_counts(n_series: int = 3, T: int = 196, seed: int = 0) -> SeriesMatrix:
    """Planted weekly pattern of counts (Poisson around it), one level per series; Sundays near 0."""
    rng = np.random.default_rng(seed)
    pattern = np.array([6.0, 9, 11, 12, 10, 4, 0.5])
    Y = np.stack([rng.poisson(np.tile(pattern, T // 7 + 1)[:T] * (k + 1)) for k in range(n_series)]).astype(float)
    return _matrix(Y)


def test_forecaster_learns_planted_season_with_covering_non_negative_intervals():
    from chronorec.temporal.forecast.forecaster import fit_forecaster

    sm = _weekly_counts()
    fc = fit_forecaster(sm, h=14, methods=("naive", "seasonal_naive", "ets"), levels=(80, 95), n_origins=6)
    f = fc.forecast()
    assert len(f) == 3 * 14 and f["period"].min() == sm.periods[-1] + pd.Timedelta(days=1)
    assert "naive" not in fc.methods  # the season is learnt: never the flat last value
    for k, sid in enumerate(fc.ids):
        g = f[f["series_id"] == sid]
        truth = np.tile([6.0, 9, 11, 12, 10, 4, 0.5], 3)[196 % 7 :][:14] * (k + 1)
        assert np.abs(g["mean"].to_numpy() - truth).mean() < 0.25 * truth.mean()
        # the 95% band holds the planted mean, and is wider than the 80% one
        assert ((g["lo-95"] <= truth) & (truth <= g["hi-95"])).mean() >= 0.9
        assert (g["hi-95"] - g["lo-95"] >= g["hi-80"] - g["lo-80"]).all()
    assert fc.nonnegative and (f[["mean", "lo-80", "lo-95"]] >= 0).all().all()
    # counts whose lower band would go below zero are clipped there, never negative
    assert (f["lo-95"] == 0).any()


def test_forecaster_save_load_gives_identical_forecasts(tmp_path):
    from chronorec.errors import ModelLoadError
    from chronorec.temporal.forecast.forecaster import fit_forecaster, load_forecaster

    sm = _weekly_counts(2, T=84)
    fc = fit_forecaster(sm, h=7, methods=("seasonal_naive", "theta", "tsb"), n_origins=4)
    fc.save(tmp_path / "fc")
    again = load_forecaster(tmp_path / "fc")
    pd.testing.assert_frame_equal(fc.forecast(), again.forecast())
    assert again.methods == fc.methods and not any(p.suffix == ".pkl" for p in (tmp_path / "fc").iterdir())
    (tmp_path / "fc" / "forecaster.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="checksum"):
        load_forecaster(tmp_path / "fc")


def test_conformal_quantile_is_the_finite_sample_rank():
    from chronorec.temporal.forecast.forecaster import conformal_quantiles

    z = np.arange(1.0, 101.0).reshape(1, 100, 1)  # 100 scaled errors at one step
    q = conformal_quantiles(z, [80, 95])
    assert q[:, 0].tolist() == [81.0, 96.0]  # ceil(101 * 0.8) = 81st, ceil(101 * 0.95) = 96th


def test_held_out_coverage_is_near_nominal_on_a_planted_series():
    from chronorec.temporal.forecast.forecaster import interval_coverage

    sm = _weekly_counts(6, T=210, seed=3)
    r = interval_coverage(sm, h=7, n_test=4, n_calibration=6, methods=("seasonal_naive", "ets"), levels=(80,))
    assert abs(r["coverage"]["80"] - 0.80) < 0.12 and len(r["per_origin"]) == 4


def test_intermittent_methods_forecast_the_demand_rate():
    from chronorec.temporal.forecast.methods import forecast_matrix

    rng = np.random.default_rng(0)
    y = np.where(rng.random((1, 300)) < 0.1, 5.0, 0.0)  # demand of 5 on one day in ten
    for name in ("croston_sba", "tsb", "adida"):
        f, fails = forecast_matrix(name, y, 7, 7)
        assert fails == 0 and np.allclose(f, f[0, 0]) and 0.25 < f[0, 0] < 1.0, name


def test_frequency_follows_the_span_and_a_short_one_names_a_finer_frequency():
    from chronorec.errors import DataError
    from chronorec.temporal.forecast.forecaster import fit_forecaster
    from chronorec.temporal.forecast.pipeline import series_matrix

    hours = pd.date_range("2024-01-01", periods=9 * 24, freq="h")
    s = pd.DataFrame({"series_id": "a", "period": hours, "y": 1.0 + (hours.hour > 8)})
    assert series_matrix(s, h=7, n_origins=8).season == 24  # 9 days: hourly
    days = series_matrix(s, freq="day", h=7, n_origins=8)
    assert days.Y.shape == (1, 9) and days.Y[0, 0] == 24 + 15
    with pytest.raises(DataError, match=r"--freq hour \(216 periods\)"):
        fit_forecaster(days, h=7, n_origins=8)
    long = pd.DataFrame({"series_id": "a", "period": pd.date_range("2020-01-01", periods=1500, freq="D"), "y": 1.0})
    assert series_matrix(long, h=4, n_origins=8).season == 52  # four years: weekly


def test_net_counts_with_the_odd_negative_day_are_still_clipped_at_zero():
    from chronorec.temporal.forecast.forecaster import fit_forecaster

    sm = _weekly_counts(2)
    sm.Y[0, 50] = -40.0  # a day of returns: 1 value in 392
    fc = fit_forecaster(sm, h=7, methods=("seasonal_naive",), n_origins=4)
    assert fc.nonnegative and (fc.forecast()[["mean", "lo-80", "lo-95"]] >= 0).all().all()
    sm.Y[:, ::20] = -5.0  # 5% negative: not counts, left as they are
    assert not fit_forecaster(sm, h=7, methods=("seasonal_naive",), n_origins=4).nonnegative


def test_without_statsforecast_the_numpy_rungs_still_forecast_and_the_rest_name_the_extra(monkeypatch):
    import chronorec.temporal.forecast.forecaster as fmod
    import chronorec.temporal.forecast.methods as mmod
    from chronorec.errors import ConfigError

    monkeypatch.setattr(mmod, "has_statsforecast", lambda: False)
    monkeypatch.setattr(fmod, "has_statsforecast", lambda: False)
    sm = _weekly_counts(2, T=84)
    fc = fmod.fit_forecaster(sm, h=7, n_origins=4)
    assert set(fc.methods) <= {"naive", "seasonal_naive"} and len(fc.forecast()) == 14
    with pytest.raises(ConfigError, match=r"chronorec\[forecast\]"):
        mmod.forecast_matrix("ets", sm.Y, 7, 7)


def test_the_forecast_command_runs_the_default_ladder_on_the_base_install(monkeypatch, tmp_path):
    """Without statsforecast the default models (ETS, Theta, Croston... among them) are not an error:
    the methods this install runs are chosen among, and the result names the skipped ones and why;
    asking only for methods that need the extra names the extra."""
    import chronorec.temporal.forecast.methods as mmod
    from chronorec.errors import ConfigError
    from chronorec.temporal.forecast.pipeline import run_forecast
    from chronorec.workflows.sections import ForecastConfig

    monkeypatch.setattr(mmod, "has_statsforecast", lambda: False)
    sm = _weekly_counts(2, T=84)
    defaults = list(ForecastConfig().models)
    assert "ets" in defaults  # the defaults do ask for the extra's methods
    res = run_forecast(sm, tmp_path / "f", h=7, models=defaults, n_origins=2)
    assert "ets" in res["skipped_methods"] and "statsforecast" in res["skipped_methods"]["ets"]
    assert set(res["methods_chosen"]) <= {"naive", "seasonal_naive"}
    assert (tmp_path / "f" / res["table"]).exists()
    with pytest.raises(ConfigError, match=r"ets, theta need statsforecast: pip install 'chronorec\[forecast\]'"):
        run_forecast(sm, tmp_path / "g", h=7, models=["ets", "theta"], n_origins=2)


def _sparse_counts(n_series: int = 40, T: int = 240, seed: int = 0) -> SeriesMatrix:
    """Planted sparse purchases: series k buys on a share 0.03..0.15 of days, a pack of 4..40 units
    (its own size, Poisson around it): most calibration errors are 0, the rest as large as a pack."""
    rng = np.random.default_rng(seed)
    p = np.linspace(0.03, 0.15, n_series)[:, None]
    size = rng.integers(4, 40, n_series)[:, None]
    Y = np.where(rng.random((n_series, T)) < p, rng.poisson(size, (n_series, T)) + 1, 0).astype(float)
    return _matrix(Y)


def test_per_series_intervals_hold_on_the_days_a_purchase_is_forecast():
    """Pooled errors of sparse counts are mostly 0: the pooled band has width 0 exactly on the days
    a purchase is forecast. Per-series calibration covers those days at least at the level, keeps counts
    non-negative, and gives no zero-width band to a series with a recent purchase."""
    from chronorec.temporal.forecast.forecaster import interval_coverage

    sm = _sparse_counts()
    kw = {"h": 7, "n_test": 4, "n_calibration": 8, "methods": ("naive", "seasonal_naive"), "levels": (80.0, 95.0)}
    pooled = interval_coverage(sm, calibration="pooled", **kw)["report"]["levels"]
    r = interval_coverage(sm, arrays=True, **kw)
    series = r["report"]["levels"]
    assert pooled["80"]["nonzero_forecast"] < 0.1  # the failure: the pooled 80% band misses the purchase days
    assert series["80"]["nonzero_forecast"] >= 0.75 and series["95"]["nonzero_forecast"] >= 0.9
    assert series["80"]["series_median"] >= 0.75 and series["95"]["series_median"] >= 0.9
    assert series["80"]["zero_width_share_recent"] == 0.0 and series["95"]["zero_width_share_recent"] == 0.0
    assert pooled["80"]["zero_width_share_recent"] > 0.5
    a = r["arrays"]
    assert np.nanmin(a["lo-80"]) >= 0 and np.nanmin(a["mean"]) >= 0
    assert series["95"]["MSIS"] < pooled["95"]["MSIS"]


def test_series_start_at_their_first_event_and_methods_fit_the_observed_tail():
    from chronorec.temporal.forecast.forecaster import fit_forecaster
    from chronorec.temporal.forecast.methods import forecast_matrix

    T = 120
    s = pd.DataFrame(
        {
            "series_id": ["old"] * T + ["new"] * 20,
            "period": list(pd.date_range("2024-01-01", periods=T, freq="D"))
            + list(pd.date_range("2024-04-10", periods=20)),
            "y": [1.0] * T + [5.0, 6.0] * 10,
        }
    )
    sm = to_matrix(s)
    new = list(sm.ids).index("new")
    assert np.isnan(sm.Y[new, :100]).all() and np.isfinite(sm.Y[new, 100:]).all()
    # naive forecasts the new item's last value, not the zeros before it existed
    f, _ = forecast_matrix("naive", sm.Y, 3, 7)
    assert f[new].tolist() == [6.0, 6.0, 6.0]
    # at an origin before a series starts there is nothing to forecast
    assert np.isnan(forecast_matrix("seasonal_naive", sm.Y[:, :90], 3, 7)[0][new]).all()
    fc = fit_forecaster(sm, h=7, methods=("naive", "seasonal_naive"), n_origins=2)
    out = fc.forecast()
    assert out["mean"].notna().all() and (out[out["series_id"] == "new"]["mean"] >= 5.0).all()


def test_the_vectorised_statsforecast_call_matches_each_series_own_fit():
    """One StatsForecast call over ragged series returns each series' own model forecast, in order."""
    import warnings

    from statsforecast.models import AutoETS

    from chronorec.temporal.forecast.methods import forecast_matrix

    rng = np.random.default_rng(1)
    Y = 20 + rng.normal(0, 3, (12, 80)).cumsum(1)
    Y[3, :30] = np.nan  # a series that starts later
    f, fails = forecast_matrix("ets", Y, 5, 7, n_jobs=1)
    assert fails == 0
    for s in (0, 3, 10, 11):
        y = Y[s][np.isfinite(Y[s])][-56:]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            own = AutoETS(season_length=7).forecast(y=y, h=5)["mean"]
        np.testing.assert_allclose(f[s], own, rtol=1e-6)
