import numpy as np
import pandas as pd
import pytest

from chronorec.errors import DataError
from chronorec.evaluation.classification import (
    average_precision,
    binary_metrics,
    multiclass_metrics,
    roc_auc,
)
from chronorec.evaluation.reliability_curves import calibration_curve
from chronorec.evaluation.stats import paired_bootstrap
from chronorec.temporal.behavior import (
    SequenceClassifierConfig,
    funnel_features,
    make_behavior_data,
    make_cutoffs,
    predict_behavior,
    rolling_folds,
)

DAY = 86400
T0 = 1_700_006_400  # midnight UTC


# ----------------------------------------------------------------------------- metrics
def test_binary_metrics_hand_computed():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.6, 0.7, 0.4, 0.2, 0.9])
    m = binary_metrics(y, p)
    # predictions at 0.5: [0,1,1,0,0,1] -> TP 2, FP 1, FN 1, TN 2
    assert m["confusion_matrix"] == [[2, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["macro_f1"] == pytest.approx(2 / 3)
    # pairs (pos, neg): 0.7>all 3, 0.4>0.1,0.2 (2 of 3), 0.9>all 3 -> 8/9
    assert m["roc_auc"] == pytest.approx(8 / 9)
    # ranking 0.9(+) 0.7(+) 0.6(-) 0.4(+): AP = (1 + 1 + 3/4) / 3
    assert m["pr_auc"] == pytest.approx((1 + 1 + 0.75) / 3)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))


def test_auc_and_ap_with_ties():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.5, 0.5, 0.8, 0.1])
    assert roc_auc(y, s) == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    # thresholds: 0.8 -> P 1, R .5; 0.5 (tie group) -> P 2/3, R 1
    assert average_precision(y, s) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert np.isnan(roc_auc(np.ones(3), np.arange(3)))


def test_multiclass_metrics_hand_computed():
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    m = multiclass_metrics(y, proba, classes=["pv", "cart", "buy"])
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["per_class"]["cart"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["buy"]["recall"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    onehot = np.eye(3)[y]
    assert m["brier"] == pytest.approx(np.mean(((proba - onehot) ** 2).sum(1)))
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.4, 0.3, 0.8])))


def test_calibration_curve_bins():
    c = calibration_curve(np.array([0, 1, 1, 0]), np.array([0.05, 0.15, 0.95, 0.91]), bins=10)
    assert c["count"] == [1, 1, 2]
    assert c["observed"] == [0.0, 1.0, 0.5]
    assert c["mean_predicted"][2] == pytest.approx(0.93)


def test_undefined_metrics_are_nan_not_errors():
    y0, s = np.zeros(4, int), np.array([0.1, 0.4, 0.4, 0.9])
    assert np.isnan(roc_auc(y0, s)) and np.isnan(average_precision(y0, s))
    assert np.isnan(roc_auc(np.ones(4), s)) and average_precision(np.ones(4), s) == 1.0
    m = binary_metrics(np.zeros(0), np.zeros(0))
    assert m["confusion_matrix"] == [[0, 0], [0, 0]] and np.isnan(m["brier"]) and np.isnan(m["roc_auc"])
    mc = multiclass_metrics(np.array([0, 0, 1]), np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]]))
    assert np.isnan(mc["per_class"]["2"]["roc_auc"]) and np.isnan(mc["per_class"]["2"]["pr_auc"])
    assert mc["per_class"]["2"]["precision"] == 0.0 and mc["per_class"]["2"]["support"] == 0
    assert mc["macro_roc_auc"] == pytest.approx(np.mean([mc["per_class"][c]["roc_auc"] for c in "01"]))


def test_calibration_curve_is_the_reliability_curve_of_a_binary_outcome():
    from chronorec.evaluation.reliability_curves import reliability_curve

    rng = np.random.default_rng(0)
    p, y = rng.random(200), rng.random(200) < 0.4
    c, r = calibration_curve(y, p, bins=5), reliability_curve(p, y, n_bins=5)
    assert c["count"] == r["count"].tolist() and c["observed"] == r["accuracy"].tolist()


def test_bootstrap_core_draws_whole_clusters():
    from chronorec.evaluation.stats import bootstrap

    groups = np.array(["a", "a", "a", "b", "c"])
    sizes = bootstrap(len, 5, groups=groups, n_boot=200, seed=1)
    # three clusters drawn per resample: 3..9 cases, and a multiple of the cluster sizes
    assert sizes.min() >= 3 and sizes.max() <= 9 and len(set(sizes)) > 2
    per_case = bootstrap(len, 5, n_boot=20)
    assert (per_case == 5).all()


# ----------------------------------------------------------------------------- data
def _planted(n_users: int = 240, n_days: int = 16, seed: int = 0) -> pd.DataFrame:
    """Users browse daily; a cart on day d is followed by a buy on day d+1 with probability 0.85,
    otherwise buys are rare (0.03 a day): the signal is the recent cart, not the past buy rate."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        act = rng.uniform(0.5, 3)
        p_cart = rng.uniform(0.05, 0.4)
        carted = False
        for d in range(n_days):
            base = T0 + d * DAY
            for _ in range(rng.poisson(act)):
                rows.append((f"u{u}", int(rng.integers(50)), base + int(rng.integers(0, DAY)), "pv"))
            if (carted and rng.random() < 0.85) or rng.random() < 0.03:
                rows.append((f"u{u}", int(rng.integers(50)), base + int(rng.integers(0, DAY)), "buy"))
            carted = rng.random() < p_cart
            if carted:
                rows.append((f"u{u}", int(rng.integers(50)), base + DAY - 600 + int(rng.integers(0, 300)), "cart"))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "behavior"])


def test_cutoffs_are_ordered_and_label_windows_do_not_overlap():
    ts = np.array([T0, T0 + 10 * DAY - 1])
    c = make_cutoffs(ts, horizon_s=DAY, n_train=3)
    assert c["test"] == [T0 + 9 * DAY] and c["validation"] == [T0 + 8 * DAY]
    assert c["train"] == [T0 + 5 * DAY, T0 + 6 * DAY, T0 + 7 * DAY]
    assert max(c["train"]) + DAY <= c["validation"][0]


def test_no_leakage_from_events_after_the_test_cutoff():
    df = _planted(n_users=60, n_days=10)
    base = make_behavior_data(df, horizon_s=DAY)
    t_test = base.cutoffs["test"][0]
    t_val = base.cutoffs["validation"][0]
    # rewrite everything at or after the validation cut-off: all buys, and extra events
    future = df["timestamp"] >= t_val
    changed = df.copy()
    changed.loc[future, "behavior"] = "buy"
    extra = pd.DataFrame(
        {"user_id": ["u0", "zz"], "item_id": [1, 2], "timestamp": [t_test + 5, t_val], "behavior": "buy"}
    )
    changed = pd.concat([changed, extra], ignore_index=True)
    other = make_behavior_data(changed, horizon_s=DAY, cutoffs=base.cutoffs)
    tr_a, tr_b = base.part("train"), other.part("train")
    pd.testing.assert_frame_equal(
        base.cases.iloc[tr_a].reset_index(drop=True), other.cases.iloc[tr_b].reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        base.features.iloc[tr_a].reset_index(drop=True), other.features.iloc[tr_b].reset_index(drop=True)
    )
    np.testing.assert_array_equal(base.past_rate[tr_a], other.past_rate[tr_b])
    # validation features (before t_val) are unchanged; its labels did change
    va_a, va_b = base.part("validation"), other.part("validation")
    pd.testing.assert_frame_equal(
        base.features.iloc[va_a].reset_index(drop=True), other.features.iloc[va_b].reset_index(drop=True)
    )
    assert other.cases["y_target"].to_numpy()[va_b].mean() > base.cases["y_target"].to_numpy()[va_a].mean()


def test_labels_hand_checked():
    df = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b"],
            "item_id": [1, 2, 3, 1, 1],
            "timestamp": [T0 + 10, T0 + DAY + 5, T0 + DAY + 50, T0 + 20, T0 + 2 * DAY + 5],
            "behavior": ["pv", "cart", "buy", "buy", "pv"],
        }
    )
    cut = {"train": [T0 + DAY], "validation": [T0 + 2 * DAY], "test": [T0 + 3 * DAY]}
    d = make_behavior_data(df, horizon_s=DAY, cutoffs=cut, windows=(1,))
    tr = d.cases.iloc[d.part("train")].set_index("user_id")
    assert tr.loc["a", "y_target"] == 1 and tr.loc["b", "y_target"] == 0
    assert d.classes[tr.loc["a", "next_type"]] == "cart" and tr.loc["b", "next_type"] == -1
    # b's past rate at day 1: one day of history, with a buy -> 1.0; a: 0
    rate = pd.Series(d.past_rate[d.part("train")], index=tr.index)
    assert rate["b"] == 1.0 and rate["a"] == 0.0


def test_learned_models_beat_trivial_baseline_on_planted_signal():
    df = _planted()
    res = predict_behavior(
        df,
        tasks=("target",),
        horizon_s=DAY,
        n_train_cutoffs=8,
        step_s=DAY,
        models=("logistic", "gru", "gru+features"),
        seq_config=SequenceClassifierConfig(epochs=6, max_len=20, dim=16, lr=2e-3, patience=3),
        threads=1,
        progress=False,
    )
    r = res["tasks"]["target"]
    base = r["past_rate"]["test"]["roc_auc"]
    assert r["logistic"]["test"]["roc_auc"] > base + 0.1
    assert r["logistic"]["test"]["roc_auc"] > 0.8
    assert r["gru"]["test"]["roc_auc"] > base
    assert r["gru+features"]["test"]["roc_auc"] > base + 0.1  # the head sees the recent-cart features
    assert r["gru+features"]["parameters"] > r["gru"]["parameters"]
    assert r["gru"]["epochs_run"] >= 1 and r["base_rate"]["test"]["roc_auc"] == pytest.approx(0.5)


def test_funnel_features_hand_checked_and_past_only():
    H = 3600
    t = T0 + 5 * DAY
    df = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "a", "b", "b", "a"],
            "item_id": [1, 1, 2, 2, 3, 7, 7, 9],
            "timestamp": [t - 30 * H, t - 2 * H, t - 50 * H, t - 40 * H, t - 3 * H, t - 100 * H, t - 1, t],
            "behavior": ["cart", "pv", "cart", "buy", "fav", "buy", "pv", "cart"],  # the last one is at t
        }
    )
    classes = ["buy", "cart", "fav", "pv"]
    f = funnel_features(df, np.array(["a", "b"]), t, classes=classes, utc_offset_hours=0).set_index(
        pd.Index(["a", "b"])
    )
    # item 1 carted 30 h ago and never bought: open; item 2 carted then bought: closed; the cart at t is unseen
    assert f.loc["a", "open_cart_items"] == 1 and f.loc["a", "open_cart_items_24h"] == 0
    assert f.loc["a", "open_cart_items_72h"] == 1 and f.loc["a", "hours_since_open_cart"] == pytest.approx(30)
    assert f.loc["a", "open_fav_items_24h"] == 1 and f.loc["a", "hours_since_open_fav"] == pytest.approx(3)
    # events of the last 24 h on open items: the pv of item 1 and the fav of item 3 itself
    assert f.loc["a", "open_items_viewed_24h"] == 2
    assert f.loc["a", "recent6h_pv"] == 1 and f.loc["a", "recent6h_fav"] == 1 and f.loc["a", "recent6h_cart"] == 0
    assert f.loc["a", "recent72h_items"] == 3 and f.loc["a", "target_days"] == 1
    assert f.loc["b", "recent1h_pv"] == 1 and f.loc["b", "open_cart_items"] == 0
    assert f.loc["b", "target_days"] == 1 and np.isnan(f.loc["b", "hours_since_open_cart"])
    assert f["cutoff_hour_cos"].tolist() == [1.0, 1.0]  # midnight UTC


def test_sub_daily_training_cutoffs_keep_label_windows_before_validation():
    ts = np.array([T0 + 17, T0 + 6 * DAY - 1])
    c = make_cutoffs(ts, horizon_s=DAY, step_s=6 * 3600, n_train=None)
    assert c["test"] == [T0 + 5 * DAY] and c["validation"] == [T0 + 4 * DAY]
    # from validation - H back to one day after the (aligned) start, every 6 h
    assert c["train"] == [T0 + DAY + i * 6 * 3600 for i in range(9)]
    assert max(c["train"]) + DAY <= c["validation"][0]


def test_rolling_folds_step_back_one_horizon_and_keep_labels_before_validation():
    ts = np.array([T0 + 17, T0 + 8 * DAY - 1])
    c = make_cutoffs(ts, horizon_s=DAY, step_s=DAY, n_train=None)
    folds = rolling_folds(c, DAY, 3)
    assert [f["test"] for f in folds] == [[T0 + 5 * DAY], [T0 + 6 * DAY], [T0 + 7 * DAY]]
    assert folds[-1] == c  # the last fold is the single-cut-off evaluation
    for f in folds:
        assert f["validation"] == [f["test"][0] - DAY]
        assert f["train"] and max(f["train"]) + DAY <= f["validation"][0]
    assert folds[0]["train"] == [T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
    with pytest.raises(ValueError, match="rolling test cut-offs"):
        rolling_folds(c, DAY, 7)


def test_paired_bootstrap_detects_a_better_score_and_not_an_equal_one():
    rng = np.random.default_rng(0)
    n = 600
    y = rng.random(n) < 0.3
    users = np.repeat(np.arange(n // 3), 3)  # each user has a case in each of 3 strata
    strata = np.tile(np.arange(3), n // 3)
    good = y + rng.normal(0, 0.8, n)
    noise = rng.normal(0, 1, n)
    r = paired_bootstrap(y, good, noise, users, strata=strata, n_boot=300)
    per_stratum = [
        roc_auc(y[strata == k], good[strata == k]) - roc_auc(y[strata == k], noise[strata == k]) for k in range(3)
    ]
    assert r["difference"] == pytest.approx(np.mean(per_stratum))
    assert r["ci_low"] > 0.15 and r["p_value"] < 0.01
    same = paired_bootstrap(y, good, good + 0.0, users, strata=strata, n_boot=100)
    assert same["difference"] == 0 and same["ci_low"] == 0 and same["p_value"] == 1.0
    tie = paired_bootstrap(y, noise, rng.normal(0, 1, n), users, n_boot=300, metric="pr_auc")
    assert tie["ci_low"] < 0 < tie["ci_high"]


def test_rolling_evaluation_refits_per_fold_and_pools_the_test_cases():
    df = _planted(n_users=160, n_days=12)
    res = predict_behavior(
        df, tasks=("target",), horizon_s=DAY, step_s=DAY, test_cutoffs=3, models=("logistic",), progress=False
    )
    d, r = res["data"], res["tasks"]["target"]
    assert len(d["folds"]) == 3 and d["folds"][-1]["test"] == d["cutoffs"]["test"]
    assert d["cases"]["test"] == sum(
        len(
            set(
                df.loc[
                    df["timestamp"] < pd.Timestamp(f["test"][0].removesuffix(" UTC"), tz="UTC").timestamp(), "user_id"
                ]
            )
        )
        for f in d["folds"]
    )
    folds = r["logistic"]["folds"]
    assert len(folds) == 3 and all("params" in f for f in folds)
    assert r["logistic"]["test_mean_over_folds"]["roc_auc"] == pytest.approx(np.mean([f["roc_auc"] for f in folds]))
    # planted signal (yesterday's cart): the refitted model beats the past rate on every fold, significantly
    assert all(f["roc_auc"] > p["roc_auc"] for f, p in zip(folds, r["past_rate"]["folds"], strict=True))
    assert r["logistic"]["vs_past_rate"]["roc_auc"]["ci_low"] > 0.05


def test_feature_models_search_aligned_training_cutoffs_on_validation():
    from chronorec.temporal.behavior.protocol import _training_sets

    df = _planted(n_users=60, n_days=10)
    d = make_behavior_data(df, horizon_s=DAY, step_s=6 * 3600)
    rows = d.part("train")
    sets = _training_sets(d, rows, tune=True)
    cut = d.cases["cutoff"].to_numpy()
    assert set(sets) == {"all", "aligned"} and len(sets["all"]) == len(rows)
    assert set((d.cutoffs["test"][0] - cut[sets["aligned"]]) % DAY) == {0}
    assert len(np.unique(cut[rows])) == 4 * len(np.unique(cut[sets["aligned"]])) - 3
    assert set(_training_sets(d, rows, tune=False)) == {"all"}
    res = predict_behavior(df, tasks=("target",), horizon_s=DAY, step_s=6 * 3600, models=("logistic",), progress=False)
    search = res["tasks"]["target"]["logistic"]["search"]
    assert {r["train_cutoffs"] for r in search} == {"all", "aligned"}
    best = max(search, key=lambda r: r["validation"])
    assert res["tasks"]["target"]["logistic"]["train_cutoffs"] in {
        r["train_cutoffs"] for r in search if r["validation"] == best["validation"]
    }


# ----------------------------------------------------------------------------- saved model, served
def _buyer_group(n_users: int = 60, n_days: int = 10, seed: int = 0) -> pd.DataFrame:
    """Every user browses daily; the first third ("b0", "b1", ...) buy on 70% of days, the others on 3%."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        buyer = u < n_users // 3
        name = f"b{u}" if buyer else f"u{u}"
        for d in range(n_days):
            base = T0 + d * DAY
            for _ in range(1 + rng.poisson(2)):
                rows.append((name, int(rng.integers(30)), base + int(rng.integers(0, DAY)), "pv"))
            if rng.random() < (0.7 if buyer else 0.03):
                rows.append((name, int(rng.integers(30)), base + int(rng.integers(0, DAY)), "buy"))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "behavior"])


@pytest.fixture(scope="module")
def saved_behavior_model(tmp_path_factory):
    from chronorec.temporal.behavior.model import fit_behavior_model

    m = fit_behavior_model(_buyer_group(), model="logistic", horizon_s=DAY, step_s=DAY, windows=(1, 7), threads=1)
    path = tmp_path_factory.mktemp("bm") / "model"
    m.save(path)
    return m, path


def test_saved_behavior_model_round_trip_ranks_the_planted_buyers_higher(saved_behavior_model):
    from chronorec.temporal.behavior.model import load_behavior_model

    m, path = saved_behavior_model
    assert {p.suffix for p in path.iterdir()} <= {".json", ".safetensors", ".parquet"}
    before = m.predict()
    after = load_behavior_model(path).predict()
    pd.testing.assert_frame_equal(before, after)
    assert len(after) == 60 and after["probability"].between(0, 1).all()
    buyer = after["user_id"].str.startswith("b")
    assert roc_auc(buyer.to_numpy().astype(int), after["probability"].to_numpy()) > 0.95
    assert after.loc[buyer, "probability"].mean() > 4 * after.loc[~buyer, "probability"].mean()
    assert after.loc[buyer, "probability"].mean() == pytest.approx(0.7, abs=0.2)  # calibrated, not just ranked
    r = m.report
    assert r["test"]["roc_auc"] > 0.9 and r["test"]["brier"] < 0.15 and r["reliability_test"][0]["count"] > 0
    # a prediction time inside the data uses only the events before it
    early = m.predict(at=T0 + 3 * DAY)
    assert str(early["at"].iloc[0]) == "2023-11-18 00:00:00+00:00" and len(early) == 60
    with pytest.raises(DataError, match="no events before"):
        m.predict(at=T0 - DAY)


def test_exported_gbm_and_logistic_score_as_scikit_learn_does():
    from chronorec.temporal.behavior.feature_models import fit_feature_model
    from chronorec.temporal.behavior.portable import export_gbm, export_logistic, gbm_scores, logistic_scores

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=400) > 0).astype(int)
    gbm = fit_feature_model("gbm", X, y, params={"max_iter": 20})
    np.testing.assert_allclose(gbm_scores(export_gbm(gbm), X), gbm.predict_proba(X)[:, 1], rtol=1e-12)
    Xp = np.abs(X)
    lr = fit_feature_model("logistic", Xp, y)
    np.testing.assert_allclose(logistic_scores(export_logistic(lr), Xp), lr.predict_proba(Xp)[:, 1], rtol=1e-12)


def test_gbm_stops_on_the_validation_cases_and_exports_what_it_kept():
    from chronorec.temporal.behavior.feature_models import GBM_DEFAULTS, fit_feature_model
    from chronorec.temporal.behavior.portable import export_gbm, gbm_scores

    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 6))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 1]) + rng.normal(size=3000) > 0).astype(int)
    gbm = fit_feature_model("gbm", X[:2000], y[:2000], validation=(X[2000:2500], y[2000:2500]))
    assert 1 <= gbm.n_iter_ < GBM_DEFAULTS["max_iter"]  # stopped on the validation loss, far before the cap
    assert roc_auc(y[2500:], gbm.predict_proba(X[2500:])[:, 1]) > 0.8  # the planted signal is learned
    np.testing.assert_allclose(gbm_scores(export_gbm(gbm), X[2500:]), gbm.predict_proba(X[2500:])[:, 1], rtol=1e-12)


def test_behavior_endpoint_returns_probabilities_and_refuses_bad_input(saved_behavior_model):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from chronorec.serving.behavior import behavior_router

    m, path = saved_behavior_model
    app = FastAPI()
    app.include_router(behavior_router(path))
    client = TestClient(app)
    r = client.post("/predict-behavior", json={"user_ids": ["b0", "u30", "nobody"]})
    assert r.status_code == 200
    body = r.json()
    probs = {p["user_id"]: p["probability"] for p in body["predictions"]}
    expected = m.predict().set_index("user_id")["probability"]
    assert probs == pytest.approx({"b0": expected["b0"], "u30": expected["u30"]}) and probs["b0"] > probs["u30"]
    assert body["unknown_users"] == ["nobody"] and body["warnings"] and body["target"] == "buy"
    for bad in ({"user_ids": []}, {"user_ids": [["b0"]]}, {"user_ids": ["b0"], "k": 3}, {}, {"user_ids": [""]}):
        assert client.post("/predict-behavior", json=bad).status_code == 422, bad


def test_calibration_plot_writes_the_case_count_of_each_bin(tmp_path, monkeypatch):
    import chronorec.plots as plots
    from chronorec.evaluation.reliability_curves import calibration_plot

    seen = {}
    real = plots.save_figure

    def keep(fig, path, **kw):
        seen["texts"] = [t.get_text() for ax in fig.axes for t in ax.texts]
        return real(fig, path, **kw)

    monkeypatch.setattr(plots, "save_figure", keep)
    y = np.array([0, 0, 1, 1, 1, 0, 1])
    p = np.array([0.05, 0.08, 0.55, 0.52, 0.95, 0.91, 0.93])
    out = calibration_plot({"m": (y, p)}, tmp_path / "c.png")
    assert out.stat().st_size > 1000
    assert sorted(seen["texts"]) == ["n=2", "n=2", "n=3"]  # bins 0.0-0.1, 0.5-0.6, 0.9-1.0


def test_serve_mounts_the_behavior_model_next_to_the_recommender(saved_behavior_model, tmp_path, monkeypatch):
    import uvicorn
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from chronorec.cli import app as cli_app
    from chronorec.data.eventlog import EventLog
    from chronorec.models.baselines.popular import MostPopular

    rec = tmp_path / "popular"
    MostPopular().fit(EventLog.from_sequences({"u1": list("abc"), "u2": list("ab")})).save(rec)
    _, bm_dir = saved_behavior_model
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.setdefault("app", app))
    args = ["serve", "--model", str(rec), "--state-dir", str(tmp_path / "s"), "--behavior-model", str(bm_dir)]
    res = CliRunner().invoke(cli_app, args)
    assert res.exit_code == 0, res.output
    with TestClient(served["app"]) as c:
        r = c.post("/predict-behavior", json={"user_ids": ["b1"]})
        assert r.status_code == 200 and 0 <= r.json()["predictions"][0]["probability"] <= 1
        bad = c.post("/predict-behavior", json={"user_ids": "b1"})
        assert bad.status_code == 422 and "user_ids" in bad.text
        assert c.post("/recommend", json={"history": ["a"], "k": 2}).status_code == 200


# ----------------------------------------------------------------------------- time scale
def _minute_log(n_users: int = 150, minutes: int = 180, seed: int = 0) -> pd.DataFrame:
    """Three hours of browsing: a cart is followed by a buy 5-15 minutes later with probability 0.8,
    other buys are rare, so the signal is the cart of the last minutes."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        t = T0 + int(rng.integers(0, 600))
        while t < T0 + minutes * 60:
            item = int(rng.integers(40))
            rows.append((f"u{u}", item, t, "pv"))
            if rng.random() < 0.08:
                rows.append((f"u{u}", item, t + 20, "cart"))
                if rng.random() < 0.8:
                    rows.append((f"u{u}", item, t + int(rng.integers(300, 900)), "buy"))
            elif rng.random() < 0.003:
                rows.append((f"u{u}", item, t + 30, "buy"))
            t += int(rng.exponential(240)) + 30
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "behavior"])
    return df[df["timestamp"] < T0 + minutes * 60].reset_index(drop=True)


def test_durations_take_units_and_plain_numbers_keep_their_unit():
    from chronorec.errors import ConfigError
    from chronorec.temporal.durations import format_duration, nice_duration, parse_duration

    assert [parse_duration(v) for v in ("45s", "30m", "2h", "1d", "1w", "1.5", 24)] == [
        45,
        1800,
        7200,
        DAY,
        7 * DAY,
        5400,
        DAY,
    ]
    assert parse_duration("10", default_unit="m") == 600
    for bad in ("5x", "-1h", "0", "h", "", "20 years"):
        with pytest.raises(ConfigError, match="--horizon"):
            parse_duration(bad, name="--horizon")
    assert [format_duration(s) for s in (DAY, 7200, 5400, 90)] == ["1d", "2h", "90m", "90s"]
    assert [nice_duration(s) for s in (1350, 20000, 3 * DAY + 5)] == [1200, 3 * 3600, 3 * DAY]


def test_four_days_or_more_keep_the_daily_scale():
    from chronorec.temporal.behavior.timescale import derive_time_scale

    s = derive_time_scale(np.array([T0, T0 + 9 * DAY - 1]))
    assert (s.horizon_s, s.step_s, s.min_history_s, s.align_s) == (DAY, 6 * 3600, DAY, DAY)
    assert (s.freq, s.windows, s.recent_s) == ("day", (1, 7, 28), (3600, 6 * 3600, DAY, 3 * DAY))
    # windows as durations become whole periods of the frequency
    assert derive_time_scale(
        np.array([T0, T0 + DAY]), horizon="1h", freq="10m", windows=["1h", "3", "25m"]
    ).windows == (
        3,
        6,
    )


def test_a_three_hour_log_runs_at_minute_scale_and_learns_the_cart():
    df = _minute_log()
    d = make_behavior_data(df)
    assert d.scale.horizon_s < 3600 and d.scale.freq.endswith("m")  # minutes, derived from the span
    c = d.cutoffs
    assert c["test"][0] - c["validation"][0] == d.horizon_s and c["test"][0] % DAY != 0  # not whole days
    assert max(c["train"]) + d.horizon_s <= c["validation"][0]
    assert "recent5m_cart" in d.features.columns and "open_cart_items_20m" in d.features.columns  # H / 4, H
    res = predict_behavior(df, tasks=["target"], models=["logistic"], threads=1, progress=False, test_cutoffs=2)
    r = res["tasks"]["target"]
    assert res["data"]["time_scale"]["horizon"] == f"{d.horizon_s // 60}m"
    assert r["logistic"]["test"]["roc_auc"] > r["past_rate"]["test"]["roc_auc"] + 0.1


def test_too_little_history_names_real_options_and_a_horizon_that_fits():
    import re

    from typer.testing import CliRunner

    from chronorec.cli.main import app
    from chronorec.temporal.durations import parse_duration

    ts = np.array([T0, T0 + 3 * 3600 - 1])
    with pytest.raises(DataError) as e:
        make_cutoffs(ts, horizon_s=2 * 3600, min_history_s=3600, align_s=3600)
    msg = str(e.value)
    help_text = CliRunner().invoke(app, ["predict-behavior", "--help"], env={"COLUMNS": "250"}).output
    named = set(re.findall(r"--[a-z-]+", msg))
    assert named and all(o in help_text for o in named), named
    fits = parse_duration(re.search(r"try --horizon (\S+)", msg).group(1))
    c = make_cutoffs(ts, horizon_s=fits, min_history_s=3600, align_s=900)
    assert c["train"] and c["test"][0] + fits <= ts.max() + 1


def test_a_frequency_too_fine_for_the_span_is_refused_before_any_work():
    from chronorec.errors import ConfigError
    from chronorec.temporal.behavior.timescale import derive_time_scale

    with pytest.raises(ConfigError, match="--freq 1s .* periods"):
        derive_time_scale(np.array([T0, T0 + 30 * DAY]), freq="1s")
